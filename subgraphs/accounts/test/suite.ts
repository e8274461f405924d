import { type CacheStore, openCacheStore } from '@shop/cache';
import { type Backend, type GraphQLClient, graphqlClient, testTelemetry } from '@shop/testing';
import { metricValue } from '@shop/telemetry';
import { createAccounts } from '../src/server';

/** accounts' behaviour, run over SQLite (accounts.test.ts) and real PostgreSQL (accounts.int.test.ts). */
export function accountsSuite(backend: Backend, redisUrl?: () => string): void {
  describe(`accounts on ${backend.name}`, () => {
    const telemetry = testTelemetry('accounts');
    let client: GraphQLClient;
    let stop: () => Promise<void>;
    let cacheStore: CacheStore;
    const storeQueries = () => metricValue(telemetry.metrics.storeQueries, { service: 'accounts' });

    beforeAll(async () => {
      cacheStore = openCacheStore({ telemetry, redisUrl: redisUrl?.(), prefix: `t${Date.now().toString(36)}`, timeoutMs: 500 });
      expect(await cacheStore.connected(5_000)).toBe(true);
      const subgraph = await createAccounts({
        telemetry,
        cacheStore,
        store: await backend.location(),
        seed: { users: 60, products: 0, reviews: 0 },
        pageMax: 25,
      });
      const running = await subgraph.listen(0, '127.0.0.1');
      client = graphqlClient(`${running.url}/graphql`);
      stop = () => subgraph.stop();
    });
    afterAll(async () => {
      await stop?.();
      await cacheStore?.close();
      await backend.cleanup();
    });

    it('finds a seeded user by id, and null for an unknown id', async () => {
      const res = await client.query<{ a: { id: string; name: string } | null; b: unknown }>(
        '{ a: user(id: "u00001") { id name email createdAt } b: user(id: "nope") { id } }',
      );
      expect(res.errors).toBeUndefined();
      expect(res.data?.a).toMatchObject({ id: 'u00001', createdAt: '2024-01-01T00:01:00.000Z' });
      expect(res.data?.b).toBeNull();
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
      expect(seen).toHaveLength(60);
      expect(new Set(seen).size).toBe(60);
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

      const renamed = await client.query('mutation { updateUser(id: "u00050", input: { name: "Renamed Fifty" }) { name } }');
      expect(renamed.errors).toBeUndefined();
      const after = await client.query<{ a: { name: string }; b: { name: string } }>(q);
      expect(after.data?.a.name).toBe('Renamed Fifty');
      expect(after.data?.b.name).toBe(warm.data && (warm.data as unknown as { b: { name: string } }).b.name);
    });

    it('creates and updates users, with coded errors for bad input', async () => {
      const created = await client.query<{ createUser: { id: string; email: string } }>(
        'mutation { createUser(input: { name: " Grace ", email: "Grace@Example.com" }) { id name email } }',
      );
      expect(created.errors).toBeUndefined();
      expect(created.data?.createUser).toMatchObject({ name: 'Grace', email: 'grace@example.com' });
      const id = created.data!.createUser.id;

      const updated = await client.query('mutation($id: ID!) { updateUser(id: $id, input: { name: "Grace H" }) { name email } }', { id });
      expect(updated.data?.updateUser).toEqual({ name: 'Grace H', email: 'grace@example.com' });

      const empty = await client.query('mutation { createUser(input: { name: "  ", email: "a@b.co" }) { id } }');
      expect(empty.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.name' });
      const badEmail = await client.query('mutation { createUser(input: { name: "A", email: "not-an-email" }) { id } }');
      expect(badEmail.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.email' });
      const duplicate = await client.query('mutation { createUser(input: { name: "Again", email: "grace@example.com" }) { id } }');
      expect(duplicate.errors?.[0]?.extensions?.code).toBe('CONFLICT');
      const unknown = await client.query('mutation { updateUser(id: "nobody", input: { name: "X" }) { id } }');
      expect(unknown.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');

      const count = await client.query<{ users: { edges: unknown[] } }>('{ users(first: 25, after: null) { edges { cursor } } }');
      expect(count.errors).toBeUndefined();
    });
  });
}
