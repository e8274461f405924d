// The response cache (gateway/src/response-cache.ts) on the embedded stack, over the in-memory
// store and over the real Redis: responses are tagged with the entities they hold, and a write to
// one retires exactly the responses that hold it.
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { SEED_ADMIN } from '@shop/seed';
import { type Stack, type StackOptions, startStack } from '@shop/stack';
import { metricValue } from '@shop/telemetry';
import { type GraphQLClient, bearer, graphqlClient, requireService, services } from '@shop/testing';

const silent = pino({ level: 'silent' });
const freePorts = { gateway: 0, accounts: 0, products: 0, inventory: 0, reviews: 0, orders: 0, payments: 0 };

/** Subgraph requests the gateway sent while `run` ran (0: the response cache answered). */
async function subgraphRequests(stack: Stack, run: () => Promise<unknown>): Promise<number> {
  const metric = stack.telemetry.gateway.metrics.subgraphRequests;
  const before = await metricValue(metric, {});
  await run();
  return (await metricValue(metric, {})) - before;
}

/** Responses the cache answered (hit) or found retired (stale) while `run` ran. */
async function cacheResults(stack: Stack, run: () => Promise<unknown>): Promise<{ hit: number; stale: number }> {
  const metric = stack.telemetry.gateway.metrics.cacheRequests;
  const read = async () => ({
    hit: await metricValue(metric, { cache: 'response', result: 'hit' }),
    stale: await metricValue(metric, { cache: 'response', result: 'stale' }),
  });
  const before = await read();
  await run();
  const after = await read();
  return { hit: after.hit - before.hit, stale: after.stale - before.stale };
}

const backends: Array<[string, () => Promise<StackOptions['cache']>]> = [
  ['in memory', async () => ({ kind: 'memory' })],
  [
    'on Redis',
    async () => {
      await requireService('redis');
      return { kind: 'redis', url: services.redis, prefix: `rc-test-${randomUUID()}` };
    },
  ],
];

