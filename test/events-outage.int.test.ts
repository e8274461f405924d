import { randomBytes } from 'node:crypto';
import { connect } from 'amqplib';
import { createInventory } from '@shop/inventory';
import { createProducts } from '@shop/products';
import { type AmqpBus, connectAmqpBus } from '@shop/events';
import { type Identity, type StoreSubgraph, gatewayHeaders } from '@shop/server';
import type { Kysely } from '@shop/store';
import { metricValue } from '@shop/telemetry';
import { type Proxy, eventually, graphqlClient, requireService, services, startProxy, testTelemetry } from '@shop/testing';

const SECRET = randomBytes(32).toString('hex');
const CATALOGUE: Identity = { sub: 'u00001', roles: ['customer'], scopes: ['catalog:write'] };

type InventoryTables = {
  stock: { product_id: string; quantity: number };
  inbox: { event_id: string; type: string };
};

// The broker goes away while 1,000 products are created: every write succeeds, the events wait in
// the outbox, and once RabbitMQ is reachable again each is delivered and applied exactly once; a
// consumer rebuilt from a replay from zero ends in the same state.
describe('RabbitMQ outage during 1,000 writes', () => {
  const namespace = `t${randomBytes(4).toString('hex')}`;
  const telemetry = { products: testTelemetry('products'), inventory: testTelemetry('inventory'), replica: testTelemetry('inventory') };
  let proxy: Proxy;
  const buses: AmqpBus[] = [];
  const subgraphs: StoreSubgraph<unknown>[] = [];

  const bus = async (service: string, t = telemetry.products, url?: string) => {
    const b = await connectAmqpBus({ url: url ?? proxy.url, service, telemetry: t, namespace, reconnectDelayMs: () => 100 });
    buses.push(b);
    return b;
  };
  const stockOf = (s: StoreSubgraph<unknown>) => s.store.db as unknown as Kysely<InventoryTables>;

  beforeAll(async () => {
    await requireService('amqp');
    proxy = await startProxy(services.amqp);
  });
  afterAll(async () => {
    for (const s of subgraphs) await s.stop();
    for (const b of buses) await b.close();
    await proxy?.close();
    // Remove this run's queues and exchange from the shared broker.
    const conn = await connect(services.amqp);
    const ch = await conn.createChannel();
    for (const q of ['inventory', 'inventory-replay']) {
      await ch.deleteQueue(`${namespace}.${q}`).catch(() => undefined);
      await ch.deleteQueue(`${namespace}.${q}.dlq`).catch(() => undefined);
    }
    await ch.deleteExchange(`${namespace}.events`).catch(() => undefined);
    await conn.close();
  });

  it('loses nothing and applies each event once', async () => {
    const seed = { users: 0, products: 5, reviews: 0 };
    const products = (await createProducts({
      telemetry: telemetry.products,
      store: { sqlitePath: ':memory:' },
      seed,
      bus: await bus('products'),
    })) as StoreSubgraph<unknown>;
    const inventory = (await createInventory({
      telemetry: telemetry.inventory,
      store: { sqlitePath: ':memory:' },
      seed,
      bus: await bus('inventory', telemetry.inventory),
    })) as StoreSubgraph<unknown>;
    subgraphs.push(products, inventory);
    // Signed as the gateway would sign a catalogue manager's request: createProduct needs catalog:write.
    const url = `${(await products.listen(0, '127.0.0.1', { gatewaySecret: SECRET })).url}/graphql`;
    const client = graphqlClient(url, { sign: (body) => gatewayHeaders(SECRET, url, body, { identity: CATALOGUE }) });

    proxy.cut();
    const ids: string[] = [];
    for (let i = 0; i < 1000; i++) {
      const res = await client.query<{ createProduct: { id: string } }>(
        'mutation($n: String!) { createProduct(input: { name: $n, description: "", price: 100, weight: 100, category: "toys" }) { id } }',
        { n: `Outage ${i}` },
      );
      expect(res.errors).toBeUndefined();
      ids.push(res.data!.createProduct.id);
    }
    await products.relay?.runOnce().catch(() => 0);
    expect(await metricValue(telemetry.products.metrics.outboxPending, { service: 'products' })).toBe(1000);

    proxy.restore();
    const created = new Set(ids);
    const applied = await eventually(
      async () =>
        (await stockOf(inventory).selectFrom('stock').select('product_id').execute()).filter((r) => created.has(r.product_id)).length,
      (n) => n === 1000,
      60_000,
    );
    expect(applied).toBe(1000);
    // The relay marks a batch (and sets the gauge) after the broker's confirm; consumers may have
    // applied the batch before that: wait for the mark.
    const pendingAfter = await eventually(
      () => metricValue(telemetry.products.metrics.outboxPending, { service: 'products' }),
      (n) => n === 0,
      60_000,
    );
    expect(pendingAfter).toBe(0);
    const inbox = await stockOf(inventory).selectFrom('inbox').select(['event_id', 'type']).execute();
    expect(inbox.filter((r) => r.type === 'ProductCreated')).toHaveLength(1000);

    // Replay from zero into a fresh consumer: same state. The original consumer receives the
    // replay too, as duplicates, and its inbox makes them no-ops.
    const replica = (await createInventory({
      telemetry: telemetry.replica,
      store: { sqlitePath: ':memory:' },
      seed,
      bus: await bus('inventory-replay', telemetry.replica, services.amqp),
    })) as StoreSubgraph<unknown>;
    subgraphs.push(replica);
    // The replica consumes as its own group: bind it by subscribing under another name.
    const replayBus = buses.at(-1)!;
    const { idempotentConsumer } = await import('@shop/events');
    const { StockRepository } = await import('@shop/inventory');
    const sub = await replayBus.subscribe({
      group: 'inventory-replay',
      types: ['ProductCreated'],
      handler: idempotentConsumer({
        store: replica.store,
        telemetry: telemetry.replica,
        handlers: { ProductCreated: { versions: [1], handle: (trx, e) => StockRepository.ensureRecord(trx as never, e.aggregateId) } },
      }),
    });
    await products.relay!.replayFrom(0);
    const rebuilt = await eventually(
      async () =>
        (await stockOf(replica).selectFrom('stock').select('product_id').execute()).filter((r) => created.has(r.product_id)).length,
      (n) => n === 1000,
      60_000,
    );
    await sub.close();
    expect(rebuilt).toBe(1000);
    const original = await stockOf(inventory).selectFrom('stock').select(['product_id', 'quantity']).orderBy('product_id').execute();
    const fromReplay = await stockOf(replica).selectFrom('stock').select(['product_id', 'quantity']).orderBy('product_id').execute();
    expect(fromReplay).toEqual(original);
    const inboxAfter = await stockOf(inventory).selectFrom('inbox').select('event_id').where('type', '=', 'ProductCreated').execute();
    expect(inboxAfter).toHaveLength(1000);
  }, 180_000);
});
