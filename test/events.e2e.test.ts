import pino from 'pino';
import { type Stack, startStack } from '@shop/stack';
import { SEED_ADMIN } from '@shop/seed';
import { type StoreSubgraph, gatewayHeaders } from '@shop/server';
import type { Kysely } from '@shop/store';
import { metricValue } from '@shop/telemetry';
import { type GraphQLClient, bearer, eventually, graphqlClient } from '@shop/testing';

/** Polls `read` until `done` holds, at most `ms`: events are applied asynchronously. */
// Event-driven synchronisation through the gateway, embedded mode (in-process bus, same
// semantics as RabbitMQ), with every cache on: nothing read may stay stale once events apply.
describe('event flows', () => {
  let stack: Stack;
  /** Anonymous: the reads. */
  let client: GraphQLClient;
  /** Signed in: `as(userId)`; the admin with its role. */
  const as = async (sub: string) =>
    graphqlClient(stack.gatewayUrl, {
      headers: bearer(await stack.token(sub, sub === SEED_ADMIN.id ? { roles: ['customer', 'admin'] } : {})),
    });
  beforeAll(async () => {
    stack = await startStack({
      ports: { gateway: 0, accounts: 0, products: 0, inventory: 0, reviews: 0 },
      host: '127.0.0.1',
      logger: pino({ level: 'silent' }),
    });
    client = graphqlClient(stack.gatewayUrl);
  });
  afterAll(() => stack?.stop());

  type Rated = { product: { reviewCount: number; averageRating: number | null } };
  const rating = (id: string) => client.query<Rated>('query($id: ID!) { product(id: $id) { reviewCount averageRating } }', { id });

  it('keeps Product.reviewCount and averageRating from ReviewAdded, without products calling reviews', async () => {
    const before = (await rating('p00009')).data!.product;
    await rating('p00009'); // cached now
    const added = await (
      await as('u00003')
    ).query('mutation { addReview(input: { productId: "p00009", body: "Event driven", rating: 1 }) { id } }');
    expect(added.errors).toBeUndefined();
    const after = await eventually(
      async () => (await rating('p00009')).data!.product,
      (p) => p.reviewCount === before.reviewCount + 1,
    );
    expect(after.reviewCount).toBe(before.reviewCount + 1);
    const expectedAverage = ((before.averageRating ?? 0) * before.reviewCount + 1) / (before.reviewCount + 1);
    expect(after.averageRating).toBeCloseTo(expectedAverage, 1);
    expect(
      await metricValue(stack.telemetry.products.metrics.eventsConsumed, { service: 'products', type: 'ReviewAdded' }),
    ).toBeGreaterThanOrEqual(1);
  });

  it('gives a new product a stock record in inventory from ProductCreated', async () => {
    const created = await (
      await as(SEED_ADMIN.id)
    ).query<{ createProduct: { id: string } }>(
      'mutation { createProduct(input: { name: "Evented Kettle", description: "", price: 2500, weight: 900, category: "home" }) { id } }',
    );
    expect(created.errors).toBeUndefined();
    const id = created.data!.createProduct.id;
    const inventory = stack.subgraphs.inventory as StoreSubgraph<unknown>;
    const db = inventory.store.db as unknown as Kysely<{ stock: { product_id: string; quantity: number } }>;
    const row = await eventually(
      () => db.selectFrom('stock').selectAll().where('product_id', '=', id).executeTakeFirst(),
      (r) => r !== undefined,
    );
    expect(row).toMatchObject({ product_id: id, quantity: 0 });
  });

  it("shows a change made behind the gateway's back once UserUpdated evicts the cached user", async () => {
    const q = '{ user(id: "u00011") { name } }';
    await client.query(q);
    await client.query(q); // the entity (and the response) are cached now
    const direct = graphqlClient(stack.subgraphUrls.accounts);
    // The subgraph answers only requests the gateway signed: this one is signed with the stack's
    // secret, for the user themself.
    const body = JSON.stringify({ query: 'mutation { updateUser(id: "u00011", input: { name: "Renamed Behind" }) { name } }' });
    const renamed = await direct.raw(
      body,
      gatewayHeaders(stack.subgraphSecret, stack.subgraphUrls.accounts, body, {
        identity: { sub: 'u00011', roles: ['customer'], scopes: [] },
      }),
    );
    expect(renamed.errors).toBeUndefined();
    const seen = await eventually(
      async () => (await client.query<{ user: { name: string } }>(q)).data!.user.name,
      (name) => name === 'Renamed Behind',
    );
    expect(seen).toBe('Renamed Behind');
  });

  it('empties every outbox', async () => {
    const pending = await eventually(
      async () => {
        let total = 0;
        for (const s of ['accounts', 'products', 'inventory', 'reviews'] as const) {
          await (stack.subgraphs[s] as StoreSubgraph<unknown>).relay?.runOnce();
          total += await metricValue(stack.telemetry[s].metrics.outboxPending, { service: s });
        }
        return total;
      },
      (n) => n === 0,
    );
    expect(pending).toBe(0);
  });
});
