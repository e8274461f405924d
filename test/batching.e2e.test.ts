import pino from 'pino';
import { SEED_ADMIN } from '@shop/seed';
import { STACK_TEST_ENV, type Stack, type StackOptions, startStack } from '@shop/stack';
import { DEEP_QUERY } from '../bench/lib/workloads';
import { metricValue } from '@shop/telemetry';
import { type GraphQLClient, bearer, graphqlClient } from '@shop/testing';

const SERVICES = ['accounts', 'products', 'inventory', 'reviews'] as const;
const silent = pino({ level: 'silent' });
const freePorts = { gateway: 0, accounts: 0, products: 0, inventory: 0, reviews: 0 };

const DEEP = `query Deep($n: Int!) {
  topProducts(first: $n) {
    id name
    reviews(first: 10) {
      body
      author { id name reviews(first: 3) { product { id name inStock } } }
    }
  }
}`;
type Deep = {
  topProducts: Array<{
    id: string;
    name: string;
    reviews: Array<{
      body: string;
      author: { id: string; name: string; reviews: Array<{ product: { id: string; name: string; inStock: boolean } }> };
    }>;
  }>;
};

/** The stack, an anonymous client (the reads: what caches share), and one signed in as `sub`. */
async function start(options: StackOptions): Promise<{ stack: Stack; client: GraphQLClient; as: (sub: string) => Promise<GraphQLClient> }> {
  const stack = await startStack({ ports: freePorts, host: '127.0.0.1', logger: silent, ...options });
  const as = async (sub: string) =>
    graphqlClient(stack.gatewayUrl, {
      headers: bearer(await stack.token(sub, sub === SEED_ADMIN.id ? { roles: ['customer', 'admin'] } : {})),
    });
  return { stack, client: graphqlClient(stack.gatewayUrl), as };
}

/** Store round trips per service and representations per subgraph that `run` cost. */
async function measure(stack: Stack, run: () => Promise<unknown>) {
  const read = async () => {
    const out: Record<string, { store: number; reps: number; requests: number }> = {};
    for (const s of SERVICES) {
      out[s] = {
        store: await metricValue(stack.telemetry[s].metrics.storeQueries, { service: s }),
        reps: await metricValue(stack.telemetry.gateway.metrics.entityRepresentations, { subgraph: s }),
        requests: await metricValue(stack.telemetry.gateway.metrics.subgraphRequests, { subgraph: s }),
      };
    }
    return out;
  };
  const before = await read();
  await run();
  const after = await read();
  return Object.fromEntries(
    SERVICES.map((s) => [
      s,
      {
        store: after[s]!.store - before[s]!.store,
        reps: after[s]!.reps - before[s]!.reps,
        requests: after[s]!.requests - before[s]!.requests,
      },
    ]),
  ) as Record<(typeof SERVICES)[number], { store: number; reps: number; requests: number }>;
}

const total = (m: Record<string, { reps: number }>) => Object.values(m).reduce((sum, x) => sum + x.reps, 0);

describe('batching: no N+1 (caches off, batchers on)', () => {
  let stack: Stack;
  let client: GraphQLClient;
  beforeAll(async () => {
    ({ stack, client } = await start({ cache: false }));
  });
  afterAll(() => stack?.stop());

  it('costs the same store round trips per subgraph for 5 and for 50 top products, and sends each distinct entity once', async () => {
    const costs: Array<Awaited<ReturnType<typeof measure>>> = [];
    for (const n of [5, 50]) {
      let data: Deep | undefined;
      const cost = await measure(stack, async () => {
        const res = await client.query<Deep>(DEEP, { n });
        expect(res.errors).toBeUndefined();
        data = res.data!;
      });
      costs.push(cost);
      const products = data!.topProducts;
      expect(products).toHaveLength(n);
      const authors = new Set(products.flatMap((p) => p.reviews.map((r) => r.author.id)));
      const nested = new Set(products.flatMap((p) => p.reviews.flatMap((r) => r.author.reviews.map((x) => x.product.id))));
      const occurrences = products.flatMap((p) => p.reviews.flatMap((r) => r.author.reviews)).length;
      // Representations equal distinct entities, not occurrences.
      // Product.reviews for each top product; the authors' own reviews resolve in the same reviews fetch.
      expect(cost.reviews.reps).toBe(n);
      expect(cost.accounts.reps).toBe(authors.size);
      expect(cost.products.reps).toBe(nested.size);
      expect(cost.inventory.reps).toBe(nested.size);
      if (n === 50) expect(occurrences).toBeGreaterThan(nested.size * 2);
    }
    for (const s of SERVICES) expect({ service: s, store: costs[1]![s].store }).toEqual({ service: s, store: costs[0]![s].store });
    // And the counts themselves are small: one batched query per relation.
    expect(costs[1]!.reviews.store).toBe(2);
    expect(costs[1]!.accounts.store).toBe(1);
    expect(costs[1]!.products.store).toBe(2);
    expect(costs[1]!.inventory.store).toBe(1);
  });
});