describe.each(backends)('response cache %s', (_name, cacheOf) => {
  let stack: Stack;
  let client: GraphQLClient;
  let admin: GraphQLClient;
  let as: (sub: string) => Promise<GraphQLClient>;
  beforeAll(async () => {
    stack = await startStack({
      ports: freePorts,
      host: '127.0.0.1',
      logger: silent,
      cache: await cacheOf(),
      // Root lists have no hint: these root fields are kept for a minute, tags keep them fresh.
      responseCacheTtl: { products: 60, me: 60 },
    });
    as = async (sub: string) =>
      graphqlClient(stack.gatewayUrl, {
        headers: bearer(await stack.token(sub, sub === SEED_ADMIN.id ? { roles: ['customer', 'admin'] } : {})),
      });
    client = graphqlClient(stack.gatewayUrl);
    admin = await as(SEED_ADMIN.id);
  });
  afterAll(() => stack?.stop());

  /** Reads `query` until the cache keeps it (the store is written in the background). */
  async function warm(query: string, c: GraphQLClient = client): Promise<void> {
    await c.query(query);
    for (let i = 0; i < 50; i++) {
      if ((await subgraphRequests(stack, () => c.query(query))) === 0) return;
    }
    throw new Error(`never kept: ${query}`);
  }

  it("answers a client document at the alias limit: the markers never push a subgraph's document over its own", async () => {
    // 50 aliases (the gateway's limit) on products' root field, and two more Product selections:
    // marked, products would receive 50 aliases and 52 markers, over its limit of 100.
    const aliased = Array.from({ length: 50 }, (_, i) => `a${i}: product(id: "p${String(i + 1).padStart(5, '0')}") { name }`);
    const query = `{ ${aliased.join(' ')} products(first: 2) { edges { node { name } } } topProducts(first: 2) { name } }`;
    const before = await cacheResults(stack, async () => {
      for (let i = 0; i < 2; i++) {
        const res = await client.query<Record<string, { name: string } | null>>(query);
        expect(res.errors).toBeUndefined();
        expect(res.data?.a49?.name).toEqual(expect.any(String));
      }
    });
    // Served unmarked, and so never kept: no hit.
    expect(before.hit).toBe(0);
    // One alias fewer and no extra selections: marked (50 + 50 is inside the limit) and kept.
    const inside = `{ ${aliased.slice(0, 49).join(' ')} }`;
    await warm(inside);
  });

  it('retires only the responses that hold the written entity, and serves the write', async () => {
    const a = '{ product(id: "p00011") { name price } }';
    const b = '{ product(id: "p00012") { name price } }';
    await warm(a);
    await warm(b);
    const name = `Renamed ${randomUUID().slice(0, 8)}`;
    const write = await admin.query(`mutation { updateProduct(id: "p00011", input: { name: "${name}" }) { id } }`);
    expect(write.errors).toBeUndefined();
    let fresh: { product: { name: string } } | null | undefined;
    const results = await cacheResults(stack, async () => {
      expect(
        await subgraphRequests(stack, async () => (fresh = (await client.query<{ product: { name: string } }>(a)).data)),
      ).toBeGreaterThan(0);
      expect(await subgraphRequests(stack, () => client.query(b))).toBe(0);
    });
    expect(fresh?.product.name).toBe(name);
    expect(results).toEqual({ hit: 1, stale: 1 });
  });

  it('names entities the client selected no id of, and never shows its markers', async () => {
    // No id anywhere: the gateway marks each entity with its id in the plan, and takes the marks out.
    const q = '{ product(id: "p00013") { name reviews(first: 1) { body author { name } } } }';
    const first = await client.query<{ product: { reviews: Array<{ author: { name: string } }> } }>(q);
    expect(JSON.stringify(first.data)).not.toMatch(/_rc/);
    expect(Object.keys(first.data!.product)).toEqual(['name', 'reviews']);
    await warm(q);
    const hit = await client.query(q);
    expect(hit.data).toEqual(first.data);
    expect(JSON.stringify(hit.data)).not.toMatch(/_rc/);
    expect(hit.headers.get('age')).not.toBeNull();
    // The author's id, read apart: the cached response never named it.
    const authorId = (
      await client.query<{ product: { reviews: Array<{ author: { id: string } }> } }>(
        '{ product(id: "p00013") { reviews(first: 1) { author { id } } } }',
      )
    ).data!.product.reviews[0]!.author.id;
    // A write behind the gateway's back, told by an event: the author changed.
    await stack.gateway.invalidate([{ typename: 'User', id: 'u-none' }]);
    expect(await subgraphRequests(stack, () => client.query(q))).toBe(0);
    await stack.gateway.invalidate([{ typename: 'User', id: authorId }]);
    expect(await subgraphRequests(stack, () => client.query(q))).toBeGreaterThan(0);
  });

  it('keeps a root list only with RESPONSE_CACHE_TTL, and retires it when an entity in it changes', async () => {
    // users has no TTL configured: a connection without a hint is never kept.
    const unlisted = '{ users(first: 2) { edges { node { name } } } }';
    await client.query(unlisted);
    expect(await subgraphRequests(stack, () => client.query(unlisted))).toBeGreaterThan(0);

    const listed = '{ products(first: 2) { edges { node { id name } } } }';
    await warm(listed);
    const hit = await client.query(listed);
    // The client is told what the hints say (no max-age): the gateway's TTL is its own.
    expect(hit.headers.get('cache-control')).toBe('no-store');
    const ids = (hit.data as { products: { edges: Array<{ node: { id: string } }> } }).products.edges.map((e) => e.node.id);
    await stack.gateway.invalidate([{ typename: 'Product', id: ids[1]! }]);
    expect(await subgraphRequests(stack, () => client.query(listed))).toBeGreaterThan(0);
  });

  it('keeps private data per signed-in caller and never for anonymous ones', async () => {
    const q = '{ me { id name } }';
    const alice = await as('u00002');
    const bob = await as('u00003');
    await warm(q, alice);
    const bobs = await bob.query<{ me: { id: string } }>(q);
    expect(bobs.data?.me.id).toBe('u00003');
    const alices = await alice.query<{ me: { id: string } }>(q);
    expect(alices.data?.me.id).toBe('u00002');
    // A public response read by a signed-in caller is kept apart from the anonymous one too.
    const p = '{ products(first: 1) { edges { node { name } } } }';
    await warm(p, bob);
    expect(await subgraphRequests(stack, () => client.query(p))).toBeGreaterThan(0);
    // Alice may not read Bob's copy: a list kept by RESPONSE_CACHE_TTL is per caller once signed in.
    expect(await subgraphRequests(stack, () => alice.query(p))).toBeGreaterThan(0);
  });

  it('does not keep a root field that found nothing: no entity in it could retire it', async () => {
    const q = '{ product(id: "p99999") { name } }';
    expect((await client.query<{ product: null }>(q)).data).toEqual({ product: null });
    expect(await subgraphRequests(stack, () => client.query(q))).toBeGreaterThan(0);
  });

  it('does not keep a response with errors', async () => {
    // Someone else's email: null with an error, beside a name that is cacheable for a minute.
    const q = '{ user(id: "u00004") { name email } }';
    const first = await client.query(q);
    expect(first.errors?.length).toBeGreaterThan(0);
    expect(await subgraphRequests(stack, () => client.query(q))).toBeGreaterThan(0);
  });
});
