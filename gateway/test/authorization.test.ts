// @authenticated, @requiresScopes and @policy enforced by the gateway before planning, on two
// fixture subgraphs of its own (nothing of the shop): a field the caller may not see is not asked
// of any subgraph, is null in the answer with UNAUTHORIZED_FIELD_OR_TYPE at its path, and the rest
// of the operation runs; plans and cached responses made for one caller never reach another.
import { composeServices } from '@apollo/composition';
import { SignJWT, createLocalJWKSet, exportJWK, generateKeyPair } from 'jose';
import { parse } from 'graphql';
import { openCacheStore } from '@shop/cache';
import { type Subgraph, createSubgraph } from '@shop/server';
import { type GatewayUnderTest, post, silentTelemetry, startGateway } from './harness';

const LINK =
  'extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key", "@authenticated", "@requiresScopes", "@policy"])';
const CACHE_CONTROL = `
enum CacheControlScope { PUBLIC PRIVATE }
directive @cacheControl(maxAge: Int, scope: CacheControlScope, inheritMaxAge: Boolean) on FIELD_DEFINITION | OBJECT | INTERFACE | UNION`;

const peopleSdl = `${LINK}
${CACHE_CONTROL}
type Person @key(fields: "id") @cacheControl(maxAge: 60) {
  id: ID!
  name: String!
  email: String @policy(policies: [["self"]])
  salary: Int! @requiresScopes(scopes: [["hr:read"], ["hr:admin", "audit"]])
  secret: Secret
}
type Secret @authenticated {
  code: String!
}
type Query {
  people: [Person!]!
  person(id: ID!): Person
  auditLog: [String!] @policy(policies: [["auditor"]])
}
type Mutation {
  rename(id: ID!, name: String!): Person! @authenticated
}
`;

const notesSdl = `${LINK}
type Person @key(fields: "id") {
  id: ID!
  notes: [Note!] @authenticated
}
type Note {
  text: String!
}
type Query {
  publicNotes: [Note!]!
}
`;

const PEOPLE = [
  { id: '1', name: 'Ada', email: 'ada@example.com', salary: 100 },
  { id: '2', name: 'Grace', email: 'grace@example.com', salary: 200 },
];

const UNAUTHORIZED = 'UNAUTHORIZED_FIELD_OR_TYPE';

interface Calls {
  people: string[];
  notes: string[];
  renames: number;
}

async function startFixtures(calls: Calls): Promise<{ urls: { people: string; notes: string }; stop(): Promise<void> }> {
  const recording = (name: 'people' | 'notes') => async (info: { req: { headers: Record<string, unknown> } }) => {
    calls[name].push(String(info.req.headers['x-request-id']));
    return {};
  };
  const people: Subgraph = await createSubgraph({
    telemetry: silentTelemetry('people'),
    typeDefs: parse(peopleSdl),
    resolvers: {
      Query: {
        people: () => PEOPLE,
        person: (_: unknown, { id }: { id: string }) => PEOPLE.find((p) => p.id === id) ?? null,
        auditLog: () => ['opened'],
      },
      Mutation: {
        rename: (_: unknown, { id, name }: { id: string; name: string }) => {
          calls.renames++;
          return { ...(PEOPLE.find((p) => p.id === id) ?? PEOPLE[0]), name };
        },
      },
      Person: {
        __resolveReference: (ref: { id: string }) => PEOPLE.find((p) => p.id === ref.id) ?? null,
        secret: (p: { id: string }) => ({ code: `code-${p.id}` }),
      },
    },
    context: recording('people'),
    ready: async () => true,
  });
  const notes: Subgraph = await createSubgraph({
    telemetry: silentTelemetry('notes'),
    typeDefs: parse(notesSdl),
    resolvers: {
      Query: { publicNotes: () => [{ text: 'hello' }] },
      Person: { notes: (p: { id: string }) => [{ text: `note of ${p.id}` }] },
    },
    context: recording('notes'),
    ready: async () => true,
  });
  const servers = { people: await people.listen(0, '127.0.0.1'), notes: await notes.listen(0, '127.0.0.1') };
  return {
    urls: { people: `${servers.people.url}/graphql`, notes: `${servers.notes.url}/graphql` },
    stop: async () => {
      await Promise.all([people.stop(), notes.stop()]);
    },
  };
}