describe('entity cache (in memory; response cache off so the entity cache is what answers)', () => {
  let stack: Stack;
  let client: GraphQLClient;
  /** Catalogue and stock writes. */
  let admin: GraphQLClient;
  /** Reviews, as their author. */
  let author: GraphQLClient;
  beforeAll(async () => {
    // No bus: eviction here must come from the writes themselves, not from events.
    let as: (sub: string) => Promise<GraphQLClient>;
    ({ stack, client, as } = await start({ cache: { kind: 'memory' }, responseCache: false, bus: false }));
    admin = await as(SEED_ADMIN.id);
    author = await as('u00001');
  });
  afterAll(() => stack?.stop());

  it('sends at least 90% fewer representations warm than cold, with identical data', async () => {
    let cold: unknown;
    let warm: unknown;
    const coldCost = await measure(stack, async () => {
      cold = (await client.query(DEEP, { n: 20 })).data;
    });
    const warmCost = await measure(stack, async () => {
      warm = (await client.query(DEEP, { n: 20 })).data;
    });
    expect(warm).toEqual(cold);
    expect(total(coldCost)).toBeGreaterThan(100);
    expect(total(warmCost)).toBeLessThanOrEqual(total(coldCost) * 0.1);
  });

  it('never serves a stale entity after a write through the gateway', async () => {
    const q = '{ topProducts(first: 3) { id name inStock quantityAvailable reviews(first: 1) { body } } }';
    type Top = {
      topProducts: Array<{ id: string; name: string; inStock: boolean; quantityAvailable: number; reviews: Array<{ body: string }> }>;
    };
    const before = (await client.query<Top>(q)).data!.topProducts;
    await client.query<Top>(q); // warm
    const target = before[1]!;

    // Signed-in writes evict what anonymous reads share.
    const renamed = await admin.query('mutation($id: ID!) { updateProduct(id: $id, input: { name: "Renamed Lamp" }) { id name } }', {
      id: target.id,
    });
    expect(renamed.errors).toBeUndefined();
    const stocked = await admin.query('mutation($id: ID!) { setStock(productId: $id, quantity: 0) { id inStock } }', { id: target.id });
    expect(stocked.errors).toBeUndefined();
    const reviewed = await author.query(
      'mutation($id: ID!) { addReview(input: { productId: $id, body: "Fresh review", rating: 5 }) { id } }',
      {
        id: target.id,
      },
    );
    expect(reviewed.errors).toBeUndefined();

    const after = (await client.query<Top>(q)).data!.topProducts[1]!;
    expect(after).toEqual({
      id: target.id,
      name: 'Renamed Lamp',
      inStock: false,
      quantityAvailable: 0,
      reviews: [{ body: 'Fresh review' }],
    });
  });

  it('evicts an updated product even when the mutation selects no __typename, read through another path', async () => {
    const q = '{ review(id: "r000001") { product { id price } } }';
    const before = (await client.query<{ review: { product: { id: string; price: number } } }>(q)).data!.review.product;
    await client.query(q); // warm: the product's price now comes from the entity cache
    const updated = await admin.query('mutation($id: ID!, $p: Int!) { updateProduct(id: $id, input: { price: $p }) { id price } }', {
      id: before.id,
      p: before.price + 1,
    });
    expect(updated.errors).toBeUndefined();
    const after = (await client.query<{ review: { product: { price: number } } }>(q)).data!.review.product;
    expect(after.price).toBe(before.price + 1);
  });

  it('can be told to evict by type and id, for writes made behind its back', async () => {
    const q = '{ user(id: "u00007") { name reviews(first: 1) { product { name } } } }';
    const first = await client.query<{ user: { reviews: Array<{ product: { name: string } }> } }>(q);
    const productName = first.data!.user.reviews[0]!.product.name;
    const warm = await measure(stack, () => client.query(q));
    expect(warm.products.reps).toBe(0);
    await stack.gateway.invalidate([{ typename: 'Product', id: 'whatever' }]);
    expect((await measure(stack, () => client.query(q))).products.reps).toBe(0);
    const productId = (
      await client.query<{ user: { reviews: Array<{ product: { id: string } }> } }>(
        '{ user(id: "u00007") { reviews(first: 1) { product { id } } } }',
      )
    ).data!.user.reviews[0]!.product.id;
    await stack.gateway.invalidate([{ typename: 'Product', id: productId }]);
    const evicted = await measure(stack, async () => {
      const res = await client.query<{ user: { reviews: Array<{ product: { name: string } }> } }>(q);
      expect(res.data!.user.reviews[0]!.product.name).toBe(productName);
    });
    expect(evicted.products.reps).toBe(1);
  });
});

