// Bearer tokens at the gateway: verified against a JWKS served here (keys made in the test, no
// accounts), refused with 401 UNAUTHENTICATED before any subgraph is called, and the verified
// identity in the context of the operation.
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ApolloServerPlugin } from '@apollo/server';
import { type JWK, SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { Identity } from '@shop/server';
import type { GatewayContext } from '../src/gateway';
import { type Fixtures, type GatewayUnderTest, composeFixture, post, startFixtures, startGateway } from './harness';

const ISSUER = 'https://accounts.test';
const AUDIENCE = 'shop-gateway';
const QUERY = { query: '{ books { title } }' };

interface SigningKey {
  kid: string;
  privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  jwk: JWK;
}

async function signingKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}

interface TokenSpec {
  key: SigningKey;
  kid?: string;
  sub?: string;
  iss?: string;
  aud?: string;
  expiresIn?: string | number;
  notBefore?: string | number;
  roles?: string[];
  scope?: string;
}

async function token(spec: TokenSpec): Promise<string> {
  const jwt = new SignJWT({ roles: spec.roles ?? ['customer'], scope: spec.scope ?? 'orders:read' })
    .setProtectedHeader({ alg: 'ES256', kid: spec.kid ?? spec.key.kid })
    .setSubject(spec.sub ?? 'u00001')
    .setIssuer(spec.iss ?? ISSUER)
    .setAudience(spec.aud ?? AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(spec.expiresIn ?? '5m');
  if (spec.notBefore !== undefined) jwt.setNotBefore(spec.notBefore);
  return jwt.sign(spec.key.privateKey);
}

/** A JWKS endpoint whose keys the test changes, counting fetches. */
async function jwksServer(): Promise<{ url: string; keys: JWK[]; fetches: () => number; close(): Promise<void> }> {
  const state = { keys: [] as JWK[], fetches: 0 };
  const server: Server = createServer((_req, res) => {
    state.fetches++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: state.keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`,
    get keys() {
      return state.keys;
    },
    set keys(keys: JWK[]) {
      state.keys = keys;
    },
    fetches: () => state.fetches,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const bearer = (jwt: string) => ({ authorization: `Bearer ${jwt}` });
const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('bearer tokens at the gateway', () => {
  let fixtures: Fixtures;
  let jwks: Awaited<ReturnType<typeof jwksServer>>;
  let gw: GatewayUnderTest;
  let keyA: SigningKey;
  let keyB: SigningKey;
  const seen: Array<Identity | undefined> = [];
  const capture: ApolloServerPlugin<GatewayContext> = {
    async requestDidStart({ contextValue }) {
      seen.push(contextValue.identity);
    },
  };
  /** Subgraph requests so far: a refused request must add none. */
  const subgraphCalls = () => fixtures.control.requestIds.books.length + fixtures.control.requestIds.authors.length;

  beforeAll(async () => {
    [keyA, keyB] = await Promise.all([signingKey('key-a'), signingKey('key-b')]);
    fixtures = await startFixtures();
    jwks = await jwksServer();
    jwks.keys = [keyA.jwk];
    gw = await startGateway({ sdl: composeFixture() }, fixtures, {
      // A cooldown of 0: each unknown kid may fetch the set again at once (the default waits 30 s).
      auth: { jwksUrl: jwks.url, issuer: ISSUER, audience: AUDIENCE, jwksCooldownMs: 0 },
      plugins: [capture],
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await jwks?.close();
    await fixtures?.stop();
  });

  it('runs a request without Authorization as anonymous', async () => {
    seen.length = 0;
    const res = await post(gw.url, QUERY);
    expect(res.status).toBe(200);
    expect(res.body.errors).toBeUndefined();
    expect(seen).toEqual([undefined]);
  });

  it('puts the identity of a valid token in the context', async () => {
    seen.length = 0;
    const res = await post(gw.url, QUERY, bearer(await token({ key: keyA, roles: ['admin'], scope: 'catalog:write orders:admin' })));
    expect(res.status).toBe(200);
    expect(res.body.errors).toBeUndefined();
    expect(seen).toEqual([{ sub: 'u00001', roles: ['admin'], scopes: ['catalog:write', 'orders:admin'] }]);
  });

  const refused: Array<[string, () => Promise<string>]> = [
    ['an expired token', () => token({ key: keyA, expiresIn: Math.floor(Date.now() / 1000) - 60 })],
    ['a token not valid yet', () => token({ key: keyA, notBefore: Math.floor(Date.now() / 1000) + 120 })],
    ['a token for another audience', () => token({ key: keyA, aud: 'someone-else' })],
    ['a token from another issuer', () => token({ key: keyA, iss: 'https://evil.test' })],
    // Signed by a key the JWKS does not hold, under the kid of one it does.
    ['a token signed with the wrong key', async () => token({ key: await signingKey('key-a') })],
    [
      'an unsigned token (alg: none)',
      async () => `${b64({ alg: 'none', kid: 'key-a' })}.${b64({ sub: 'u00001', iss: ISSUER, aud: AUDIENCE })}.`,
    ],
    [
      'an HS256 token keyed with the public key',
      async () => {
        const secret = new TextEncoder().encode(JSON.stringify(keyA.jwk));
        return new SignJWT({})
          .setProtectedHeader({ alg: 'HS256', kid: 'key-a' })
          .setSubject('u00001')
          .setIssuer(ISSUER)
          .setAudience(AUDIENCE)
          .setExpirationTime('5m')
          .sign(secret);
      },
    ],
    ['a token without a subject', async () => token({ key: keyA, sub: '' })],
    ['something that is not a JWT', async () => 'not.a.jwt'],
  ];

  it.each(refused)('refuses %s with 401 UNAUTHENTICATED, calling no subgraph', async (_name, make) => {
    const before = subgraphCalls();
    const res = await post(gw.url, QUERY, bearer(await make()));
    expect(res.status).toBe(401);
    expect(res.body.data).toBeUndefined();
    expect(res.body.errors).toEqual([{ message: expect.any(String), extensions: { code: 'UNAUTHENTICATED' } }]);
    expect(subgraphCalls()).toBe(before);
  });

  it('refuses an Authorization header that is not a bearer token', async () => {
    const res = await post(gw.url, QUERY, { authorization: 'Basic dTpw' });
    expect(res.status).toBe(401);
    expect(res.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('verifies tokens of a key rotated into the JWKS, fetching the set once for its unknown kid, and of the old key still', async () => {
    // Warm: key A is known.
    expect((await post(gw.url, QUERY, bearer(await token({ key: keyA })))).status).toBe(200);
    const before = jwks.fetches();
    jwks.keys = [keyA.jwk, keyB.jwk];
    const fromB = await token({ key: keyB, sub: 'u00002' });
    seen.length = 0;
    expect((await post(gw.url, QUERY, bearer(fromB))).status).toBe(200);
    expect(seen).toEqual([expect.objectContaining({ sub: 'u00002' })]);
    expect(jwks.fetches()).toBe(before + 1);
    // Both keys are in the cached set now: no more fetches.
    expect((await post(gw.url, QUERY, bearer(fromB))).status).toBe(200);
    expect((await post(gw.url, QUERY, bearer(await token({ key: keyA })))).status).toBe(200);
    expect(jwks.fetches()).toBe(before + 1);
  });

  it('fetches the set once for a kid it does not hold, then refuses the token', async () => {
    const before = jwks.fetches();
    const stranger = await signingKey('key-unknown');
    const res = await post(gw.url, QUERY, bearer(await token({ key: stranger })));
    expect(res.status).toBe(401);
    expect(jwks.fetches()).toBe(before + 1);
  });
});

describe('a gateway without JWKS_URL', () => {
  let fixtures: Fixtures;
  let gw: GatewayUnderTest;
  beforeAll(async () => {
    fixtures = await startFixtures();
    gw = await startGateway({ sdl: composeFixture() }, fixtures);
  });
  afterAll(async () => {
    await gw?.stop();
    await fixtures?.stop();
  });

  it('refuses every bearer token (nothing can verify it) and answers anonymous requests', async () => {
    const key = await signingKey('k');
    const res = await post(gw.url, QUERY, bearer(await token({ key })));
    expect(res.status).toBe(401);
    expect(res.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(res.body.errors?.[0]?.message).toMatch(/JWKS_URL/);
    const anonymous = await post(gw.url, QUERY);
    expect(anonymous.status).toBe(200);
    expect(anonymous.body.data).toEqual({ books: expect.any(Array) });
  });
});