function compose(urls: { people: string; notes: string }): string {
  const result = composeServices([
    { name: 'people', url: urls.people, typeDefs: parse(peopleSdl) },
    { name: 'notes', url: urls.notes, typeDefs: parse(notesSdl) },
  ]);
  if (result.errors) throw new Error(result.errors.map((e) => e.message).join('; '));
  return result.supergraphSdl;
}

describe('authorization directives at the gateway', () => {
  const calls: Calls = { people: [], notes: [], renames: 0 };
  let fixtures: Awaited<ReturnType<typeof startFixtures>>;
  let gw: GatewayUnderTest;
  let sign: (claims: { sub: string; roles?: string[]; scope?: string }) => Promise<string>;

  const ask = async (query: string, token?: string, variables?: Record<string, unknown>) => {
    const res = await post(gw.url, { query, ...(variables ? { variables } : {}) }, token ? { authorization: `Bearer ${token}` } : {});
    expect(res.status).toBe(200);
    return res.body;
  };
  const codesAt = (errors: Array<{ path?: Array<string | number>; extensions?: Record<string, unknown> }> | undefined) =>
    (errors ?? []).map((e) => `${(e.path ?? []).join('.')}:${String(e.extensions?.code)}`);

  beforeAll(async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
    sign = async ({ sub, roles = ['customer'], scope = '' }) =>
      new SignJWT({ roles, scope })
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setSubject(sub)
        .setExpirationTime('5m')
        .sign(privateKey);
    fixtures = await startFixtures(calls);
    gw = await startGateway({ sdl: compose(fixtures.urls) }, undefined, {
      auth: { keys: createLocalJWKSet({ keys: [jwk] }) },
      // The response cache on, so the test shows it keeps callers apart.
      cacheStore: openCacheStore({ telemetry: silentTelemetry('cache') }),
      authorization: { policies: { auditor: (identity) => identity?.roles.includes('auditor') ?? false } },
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await fixtures?.stop();
  });

  it('nulls a field the caller may not see, with an error at its path in every list item, and runs the rest', async () => {
    const anonymous = await ask('{ people { name email } }');
    expect(anonymous.data).toEqual({
      people: [
        { name: 'Ada', email: null },
        { name: 'Grace', email: null },
      ],
    });
    expect(codesAt(anonymous.errors)).toEqual([`people.0.email:${UNAUTHORIZED}`, `people.1.email:${UNAUTHORIZED}`]);

    const signedIn = await ask('{ people { name email } }', await sign({ sub: '1' }));
    expect(signedIn.errors).toBeUndefined();
    expect(signedIn.data).toEqual({ people: PEOPLE.map(({ name, email }) => ({ name, email })) });
  });

  it('asks no subgraph for a removed field: an @authenticated field of another subgraph costs no fetch', async () => {
    const before = calls.notes.length;
    const anonymous = await ask('{ people { name notes { text } } }');
    expect(anonymous.data).toEqual({
      people: [
        { name: 'Ada', notes: null },
        { name: 'Grace', notes: null },
      ],
    });
    expect(codesAt(anonymous.errors)).toEqual([`people.0.notes:${UNAUTHORIZED}`, `people.1.notes:${UNAUTHORIZED}`]);
    expect(calls.notes.length).toBe(before);

    const signedIn = await ask('{ people { name notes { text } } }', await sign({ sub: '2' }));
    expect(signedIn.data).toEqual({
      people: [
        { name: 'Ada', notes: [{ text: 'note of 1' }] },
        { name: 'Grace', notes: [{ text: 'note of 2' }] },
      ],
    });
    expect(calls.notes.length).toBe(before + 1);
  });

  it('reads @requiresScopes as any-of lists of all-of scopes', async () => {
    const query = '{ person(id: "1") { name salary } }';
    const customer = await ask(query, await sign({ sub: '1' }));
    // salary is non-null: its null goes up to person, as GraphQL's null propagation would.
    expect(customer.data).toEqual({ person: null });
    expect(codesAt(customer.errors)).toEqual([`person.salary:${UNAUTHORIZED}`]);
    expect((await ask(query, await sign({ sub: '1', scope: 'hr:read' }))).data).toEqual({ person: { name: 'Ada', salary: 100 } });
    expect((await ask(query, await sign({ sub: '1', scope: 'hr:admin' }))).data).toEqual({ person: null });
    expect((await ask(query, await sign({ sub: '1', scope: 'audit hr:admin' }))).data).toEqual({ person: { name: 'Ada', salary: 100 } });
  });

  it('applies a directive on a type to every field that returns it', async () => {
    const anonymous = await ask('{ person(id: "2") { name secret { code } } }');
    expect(anonymous.data).toEqual({ person: { name: 'Grace', secret: null } });
    expect(codesAt(anonymous.errors)).toEqual([`person.secret:${UNAUTHORIZED}`]);
    const signedIn = await ask('{ person(id: "2") { secret { code } } }', await sign({ sub: '9' }));
    expect(signedIn.data).toEqual({ person: { secret: { code: 'code-2' } } });
  });

  it('evaluates @policy with the registered policies; a name nobody registered never holds', async () => {
    const query = '{ auditLog }';
    expect(codesAt((await ask(query, await sign({ sub: '1', roles: ['admin'] }))).errors)).toEqual([`auditLog:${UNAUTHORIZED}`]);
    expect((await ask(query, await sign({ sub: '1', roles: ['auditor'] }))).data).toEqual({ auditLog: ['opened'] });
  });

  it('refuses a mutation field before any subgraph runs it; data is null when the field is non-null', async () => {
    const mutation = 'mutation { rename(id: "1", name: "Augusta") { name } }';
    const anonymous = await ask(mutation);
    expect(anonymous.data).toBeNull();
    expect(codesAt(anonymous.errors)).toEqual([`rename:${UNAUTHORIZED}`]);
    expect(calls.renames).toBe(0);
    expect((await ask(mutation, await sign({ sub: '1' }))).data).toEqual({ rename: { name: 'Augusta' } });
    expect(calls.renames).toBe(1);
  });

  it('follows aliases and fragments, and leaves a skipped field out without an error', async () => {
    const viaFragment = await ask('{ p: person(id: "1") { ...F } } fragment F on Person { mail: email name }');
    expect(viaFragment.data).toEqual({ p: { mail: null, name: 'Ada' } });
    expect(codesAt(viaFragment.errors)).toEqual([`p.mail:${UNAUTHORIZED}`]);

    const skipped = await ask('query ($no: Boolean!) { person(id: "1") { name email @include(if: $no) } }', undefined, { no: false });
    expect(skipped.data).toEqual({ person: { name: 'Ada' } });
    expect(skipped.errors).toBeUndefined();
  });

  it('never serves a plan or a cached response made for one caller to a caller who may see more or less', async () => {
    // person is cacheable for 60 s (PUBLIC): the first answer is kept in the response cache.
    const query = '{ person(id: "2") { name salary } }';
    const hr = await sign({ sub: '1', scope: 'hr:read' });
    expect((await ask(query, hr)).data).toEqual({ person: { name: 'Grace', salary: 200 } });
    const anonymous = await ask(query);
    expect(anonymous.data).toEqual({ person: null });
    expect(codesAt(anonymous.errors)).toEqual([`person.salary:${UNAUTHORIZED}`]);
    // And the other way: an anonymous plan for a document first, then a caller who may see it all.
    const other = '{ person(id: "1") { id email } }';
    expect((await ask(other)).data).toEqual({ person: { id: '1', email: null } });
    expect((await ask(other, await sign({ sub: '1' }))).data).toEqual({ person: { id: '1', email: 'ada@example.com' } });
    expect((await ask(query, hr)).data).toEqual({ person: { name: 'Grace', salary: 200 } });
  });

  it('leaves an operation the caller may see entirely untouched', async () => {
    const res = await ask('{ publicNotes { text } people { __typename id } }');
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({
      publicNotes: [{ text: 'hello' }],
      people: [
        { __typename: 'Person', id: '1' },
        { __typename: 'Person', id: '2' },
      ],
    });
  });

  it('refuses to serve the directives at all with authorization off, rather than ignore them', async () => {
    await expect(startGateway({ sdl: compose(fixtures.urls) }, undefined, { authorization: false })).rejects.toThrow(
      /uses @authenticated, @requiresScopes or @policy, and this gateway was built with authorization off/,
    );
  });
});