describe('response cache and APQ', () => {
  let stack: Stack;
  let client: GraphQLClient;
  let admin: GraphQLClient;
  beforeAll(async () => {
    let as: (sub: string) => Promise<GraphQLClient>;
    ({ stack, client, as } = await start({ cache: { kind: 'memory' } }));
    admin = await as(SEED_ADMIN.id);
  });
  afterAll(() => stack?.stop());

  it('answers a repeated cacheable query without any subgraph, until a mutation', async () => {
    const q = '{ product(id: "p00002") { name price } }';
    const first = await client.query<{ product: { name: string } }>(q);
    const again = await measure(stack, async () => {
      const res = await client.query(q);
      expect(res.data).toEqual(first.data);
      expect(res.headers.get('age')).not.toBeNull();
    });
    expect(Object.values(again).reduce((n, x) => n + x.requests, 0)).toBe(0);
    expect((await admin.query('mutation { updateProduct(id: "p00002", input: { name: "New name" }) { id } }')).errors).toBeUndefined();
    const after = await client.query<{ product: { name: string } }>(q);
    expect(after.data?.product.name).toBe('New name');
  });

  it('runs automatic persisted queries', async () => {
    const query = '{ topProducts(first: 1) { id } }';
    const { createHash } = await import('node:crypto');
    const sha256Hash = createHash('sha256').update(query).digest('hex');
    const extensions = { persistedQuery: { version: 1, sha256Hash } };
    const send = (body: object) =>
      fetch(stack.gatewayUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(
        (r) => r.json() as Promise<{ data?: unknown; errors?: Array<{ extensions?: { code?: string } }> }>,
      );
    expect((await send({ extensions })).errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_NOT_FOUND');
    expect((await send({ query, extensions })).data).toEqual({ topProducts: [{ id: 'p00001' }] });
    expect((await send({ extensions })).data).toEqual({ topProducts: [{ id: 'p00001' }] });
  });
});

describe("the bench's deep query: each entity once per subgraph, fetches folded and combined", () => {
  let on: Awaited<ReturnType<typeof start>>;
  let off: Awaited<ReturnType<typeof start>>;
  beforeAll(async () => {
    on = await start({ cache: false });
    // The planner's plan as it is, each fetch sent alone: what plain @apollo/gateway does.
    off = await start({
      cache: false,
      env: { ...STACK_TEST_ENV, FOLD_FETCHES: 'false', LEVEL_FETCHES: 'false' },
      // With an environment the stack would take the config's store (files under DATA_DIR).
      store: () => ({ sqlitePath: ':memory:' }),
      layers: { dedupe: false, merge: false, memo: false, inflight: false },
    });
  });
  afterAll(async () => {
    await on?.stack.stop();
    await off?.stack.stop();
  });

  it('gives the same data while asking inventory, products and accounts for each entity once', async () => {
    let withLayers: unknown;
    let without: unknown;
    const costOn = await measure(on.stack, async () => {
      const res = await on.client.query(DEEP_QUERY);
      expect(res.errors).toBeUndefined();
      withLayers = res.data;
    });
    const costOff = await measure(off.stack, async () => {
      const res = await off.client.query(DEEP_QUERY);
      expect(res.errors).toBeUndefined();
      without = res.data;
    });
    expect(withLayers).toEqual(without);

    // Every product and user object in the response, by id.
    const products = new Set<string>();
    const users = new Set<string>();
    JSON.stringify(withLayers, (key, value: unknown) => {
      if (key === 'product' && value && typeof value === 'object') products.add((value as { id: string }).id);
      if ((key === 'author' || key === 'node') && value && typeof value === 'object') users.add((value as { id: string }).id);
      return value;
    });
    const top = (withLayers as { topProducts: Array<{ id: string }> }).topProducts.map((p) => p.id);
    // inventory: inStock and shippingEstimate in one fetch per product (folded), each product once.
    expect(costOn.inventory.reps).toBe(new Set([...products, ...top]).size);
    // products: each product reached through a review once (top products come from the root field).
    expect(costOn.products.reps).toBe(products.size);
    // accounts: each author once, the root's users not again.
    expect(costOn.accounts.reps).toBeLessThanOrEqual(users.size);
    expect(costOff.inventory.reps).toBeGreaterThan(costOn.inventory.reps);
    const requests = (m: Awaited<ReturnType<typeof measure>>) => SERVICES.reduce((n, s) => n + m[s].requests, 0);
    expect(requests(costOff)).toBe(16);
    expect(requests(costOn)).toBeLessThanOrEqual(7);
    console.log(
      `deep query: ${requests(costOn)} subgraph requests and ${total(costOn)} representations (planner's plan, nothing merged: ${requests(costOff)} and ${total(costOff)})`,
    );
  });
});
