// The gateway's side of "subgraphs trust only the gateway": every subgraph request signed, the
// caller's identity in a signed header, and no request of one identity shared with or merged into
// another's.
import { SignJWT, createLocalJWKSet, exportJWK, generateKeyPair } from 'jose';
import { encodeIdentity } from '@shop/server';
import { eventually } from '@shop/testing';
import type { FetchRequest, FetchResponse } from '../src/fetch';
import { inflightLayer } from '../src/fetch/inflight';
import { mergeLayer } from '../src/fetch/merge';
import { type Fixtures, type GatewayUnderTest, composeFixture, post, startFixtures, startGateway, fetchRequest } from './harness';

const SECRET = 'gateway-and-fixtures-share-this-secret-0123456789';

/** A `next` that holds every call until `release()`, counting calls and recording their identities. */
function held() {
  const calls: FetchRequest[] = [];
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const next = async (req: FetchRequest): Promise<FetchResponse> => {
    calls.push(req);
    await gate;
    const reps = req.representations;
    return {
      body: reps
        ? { data: { _entities: reps.map((r) => ({ ...r, seenBy: req.identity ?? null })) } }
        : { data: { seenBy: req.identity ?? null } },
      hint: { maxAge: 0 },
    };
  };
  return { calls, next, release: () => release() };
}

const alice = encodeIdentity({ sub: 'alice', roles: ['customer'], scopes: [] });
const bob = encodeIdentity({ sub: 'bob', roles: ['customer'], scopes: [] });

describe('in-flight sharing keys on the identity as well as the body', () => {
  it('sends two identities’ identical concurrent queries as two requests, each answered with its own', async () => {
    const layer = inflightLayer();
    const { calls, next, release } = held();
    const answers = [
      layer(fetchRequest({ identity: alice }), next),
      layer(fetchRequest({ identity: bob }), next),
      layer(fetchRequest(), next),
    ];
    release();
    const bodies = (await Promise.all(answers)).map((a) => a.body.data);
    expect(calls).toHaveLength(3);
    expect(bodies).toEqual([{ seenBy: alice }, { seenBy: bob }, { seenBy: null }]);
  });

  it('still shares one identity’s identical concurrent queries', async () => {
    const layer = inflightLayer();
    const { calls, next, release } = held();
    const answers = [layer(fetchRequest({ identity: alice }), next), layer(fetchRequest({ identity: alice }), next)];
    release();
    await Promise.all(answers);
    expect(calls).toHaveLength(1);
  });
});

describe('fetch merging keys on the identity as well as the selection', () => {
  const entities = (identity: string | undefined, id: string) =>
    fetchRequest({
      query: 'query($representations: [_Any!]!) { _entities(representations: $representations) { ... on Author { name } } }',
      representations: [{ __typename: 'Author', id }],
      selectionKey: 'authors-name',
      identity,
    });

  it('merges no fetch of one identity into another’s', async () => {
    const layer = mergeLayer({ dedupe: false });
    const { calls, next, release } = held();
    const answers = [layer(entities(alice, '1'), next), layer(entities(bob, '1'), next), layer(entities(alice, '2'), next)];
    // The batch closes on setImmediate; release after the requests went down.
    await eventually(
      async () => calls.length,
      (n) => n === 2,
    );
    release();
    const results = await Promise.all(answers);
    expect(calls.map((c) => [c.identity, c.representations?.length])).toEqual([
      [alice, 2],
      [bob, 1],
    ]);
    expect(results.map((r) => (r.body.data?._entities as Array<{ seenBy: string }>)[0]?.seenBy)).toEqual([alice, bob, alice]);
  });
});

describe('a gateway with SUBGRAPH_SECRET in front of subgraphs that require it', () => {
  let fixtures: Fixtures;
  let gw: GatewayUnderTest;
  let sign: (sub: string) => Promise<string>;

  beforeAll(async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
    sign = (sub) =>
      new SignJWT({ roles: ['customer'] })
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setSubject(sub)
        .setExpirationTime('5m')
        .sign(privateKey);
    fixtures = await startFixtures({ gatewaySecret: SECRET });
    gw = await startGateway({ sdl: composeFixture() }, fixtures, {
      subgraphSecret: SECRET,
      auth: { keys: createLocalJWKSet({ keys: [jwk] }) },
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await fixtures?.stop();
  });

  it('signs every subgraph request, carrying the caller’s identity, anonymous included', async () => {
    const before = fixtures.control.identities.authors.length;
    const signedIn = await post(
      gw.url,
      { query: '{ books { title author { name } } }' },
      { authorization: `Bearer ${await sign('u00007')}` },
    );
    expect(signedIn.status).toBe(200);
    expect(signedIn.body.errors).toBeUndefined();
    const anonymous = await post(gw.url, { query: '{ books { title author { name } } }' });
    expect(anonymous.body.errors).toBeUndefined();
    expect(fixtures.control.identities.authors.slice(before)).toEqual(['u00007', null]);
  });

  it('sends two users’ identical concurrent queries to the subgraph separately', async () => {
    let release!: () => void;
    fixtures.control.booksHang = new Promise<void>((resolve) => {
      release = resolve;
    });
    const before = fixtures.control.identities.books.length;
    const answers = Promise.all(
      ['u00001', 'u00002'].map(async (sub) =>
        post(gw.url, { query: '{ books { title } }' }, { authorization: `Bearer ${await sign(sub)}` }),
      ),
    );
    // Both reach the subgraph while neither is answered: had the second joined the first, it never would.
    const seen = await eventually(
      async () => fixtures.control.identities.books.slice(before),
      (ids) => ids.length === 2,
    );
    fixtures.control.booksHang = undefined;
    release();
    expect([...seen].sort()).toEqual(['u00001', 'u00002']);
    for (const answer of await answers) expect(answer.body.errors).toBeUndefined();
  });
});

describe('a gateway without SUBGRAPH_SECRET', () => {
  it('is refused by subgraphs that require one: the client sees a coded subgraph error, not their data', async () => {
    const fixtures = await startFixtures({ gatewaySecret: SECRET });
    const gw = await startGateway({ sdl: composeFixture() }, fixtures, { retry: false, breaker: false });
    try {
      const res = await post(gw.url, { query: '{ books { title } }' });
      expect(res.body.data ?? null).toBeNull();
      expect(res.body.errors?.length).toBeGreaterThan(0);
      expect(fixtures.control.identities.books).toEqual([]);
    } finally {
      await gw.stop();
      await fixtures.stop();
    }
  });
});
