import { randomBytes } from 'node:crypto';
import { type CacheStore, openCacheStore } from '@shop/cache';
import { SEED_ADMIN, seedUsers } from '@shop/seed';
import { ADMIN_ROLE, type Identity, SCOPES, gatewayHeaders } from '@shop/server';
import { type Backend, type GraphQLClient, graphqlClient, testTelemetry } from '@shop/testing';
import { metricValue } from '@shop/telemetry';
import { type AccountsSubgraph, createAccounts } from '../src/server';

/** The key the suite's requests are signed with, as the gateway signs them. */
const SECRET = randomBytes(32).toString('hex');
const customer = (sub: string): Identity => ({ sub, roles: ['customer'], scopes: [] });
const ADMIN: Identity = { sub: SEED_ADMIN.id, roles: ['customer', ADMIN_ROLE], scopes: [...SCOPES] };
const emails = new Map([...seedUsers({ users: 60, products: 0, reviews: 0 })].map((u) => [u.id, u.email]));

/** accounts' behaviour, run over SQLite (accounts.test.ts) and real PostgreSQL (accounts.int.test.ts). */
export function accountsSuite(backend: Backend, redisUrl?: () => string): void {
  describe(`accounts on ${backend.name}`, () => {
    const telemetry = testTelemetry('accounts');
    /** Anonymous (signed, with no identity). */
    let client: GraphQLClient;
    /** As the gateway would send a request from `identity`. */
    let as: (identity: Identity) => GraphQLClient;
    let subgraph: AccountsSubgraph;
    let stop: () => Promise<void>;
    let cacheStore: CacheStore;
    const storeQueries = () => metricValue(telemetry.metrics.storeQueries, { service: 'accounts' });

    beforeAll(async () => {
      cacheStore = openCacheStore({ telemetry, redisUrl: redisUrl?.(), prefix: `t${Date.now().toString(36)}`, timeoutMs: 500 });
      expect(await cacheStore.connected(5_000)).toBe(true);
      subgraph = await createAccounts({
        telemetry,
        cacheStore,
        store: await backend.location(),
        seed: { users: 60, products: 0, reviews: 0 },
        pageMax: 25,
      });
      const url = `${(await subgraph.listen(0, '127.0.0.1', { gatewaySecret: SECRET })).url}/graphql`;
      client = graphqlClient(url, { sign: (body) => gatewayHeaders(SECRET, url, body) });
      as = (identity) => graphqlClient(url, { sign: (body) => gatewayHeaders(SECRET, url, body, { identity }) });
      stop = () => subgraph.stop();
    });
    afterAll(async () => {
      await stop?.();
      await cacheStore?.close();
      await backend.cleanup();
    });

    it('finds a seeded user by id, and null for an unknown id', async () => {
      const res = await as(customer('u00001')).query<{ a: { id: string; name: string } | null; b: unknown }>(
        '{ a: user(id: "u00001") { id name email createdAt } b: user(id: "nope") { id } }',
      );
      expect(res.errors).toBeUndefined();
      expect(res.data?.a).toMatchObject({ id: 'u00001', email: emails.get('u00001'), createdAt: '2024-01-01T00:01:00.000Z' });
      expect(res.data?.b).toBeNull();
    });

    it('seeds the development admin beside the generated users, once', async () => {
      const res = await as(ADMIN).query<{ user: { id: string; name: string; email: string } }>('{ user(id: "admin") { id name email } }');
      expect(res.data?.user).toEqual({ id: SEED_ADMIN.id, name: SEED_ADMIN.name, email: SEED_ADMIN.email });
      expect(await subgraph.accounts.users.rolesOf(SEED_ADMIN.id)).toBe(`customer ${ADMIN_ROLE}`);
      // Seeding again (another start on the same store) adds nobody, the admin included.
      expect(await subgraph.accounts.seed({ users: 60, products: 0, reviews: 0 })).toBe(0);
      expect(await subgraph.accounts.users.count()).toBeGreaterThanOrEqual(61);
    });

    it('pages through users with cursors and reports hasNextPage', async () => {
      const q = 'query($after: String) { users(first: 25, after: $after) { edges { node { id } } pageInfo { endCursor hasNextPage } } }';
      type Page = { users: { edges: { node: { id: string } }[]; pageInfo: { endCursor: string | null; hasNextPage: boolean } } };
      const seen: string[] = [];
      let after: string | null = null;
      for (let i = 0; i < 5; i++) {
        const res: Awaited<ReturnType<typeof client.query<Page>>> = await client.query<Page>(q, { after });
        expect(res.errors).toBeUndefined();
        const page: Page['users'] = res.data!.users;
        seen.push(...page.edges.map((e) => e.node.id));
        after = page.pageInfo.endCursor;
        if (!page.pageInfo.hasNextPage) break;
      }
      // The 60 generated users and the development admin.
      expect(seen).toHaveLength(61);
      expect(new Set(seen).size).toBe(61);
      expect([...seen].sort()).toEqual(seen);
    });

    it('rejects a page size above the maximum and a forged cursor with BAD_USER_INPUT', async () => {
      const tooMany = await client.query('{ users(first: 26) { edges { cursor } } }');
      expect(tooMany.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(tooMany.errors?.[0]?.message).toContain('between 0 and 25');
      const forged = await client.query('{ users(first: 2, after: "garbage") { edges { cursor } } }');
      expect(forged.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    });

    it('resolves a batch of entity references with one store round trip', async () => {
      const before = await storeQueries();
      const representations = Array.from({ length: 40 }, (_, i) => ({ __typename: 'User', id: `u${String(i + 1).padStart(5, '0')}` }));
      representations.push({ __typename: 'User', id: 'missing' });
      const res = await client.query<{ _entities: Array<{ id: string } | null> }>(
        'query($r: [_Any!]!) { _entities(representations: $r) { ... on User { id name } } }',
        { r: representations },
      );
      expect(res.errors).toBeUndefined();
      expect(res.data?._entities).toHaveLength(41);
      expect(res.data?._entities[39]?.id).toBe('u00040');
      expect(res.data?._entities[40]).toBeNull();
      expect((await storeQueries()) - before).toBe(1);
    });

    it(`serves repeated by-id reads from the ${redisUrl ? 'Redis' : 'in-memory'} cache, and evicts on update`, async () => {
      const q = '{ a: user(id: "u00050") { name } b: user(id: "u00051") { name } }';
      await client.query(q); // warm (or already warm)
      const before = await storeQueries();
      const hitsBefore = await metricValue(telemetry.metrics.cacheRequests, { cache: 'accounts.user', result: 'hit' });
      const warm = await client.query<{ a: { name: string } }>(q);
      expect(warm.errors).toBeUndefined();
      expect((await storeQueries()) - before).toBe(0);
      expect((await metricValue(telemetry.metrics.cacheRequests, { cache: 'accounts.user', result: 'hit' })) - hitsBefore).toBe(2);

      const renamed = await as(customer('u00050')).query(
        'mutation { updateUser(id: "u00050", input: { name: "Renamed Fifty" }) { name } }',
      );
      expect(renamed.errors).toBeUndefined();
      const after = await client.query<{ a: { name: string }; b: { name: string } }>(q);
      expect(after.data?.a.name).toBe('Renamed Fifty');
      expect(after.data?.b.name).toBe(warm.data && (warm.data as unknown as { b: { name: string } }).b.name);
    });

    it('creates and updates users, with coded errors for bad input', async () => {
      const admin = as(ADMIN);
      const created = await admin.query<{ createUser: { id: string; email: string } }>(
        'mutation { createUser(input: { name: " Grace ", email: "Grace@Example.com" }) { id name email } }',
      );
      expect(created.errors).toBeUndefined();
      expect(created.data?.createUser).toMatchObject({ name: 'Grace', email: 'grace@example.com' });
      const id = created.data!.createUser.id;

      const updated = await admin.query('mutation($id: ID!) { updateUser(id: $id, input: { name: "Grace H" }) { name email } }', { id });
      expect(updated.data?.updateUser).toEqual({ name: 'Grace H', email: 'grace@example.com' });

      const empty = await admin.query('mutation { createUser(input: { name: "  ", email: "a@b.co" }) { id } }');
      expect(empty.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.name' });
      const badEmail = await admin.query('mutation { createUser(input: { name: "A", email: "not-an-email" }) { id } }');
      expect(badEmail.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.email' });
      const duplicate = await admin.query('mutation { createUser(input: { name: "Again", email: "grace@example.com" }) { id } }');
      expect(duplicate.errors?.[0]?.extensions?.code).toBe('CONFLICT');
      const unknown = await admin.query('mutation { updateUser(id: "nobody", input: { name: "X" }) { id } }');
      expect(unknown.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');

      const count = await client.query<{ users: { edges: unknown[] } }>('{ users(first: 25, after: null) { edges { cursor } } }');
      expect(count.errors).toBeUndefined();
    });

    type Email = { user: { id: string; email: string | null } | null };
    const EMAIL = '{ user(id: "u00020") { id email } }';
    const codes = (res: { errors?: Array<{ extensions?: { code?: string } }> }) => res.errors?.map((e) => e.extensions?.code);

    it('shows User.email to the user and to an admin only: null with UNAUTHORIZED_FIELD_OR_TYPE for anyone else', async () => {
      // The owner first: the row (email included) is now in the loaders' shared cache.
      const owner = await as(customer('u00020')).query<Email>(EMAIL);
      expect(owner.errors).toBeUndefined();
      expect(owner.data?.user).toEqual({ id: 'u00020', email: emails.get('u00020') });
      const admin = await as(ADMIN).query<Email>(EMAIL);
      expect(admin.errors).toBeUndefined();
      expect(admin.data?.user?.email).toBe(emails.get('u00020'));
      for (const stranger of [client, as(customer('u00021'))]) {
        const res = await stranger.query<Email>(EMAIL);
        // The rest of the user still answers; the email is null at its path.
        expect(res.data).toEqual({ user: { id: 'u00020', email: null } });
        expect(res.errors).toHaveLength(1);
        expect(res.errors?.[0]).toMatchObject({ path: ['user', 'email'], extensions: { code: 'UNAUTHORIZED_FIELD_OR_TYPE' } });
      }
      // Another customer with every scope is still not an admin: scopes are no role.
      const scoped = await as({ sub: 'u00021', roles: ['customer'], scopes: [...SCOPES] }).query<Email>(EMAIL);
      expect(codes(scoped)).toEqual(['UNAUTHORIZED_FIELD_OR_TYPE']);
    });

    it('checks User.email on every path to a user: entity references and lists', async () => {
      const viewer = as(customer('u00022'));
      const entities = await viewer.query<{ _entities: Array<{ id: string; email: string | null }> }>(
        'query($r: [_Any!]!) { _entities(representations: $r) { ... on User { id email } } }',
        { r: ['u00022', 'u00023'].map((id) => ({ __typename: 'User', id })) },
      );
      expect(entities.data?._entities).toEqual([
        { id: 'u00022', email: emails.get('u00022') },
        { id: 'u00023', email: null },
      ]);
      expect(entities.errors?.map((e) => [e.path, e.extensions?.code])).toEqual([
        [['_entities', 1, 'email'], 'UNAUTHORIZED_FIELD_OR_TYPE'],
      ]);
      const list = await viewer.query<{ users: { edges: Array<{ node: { id: string; email: string | null } }> } }>(
        '{ users(first: 25) { edges { node { id email } } } }',
      );
      const shown = list.data!.users.edges.filter((e) => e.node.email !== null).map((e) => e.node.id);
      expect(shown).toEqual(['u00022']);
      expect(list.errors?.every((e) => e.extensions?.code === 'UNAUTHORIZED_FIELD_OR_TYPE')).toBe(true);
      expect(list.errors).toHaveLength(24);
    });

    it('answers me with the caller, and UNAUTHENTICATED without one', async () => {
      const me = await as(customer('u00024')).query<{ me: { id: string; email: string } }>('{ me { id email } }');
      expect(me.errors).toBeUndefined();
      expect(me.data?.me).toEqual({ id: 'u00024', email: emails.get('u00024') });
      const anonymous = await client.query('{ me { id } }');
      expect(anonymous.data).toEqual({ me: null });
      expect(codes(anonymous)).toEqual(['UNAUTHENTICATED']);
    });

    it('lets only an admin createUser: UNAUTHENTICATED anonymous, FORBIDDEN for a customer, nothing written', async () => {
      const create = 'mutation { createUser(input: { name: "Eve", email: "eve@example.com" }) { id } }';
      const before = await subgraph.accounts.users.count();
      expect(codes(await client.query(create))).toEqual(['UNAUTHENTICATED']);
      expect(codes(await as(customer('u00025')).query(create))).toEqual(['FORBIDDEN']);
      // Scopes are no role: a customer token with every scope is still refused.
      expect(codes(await as({ sub: 'u00025', roles: ['customer'], scopes: [...SCOPES] }).query(create))).toEqual(['FORBIDDEN']);
      expect(await subgraph.accounts.users.count()).toBe(before);
      const created = await as(ADMIN).query<{ createUser: { id: string } }>(create);
      expect(created.errors).toBeUndefined();
      expect(await subgraph.accounts.users.count()).toBe(before + 1);
    });

    it("lets updateUser change the caller's own account, or any for an admin: FORBIDDEN for someone else's, even an unknown id", async () => {
      const rename = (id: string, name: string) => `mutation { updateUser(id: "${id}", input: { name: "${name}" }) { id name } }`;
      expect(codes(await client.query(rename('u00026', 'Anon')))).toEqual(['UNAUTHENTICATED']);
      // Refused before the input and the store: a bad name and an unknown id are FORBIDDEN too.
      const other = as(customer('u00027'));
      expect(codes(await other.query(rename('u00026', 'Other')))).toEqual(['FORBIDDEN']);
      expect(codes(await other.query(rename('u00026', ' ')))).toEqual(['FORBIDDEN']);
      expect(codes(await other.query(rename('nobody', 'X')))).toEqual(['FORBIDDEN']);
      const unchanged = await client.query<{ user: { name: string } }>('{ user(id: "u00026") { name } }');
      expect(unchanged.data?.user.name).not.toBe('Other');
      const own = await as(customer('u00026')).query<{ updateUser: { name: string } }>(rename('u00026', 'Own Name'));
      expect(own.errors).toBeUndefined();
      expect(own.data?.updateUser.name).toBe('Own Name');
      expect(codes(await as(customer('u00026')).query(rename('u00026', ' ')))).toEqual(['BAD_USER_INPUT']);
      const byAdmin = await as(ADMIN).query<{ updateUser: { name: string } }>(rename('u00026', 'Admin Named'));
      expect(byAdmin.data?.updateUser.name).toBe('Admin Named');
      expect(codes(await as(ADMIN).query(rename('nobody', 'X')))).toEqual(['NOT_FOUND']);
    });
  });
}
