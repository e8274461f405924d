import { randomBytes } from 'node:crypto';
import { MemoryBroker, MemoryBus } from '@shop/events';
import { type Identity, gatewayHeaders } from '@shop/server';
import { type Kysely, sql } from '@shop/store';
import { type GraphQLClient, eventually, graphqlClient, storeBackend, testTelemetry } from '@shop/testing';
import { type OrdersSubgraph, createOrders, orderIdFor } from '../src/server';

/** The order's id: the chosen key behind its customer's slot. */
const ORDER_ID = orderIdFor('u00001', 'retry-1');

// A checkout sent again with its key while the request that started it has not brought the
// projections up yet (it is still running, its client gave up on it, or its process died right
// after the commit): the retry must answer with the checkout, not fail. Found by the services-mode
// crash suite (test/checkout-services.e2e.test.ts): retries after a gateway timeout got
// INTERNAL_SERVER_ERROR "checkout ... has no view after it started". On PostgreSQL, where a
// transaction can hold the checkout's view back deterministically.
describe('checkout sent again before its view exists (PostgreSQL)', () => {
  const backend = storeBackend('postgres', 'orders_checkout_retry');
  const secret = randomBytes(32).toString('hex');
  const telemetry = testTelemetry('orders');
  const bus = new MemoryBus({ service: 'orders', telemetry, broker: new MemoryBroker() });
  let subgraph: OrdersSubgraph;
  let client: GraphQLClient;

  beforeAll(async () => {
    // The poller stays out of the way: only the requests' own catch-ups project.
    subgraph = await createOrders({
      telemetry,
      store: await backend.location(),
      seed: { users: 5, products: 5, reviews: 0 },
      bus,
      projectionPollMs: 600_000,
    });
    const url = `${(await subgraph.listen(0, '127.0.0.1', { gatewaySecret: secret })).url}/graphql`;
    const identity: Identity = { sub: 'u00001', roles: ['customer'], scopes: [] };
    client = graphqlClient(url, { sign: (body) => gatewayHeaders(secret, url, body, { identity }) });
  });
  afterAll(async () => {
    await subgraph?.stop();
    await bus.close();
    await backend.cleanup();
  });

  const checkout = (key: string) =>
    client.query<{ checkout: { id: string; status: string } }>(
      'mutation ($id: ID!, $key: String!) { checkout(orderId: $id, idempotencyKey: $key) { id status } }',
      { id: ORDER_ID, key },
    );

  it('answers the retry with the checkout the first request started', async () => {
    expect((await client.query('mutation { createOrder(id: "retry-1") { id } }')).errors).toBeUndefined();
    expect(
      (await client.query('mutation ($id: ID!) { addOrderLine(orderId: $id, productId: "p00001", quantity: 1) { id } }', { id: ORDER_ID }))
        .errors,
    ).toBeUndefined();
    const db = subgraph.store.db as unknown as Kysely<{ checkout_keys: { idempotency_key: string; checkout_id: string } }>;

    // Another transaction keeps writers off checkout_view until `release` is called.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let locked!: () => void;
    const isLocked = new Promise<void>((resolve) => (locked = resolve));
    const holder = db.transaction().execute(async (trx) => {
      await sql`lock table checkout_view in exclusive mode`.execute(trx);
      locked();
      await released;
    });
    await isLocked;

    let first: ReturnType<typeof checkout> | undefined;
    let second: Awaited<ReturnType<typeof checkout>> | undefined;
    try {
      // The first request commits the checkout, then waits to project it.
      first = checkout('key-1');
      const started = await eventually(
        () => db.selectFrom('checkout_keys').select('checkout_id').where('idempotency_key', '=', 'key-1').executeTakeFirst(),
        (row) => row !== undefined,
      );
      // The client gave up on it and sends the same key again: one checkout, the same one.
      const retry = checkout('key-1').then((res) => (second = res));
      await new Promise((resolve) => setTimeout(resolve, 300));
      release();
      await holder;
      await retry;
      const answered = await first;
      expect(answered.errors).toBeUndefined();
      expect(second?.errors).toBeUndefined();
      expect(second?.data?.checkout).toEqual({ id: started?.checkout_id, status: 'RUNNING' });
      expect(answered.data?.checkout.id).toBe(started?.checkout_id);
    } finally {
      release();
      await holder.catch(() => undefined);
      await first?.catch(() => undefined);
    }
  });
});
