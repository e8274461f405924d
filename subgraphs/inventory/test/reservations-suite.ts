import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  COMMIT_STOCK,
  CHECKOUT_REPLIES,
  type CheckoutMessages,
  type EventEnvelope,
  type IdempotentConsumer,
  MemoryBroker,
  MemoryBus,
  RELEASE_STOCK,
  RESERVE_STOCK,
  RESTOCK,
  eventMigrations,
  eventTables,
  idempotentConsumer,
} from '@shop/events';
import { gatewayHeaders } from '@shop/server';
import { type Store, type StoreLocation, openStore, sql } from '@shop/store';
import { metricValue } from '@shop/telemetry';
import { type Backend, type GraphQLClient, graphqlClient, testTelemetry } from '@shop/testing';
import { migrations } from '../src/data/migrations';
import type { InventoryDB } from '../src/data/repository';
import {
  STOCK_CHANGED,
  type InventorySubgraph,
  type StockChangedPayload,
  StockRepository,
  createInventory,
  inventoryConsumers,
} from '../src/server';

const SECRET = randomBytes(32).toString('hex');
const WAREHOUSE = { sub: 'u00001', roles: ['customer'], scopes: ['inventory:write'] };
const FIELDS = 'id inStock quantityAvailable quantityOnHand quantityReserved';

type Command = typeof RESERVE_STOCK | typeof COMMIT_STOCK | typeof RELEASE_STOCK | typeof RESTOCK;
type Levels = { id: string; inStock: boolean; quantityAvailable: number; quantityOnHand: number; quantityReserved: number };
type Message = { type: string; payload: Record<string, unknown> };

/** A command as orders' outbox would publish it: a fresh event id every time (a saga's retry is a new event). */
function envelope<T extends Command>(type: T, payload: CheckoutMessages[T]): EventEnvelope {
  return {
    id: randomUUID(),
    type,
    source: 'orders',
    aggregateId: payload.checkoutId,
    aggregateVersion: 1,
    occurredAt: new Date().toISOString(),
    schemaVersion: 1,
    payload,
  };
}

const inMinutes = (m: number) => new Date(Date.now() + m * 60_000).toISOString();
let n = 0;
/** A fresh checkout id and its order id. */
const checkout = () => {
  n += 1;
  return { checkoutId: `c-${n}-${randomUUID().slice(0, 8)}`, orderId: `o-${n}` };
};
const reserve = (c: { checkoutId: string; orderId: string }, lines: Array<[string, number]>, expiresAt = inMinutes(5)) =>
  envelope(RESERVE_STOCK, { ...c, lines: lines.map(([productId, quantity]) => ({ productId, quantity })), expiresAt });
const commit = (c: { checkoutId: string; orderId: string }) => envelope(COMMIT_STOCK, c);
const release = (c: { checkoutId: string; orderId: string }) => envelope(RELEASE_STOCK, c);
const restock = (c: { checkoutId: string; orderId: string }) => envelope(RESTOCK, c);

/** Messages in a store's outbox for one aggregate (a checkout's replies, a product's StockChanged), in order. */
async function outboxOf(store: Store<unknown>, aggregateId: string): Promise<Message[]> {
  const rows = await eventTables(store.db)
    .selectFrom('outbox')
    .select(['type', 'payload'])
    .where('aggregate_id', '=', aggregateId)
    .orderBy('aggregate_version')
    .execute();
  return rows.map((r) => ({ type: r.type, payload: JSON.parse(r.payload) as Record<string, unknown> }));
}

/** The checkout saga's inventory step over SQLite (reservations.test.ts) and PostgreSQL (reservations.int.test.ts). */
export function reservationsSuite(backend: Backend): void {
  describe(`inventory reservations on ${backend.name}`, () => {
    const telemetry = testTelemetry('inventory');
    let subgraph: InventorySubgraph;
    let store: Store<unknown>;
    let consumer: IdempotentConsumer;
    let writer: GraphQLClient;
    let reader: GraphQLClient;
    let location: StoreLocation;

    const replies = (c: { checkoutId: string }) => outboxOf(store, c.checkoutId);
    const changes = async (productId: string) => (await outboxOf(store, productId)).filter((m) => m.type === STOCK_CHANGED);
    const counted = (outcome: string) =>
      metricValue(telemetry.registry.getSingleMetric('inventory_reservations_total') as never, { service: 'inventory', outcome });
    const set = async (productId: string, quantity: number) => {
      const res = await writer.query(`mutation($id: ID!, $q: Int!) { setStock(productId: $id, quantity: $q) { ${FIELDS} } }`, {
        id: productId,
        q: quantity,
      });
      expect(res.errors).toBeUndefined();
    };
    const levels = async (...ids: string[]): Promise<Levels[]> => {
      const res = await reader.query<{ _entities: Levels[] }>(
        `query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { ${FIELDS} } } }`,
        { r: ids.map((id) => ({ __typename: 'Product', id })) },
      );
      expect(res.errors).toBeUndefined();
      return res.data!._entities;
    };
    const level = async (id: string) => (await levels(id))[0]!;
    /** A fresh product id with `quantity` on hand. */
    const product = async (quantity: number) => {
      const id = `p-${randomUUID().slice(0, 8)}`;
      await set(id, quantity);
      return id;
    };

    /**
     * The suite's consumer and, on PostgreSQL, three more as other replicas would run them: a
     * store (connection pool) and repository of their own over the same database.
     */
    const withReplicas = async () => {
      const replicas: Array<Store<InventoryDB>> = [];
      const consumers: IdempotentConsumer[] = [consumer];
      if (location.postgresUrl) {
        for (let i = 0; i < 3; i++) {
          const replica = await openStore<InventoryDB>({
            service: 'inventory',
            telemetry,
            postgresUrl: location.postgresUrl,
            poolSize: 10,
          });
          replicas.push(replica);
          const handlers = inventoryConsumers(new StockRepository(replica), telemetry);
          consumers.push(idempotentConsumer({ store: replica as unknown as Store<unknown>, telemetry, handlers }));
        }
      }
      return { consumers, replicas };
    };

    beforeAll(async () => {
      // No sweeper of its own: the tests sweep by hand (a live one has its own test below).
      location = await backend.location();
      subgraph = await createInventory({ telemetry, store: location, seed: false, reservationSweepIntervalMs: false });
      store = subgraph.store as Store<unknown>;
      // The very handlers the subgraph subscribes with, behind the same inbox, called directly.
      consumer = idempotentConsumer({ store, telemetry, handlers: inventoryConsumers(subgraph.stock, telemetry) });
      const url = `${(await subgraph.listen(0, '127.0.0.1', { gatewaySecret: SECRET })).url}/graphql`;
      reader = graphqlClient(url, { sign: (body) => gatewayHeaders(SECRET, url, body) });
      writer = graphqlClient(url, { sign: (body) => gatewayHeaders(SECRET, url, body, { identity: WAREHOUSE }) });
    });
    afterAll(async () => {
      await subgraph?.stop();
      await backend.cleanup();
    });

    it('shows on hand, reserved and available; a product without a record has none of each', async () => {
      const id = await product(6);
      expect(await level(id)).toEqual({ id, inStock: true, quantityAvailable: 6, quantityOnHand: 6, quantityReserved: 0 });
      await consumer(reserve(checkout(), [[id, 4]]));
      expect(await level(id)).toEqual({ id, inStock: true, quantityAvailable: 2, quantityOnHand: 6, quantityReserved: 4 });
      await consumer(reserve(checkout(), [[id, 2]]));
      // Everything on hand is promised: nothing more can be ordered.
      expect(await level(id)).toEqual({ id, inStock: false, quantityAvailable: 0, quantityOnHand: 6, quantityReserved: 6 });
      expect(await level('p-none')).toEqual({ id: 'p-none', inStock: false, quantityAvailable: 0, quantityOnHand: 0, quantityReserved: 0 });
    });

    it('reserves all lines or none, and a refusal lists each short line with what was asked and available', async () => {
      const a = await product(5);
      const b = await product(1);
      const short = checkout();
      await consumer(
        reserve(short, [
          [a, 2],
          [b, 2],
          ['p-unknown', 1],
        ]),
      );
      const failed = await replies(short);
      expect(failed).toEqual([
        {
          type: 'StockReservationFailed',
          payload: {
            ...short,
            reason: 'OUT_OF_STOCK',
            lines: [
              { productId: b, requested: 2, available: 1 },
              { productId: 'p-unknown', requested: 1, available: 0 },
            ].sort((x, y) => (x.productId < y.productId ? -1 : 1)),
          },
        },
      ]);
      // Nothing was held for the lines that were available.
      expect((await levels(a, b)).map((l) => l.quantityReserved)).toEqual([0, 0]);
      expect(await subgraph.stock.reservation(short.checkoutId)).toMatchObject({ status: 'REJECTED' });

      const ok = checkout();
      const expiresAt = inMinutes(10);
      // A product listed twice asks for the sum.
      await consumer(
        reserve(
          ok,
          [
            [a, 1],
            [b, 1],
            [a, 1],
          ],
          expiresAt,
        ),
      );
      expect(await replies(ok)).toEqual([{ type: 'StockReserved', payload: { ...ok, expiresAt } }]);
      expect(await levels(a, b)).toEqual([
        { id: a, inStock: true, quantityAvailable: 3, quantityOnHand: 5, quantityReserved: 2 },
        { id: b, inStock: false, quantityAvailable: 0, quantityOnHand: 1, quantityReserved: 1 },
      ]);
      expect(await subgraph.stock.reservation(ok.checkoutId)).toEqual({
        ...ok,
        status: 'HELD',
        lines: [
          { productId: a, quantity: 2 },
          { productId: b, quantity: 1 },
        ].sort((x, y) => (x.productId < y.productId ? -1 : 1)),
        shortages: [],
        expiresAt,
      });
      // Each product announces its new levels (setStock's, then the reservation's), for the gateway to evict Product.
      const last = (await changes(a)).at(-1)?.payload as StockChangedPayload;
      expect(last).toEqual({
        productId: a,
        quantityOnHand: 5,
        quantityReserved: 2,
        quantityAvailable: 3,
        affects: [{ __typename: 'Product', id: a }],
      });
      expect((await changes(b)).map((m) => m.payload.quantityAvailable)).toEqual([1, 0]);
    });

    it('commit ships the units (on hand and reserved down), restock puts them back; each answered once applied', async () => {
      const p = await product(10);
      const c = checkout();
      await consumer(reserve(c, [[p, 3]]));
      await consumer(commit(c));
      expect(await level(p)).toMatchObject({ quantityOnHand: 7, quantityReserved: 0, quantityAvailable: 7 });
      expect(await subgraph.stock.reservation(c.checkoutId)).toMatchObject({ status: 'COMMITTED' });
      // The saga releases only before it commits: a release now leaves the shipped units alone and says so.
      await consumer(release(c));
      expect(await level(p)).toMatchObject({ quantityOnHand: 7, quantityReserved: 0 });
      await consumer(restock(c));
      expect(await level(p)).toMatchObject({ quantityOnHand: 10, quantityReserved: 0, quantityAvailable: 10 });
      expect(await subgraph.stock.reservation(c.checkoutId)).toMatchObject({ status: 'RESTOCKED' });
      // Seen again (new event ids): answered again, applied never.
      await consumer(restock(c));
      await consumer(commit(c));
      expect(await level(p)).toMatchObject({ quantityOnHand: 10, quantityReserved: 0 });
      expect((await replies(c)).map((m) => m.type)).toEqual([
        'StockReserved',
        'StockCommitted',
        'StockCommitted',
        'StockRestocked',
        'StockRestocked',
        'StockCommitted',
      ]);
      expect((await changes(p)).map((m) => [m.payload.quantityOnHand, m.payload.quantityReserved])).toEqual([
        [10, 0], // setStock
        [10, 3], // reserved
        [7, 0], // committed
        [10, 0], // restocked
      ]);
    });

    it('release gives the units back; releasing again, or an unknown checkout, is answered StockReleased; a released one cannot commit', async () => {
      const p = await product(4);
      const c = checkout();
      await consumer(reserve(c, [[p, 4]]));
      await consumer(release(c));
      expect(await level(p)).toMatchObject({ quantityOnHand: 4, quantityReserved: 0, quantityAvailable: 4 });
      await consumer(release(c));
      await consumer(commit(c));
      expect(await level(p)).toMatchObject({ quantityOnHand: 4, quantityReserved: 0 });
      expect(await replies(c)).toEqual([
        { type: 'StockReserved', payload: expect.objectContaining(c) },
        { type: 'StockReleased', payload: { ...c, expired: false } },
        { type: 'StockReleased', payload: { ...c, expired: false } },
        { type: 'StockCommitFailed', payload: { ...c, reason: 'RESERVATION_RELEASED' } },
      ]);

      const unknown = checkout();
      await consumer(release(unknown));
      await consumer(commit(unknown));
      await consumer(restock(unknown));
      expect(await replies(unknown)).toEqual([
        { type: 'StockReleased', payload: { ...unknown, expired: false } },
        { type: 'StockCommitFailed', payload: { ...unknown, reason: 'NO_RESERVATION' } },
        { type: 'StockRestocked', payload: unknown },
      ]);
      expect(await subgraph.stock.reservation(unknown.checkoutId)).toBeUndefined();
    });

    it('applies a redelivered event once (inbox) and a repeated command once (recorded outcome), the refusal included', async () => {
      const p = await product(2);
      const c = checkout();
      const event = reserve(c, [[p, 2]]);
      await consumer(event);
      await consumer(event);
      await consumer.batch([event, event]);
      expect(await level(p)).toMatchObject({ quantityReserved: 2 });
      expect((await replies(c)).map((m) => m.type)).toEqual(['StockReserved']);
      // The saga's retry: the same command under a new event id gets the same answer, nothing more.
      await consumer(reserve(c, [[p, 2]]));
      expect(await level(p)).toMatchObject({ quantityReserved: 2 });
      expect((await replies(c)).map((m) => m.type)).toEqual(['StockReserved', 'StockReserved']);
      const committing = commit(c);
      await consumer(committing);
      await consumer(committing);
      await consumer(commit(c));
      expect(await level(p)).toMatchObject({ quantityOnHand: 0, quantityReserved: 0 });
      expect((await replies(c)).map((m) => m.type)).toEqual(['StockReserved', 'StockReserved', 'StockCommitted', 'StockCommitted']);

      // A refusal is recorded too: a retry after stock arrived still gets the refusal (that checkout has moved on).
      const refused = checkout();
      await consumer(reserve(refused, [[p, 1]]));
      await set(p, 5);
      await consumer(reserve(refused, [[p, 1]]));
      expect((await replies(refused)).map((m) => [m.type, m.payload.lines])).toEqual([
        ['StockReservationFailed', [{ productId: p, requested: 1, available: 0 }]],
        ['StockReservationFailed', [{ productId: p, requested: 1, available: 0 }]],
      ]);
      expect(await level(p)).toMatchObject({ quantityOnHand: 5, quantityReserved: 0 });
    });

    it('sweeps HELD reservations past their expiry: units back, StockReleased { expired: true } to orders, once', async () => {
      const p = await product(5);
      const due = checkout();
      const notDue = checkout();
      const committed = checkout();
      const expiredBefore = await counted('expired');
      await consumer(reserve(due, [[p, 2]], new Date(Date.now() + 1_000).toISOString()));
      await consumer(reserve(notDue, [[p, 1]], inMinutes(5)));
      await consumer(reserve(committed, [[p, 1]], new Date(Date.now() + 1_000).toISOString()));
      await consumer(commit(committed));
      expect(await level(p)).toMatchObject({ quantityOnHand: 4, quantityReserved: 3, quantityAvailable: 1 });

      const later = Date.now() + 2_000;
      expect(await subgraph.sweeper.sweepOnce(later)).toBe(1);
      expect(await subgraph.sweeper.sweepOnce(later)).toBe(0);
      expect(await level(p)).toMatchObject({ quantityOnHand: 4, quantityReserved: 1, quantityAvailable: 3 });
      expect(await subgraph.stock.reservation(due.checkoutId)).toMatchObject({ status: 'EXPIRED' });
      expect(await subgraph.stock.reservation(notDue.checkoutId)).toMatchObject({ status: 'HELD' });
      expect((await replies(due)).map((m) => m.payload)).toEqual([
        expect.objectContaining({ expiresAt: expect.any(String) }),
        { ...due, expired: true },
      ]);
      expect((await changes(p)).at(-1)?.payload).toMatchObject({ quantityReserved: 1, quantityAvailable: 3 });
      expect((await counted('expired')) - expiredBefore).toBe(1);

      // The saga learns of it and may still try: commit fails, release is answered as expired.
      await consumer(commit(due));
      await consumer(release(due));
      expect((await replies(due)).slice(2)).toEqual([
        { type: 'StockCommitFailed', payload: { ...due, reason: 'RESERVATION_EXPIRED' } },
        { type: 'StockReleased', payload: { ...due, expired: true } },
      ]);
      expect(await level(p)).toMatchObject({ quantityReserved: 1 });
    });

    it('sweeps a backlog a page (100) at a time, each reservation once', async () => {
      const p = await product(130);
      const gone = new Date(Date.now() - 1_000).toISOString();
      await consumer.batch(Array.from({ length: 130 }, () => reserve(checkout(), [[p, 1]], gone)));
      expect(await level(p)).toMatchObject({ quantityReserved: 130 });
      expect(await subgraph.sweeper.sweepOnce()).toBe(100);
      expect(await subgraph.sweeper.sweepOnce()).toBe(30);
      expect(await subgraph.sweeper.sweepOnce()).toBe(0);
      expect(await level(p)).toMatchObject({ quantityOnHand: 130, quantityReserved: 0, quantityAvailable: 130 });
    });

    it('a commit arriving after the expiry, before any sweep, expires the hold instead of committing it', async () => {
      const p = await product(3);
      const c = checkout();
      await consumer(reserve(c, [[p, 3]], new Date(Date.now() - 1_000).toISOString()));
      expect(await level(p)).toMatchObject({ quantityReserved: 3 });
      await consumer(commit(c));
      expect(await level(p)).toMatchObject({ quantityOnHand: 3, quantityReserved: 0 });
      expect((await replies(c)).slice(1)).toEqual([
        { type: 'StockReleased', payload: { ...c, expired: true } },
        { type: 'StockCommitFailed', payload: { ...c, reason: 'RESERVATION_EXPIRED' } },
      ]);
      expect(await subgraph.sweeper.sweepOnce(Date.now() + 1_000)).toBe(0);
    });

    it('refuses setStock below what is reserved (BAD_USER_INPUT on quantity) and allows it down to exactly that', async () => {
      const p = await product(5);
      await consumer(reserve(checkout(), [[p, 3]]));
      const res = await writer.query('mutation($id: ID!) { setStock(productId: $id, quantity: 2) { id } }', { id: p });
      expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'quantity', reserved: 3 });
      expect(await level(p)).toMatchObject({ quantityOnHand: 5, quantityReserved: 3 });
      await set(p, 3);
      expect(await level(p)).toMatchObject({ quantityOnHand: 3, quantityReserved: 3, quantityAvailable: 0, inStock: false });
      expect((await changes(p)).map((m) => m.payload.quantityOnHand)).toEqual([5, 5, 3]);
    });

    it('counts each outcome once in inventory_reservations_total', async () => {
      const outcomes = ['reserved', 'out_of_stock', 'committed', 'released', 'restocked'] as const;
      const before = await Promise.all(outcomes.map(counted));
      const p = await product(2);
      const [a, b, c] = [checkout(), checkout(), checkout()];
      await consumer(reserve(a, [[p, 1]]));
      await consumer(reserve(b, [[p, 1]]));
      await consumer(reserve(c, [[p, 1]]));
      await consumer(reserve(c, [[p, 1]]));
      await consumer(commit(a));
      await consumer(commit(a));
      await consumer(release(b));
      await consumer(restock(a));
      const after = await Promise.all(outcomes.map(counted));
      expect(after.map((v, i) => v - before[i]!)).toEqual([2, 1, 1, 1, 1]);
    });

    it('never oversells: 200 concurrent reserves of 1 unit for 50 available hold exactly 50', async () => {
      const p = await product(50);
      const checkouts = Array.from({ length: 200 }, () => checkout());
      const events = checkouts.map((c) => reserve(c, [[p, 1]]));
      // On PostgreSQL, four "replicas" (a pool of their own each) take the commands at once, one
      // transaction per command or several per transaction, as the bus would hand them out; on
      // SQLite, one writer takes them in turn.
      const { consumers, replicas } = await withReplicas();
      let lowest = Infinity;
      let watching = true;
      const watcher = (async () => {
        while (watching) {
          const row = await sql<{ available: number }>`select quantity - reserved as available from stock where product_id = ${p}`.execute(
            store.db,
          );
          lowest = Math.min(lowest, Number(row.rows[0]?.available));
          await new Promise((r) => setTimeout(r, 2));
        }
      })();
      try {
        await Promise.all(
          chunksOf(events, 5).map((group, i) => {
            const target = consumers[i % consumers.length]!;
            return i % 3 === 0 ? target.batch(group) : Promise.all(group.map((e) => target(e)));
          }),
        );
      } finally {
        watching = false;
        await watcher;
        await Promise.all(replicas.map((r) => r.close()));
      }
      const outcomes = await Promise.all(checkouts.map(async (c) => (await replies(c)).map((m) => m.type)));
      expect(outcomes.filter((o) => o.join() === 'StockReserved')).toHaveLength(50);
      expect(outcomes.filter((o) => o.join() === 'StockReservationFailed')).toHaveLength(150);
      expect(await level(p)).toEqual({ id: p, inStock: false, quantityAvailable: 0, quantityOnHand: 50, quantityReserved: 50 });
      expect(lowest).toBeGreaterThanOrEqual(0);
    });

    it('never deadlocks or oversells when concurrent orders list the same products in different orders', async () => {
      const a = await product(30);
      const b = await product(40);
      const checkouts = Array.from({ length: 100 }, () => checkout());
      const events = checkouts.map((c, i) =>
        reserve(
          c,
          i % 2 === 0
            ? [
                [a, 1],
                [b, 1],
              ]
            : [
                [b, 1],
                [a, 1],
              ],
        ),
      );
      const { consumers, replicas } = await withReplicas();
      try {
        // One command per transaction: every one must succeed first time (a deadlock would throw here).
        await Promise.all(events.map((e, i) => consumers[i % consumers.length]!(e)));
      } finally {
        await Promise.all(replicas.map((r) => r.close()));
      }
      const outcomes = await Promise.all(checkouts.map(async (c) => (await replies(c)).map((m) => m.type).join()));
      expect(outcomes.filter((o) => o === 'StockReserved')).toHaveLength(30);
      expect(await levels(a, b)).toEqual([
        { id: a, inStock: false, quantityAvailable: 0, quantityOnHand: 30, quantityReserved: 30 },
        { id: b, inStock: true, quantityAvailable: 10, quantityOnHand: 40, quantityReserved: 30 },
      ]);
    });

    it('the store itself refuses more reserved than on hand, or a negative reservation (CHECK)', async () => {
      const p = await product(1);
      // Matched on the error's message, not with rejects.toThrow: better-sqlite3's native addon
      // binds its SqliteError class once per process, in the realm of the first test file that
      // opened a SQLite database. In a later file run by the same jest worker that error is no
      // `instanceof Error` of this file's realm, and toThrow would say "did not throw".
      const refused = { message: expect.stringMatching(/check|constraint/i) as unknown };
      await expect(sql`update stock set reserved = 2 where product_id = ${p}`.execute(store.db)).rejects.toMatchObject(refused);
      await expect(sql`update stock set reserved = -1 where product_id = ${p}`.execute(store.db)).rejects.toMatchObject(refused);
      expect(await level(p)).toMatchObject({ quantityOnHand: 1, quantityReserved: 0 });
    });
  });

  describe(`inventory reservations over the bus on ${backend.name}`, () => {
    const started: InventorySubgraph[] = [];
    afterAll(async () => {
      await Promise.all(started.map((s) => s.stop()));
      await backend.cleanup();
    });

    it('replicas consume the commands from the bus, reply through their outboxes, and their sweepers expire holds', async () => {
      const broker = new MemoryBroker();
      const location = await backend.location();
      // SQLite in memory is one process's own database: one replica there; three on PostgreSQL.
      const replicas = location.postgresUrl ? 3 : 1;
      for (let i = 0; i < replicas; i++) {
        const telemetry = testTelemetry('inventory');
        const bus = new MemoryBus({ service: 'inventory', telemetry, broker });
        started.push(await createInventory({ telemetry, store: location, bus, seed: false, reservationSweepIntervalMs: 50 }));
      }
      const ordersTelemetry = testTelemetry('orders');
      const orders = new MemoryBus({ service: 'orders', telemetry: ordersTelemetry, broker });
      const received: EventEnvelope[] = [];
      const stockChanges: EventEnvelope[] = [];
      await orders.subscribe({ group: 'orders', types: [...CHECKOUT_REPLIES], handler: async (e) => void received.push(e) });
      await orders.subscribe({ group: 'gateway', types: [STOCK_CHANGED], handler: async (e) => void stockChanges.push(e) });

      const p = 'p-bus';
      await started[0]!.stock.set(p, 20);
      const checkouts = Array.from({ length: 60 }, () => checkout());
      await orders.publish(checkouts.map((c) => reserve(c, [[p, 1]])));
      await until(() => received.length >= 60);
      expect(received.filter((e) => e.type === 'StockReserved')).toHaveLength(20);
      expect(received.filter((e) => e.type === 'StockReservationFailed')).toHaveLength(40);
      expect(new Set(received.map((e) => e.aggregateId)).size).toBe(60);

      // A short hold, never committed: some replica's sweeper gives it back and tells orders.
      const held = received.filter((e) => e.type === 'StockReserved').map((e) => e.payload as { checkoutId: string; orderId: string });
      await orders.publish(held.slice(0, 2).map((c) => envelope(RELEASE_STOCK, { checkoutId: c.checkoutId, orderId: c.orderId })));
      await until(() => received.filter((e) => e.type === 'StockReleased').length === 2);
      const short = checkout();
      await orders.publish([reserve(short, [[p, 2]], new Date(Date.now() + 200).toISOString())]);
      await until(() => received.some((e) => e.aggregateId === short.checkoutId && e.type === 'StockReleased'));
      const shortReplies = received.filter((e) => e.aggregateId === short.checkoutId);
      expect(shortReplies.map((e) => [e.type, e.payload.expired])).toEqual([
        ['StockReserved', undefined],
        ['StockReleased', true],
      ]);
      const [stock] = await started[0]!.stock.byProductIds([p]);
      expect(stock).toMatchObject({ onHand: 20, reserved: 18 });
      // Every change reached the gateway's group (setStock, 20 holds, 2 releases, the short hold and its
      // expiry), the latest with the levels now.
      await until(() => stockChanges.length >= 25);
      const latest = stockChanges.reduce((a, b) => (b.aggregateVersion > a.aggregateVersion ? b : a));
      expect(stockChanges).toHaveLength(25);
      expect(latest.payload).toMatchObject({ productId: p, quantityOnHand: 20, quantityReserved: 18, quantityAvailable: 2 });
    });
  });

  describe(`inventory's store upgrade on ${backend.name}`, () => {
    let dir: string | undefined;
    afterAll(async () => {
      await backend.cleanup();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('adds reserved (0) to an existing store, keeping every record on hand', async () => {
      let location: StoreLocation = await backend.location();
      if (!location.postgresUrl) {
        dir = mkdtempSync(join(tmpdir(), 'inventory-upgrade-'));
        location = { sqlitePath: join(dir, 'inventory.sqlite') };
      }
      const telemetry = testTelemetry('inventory');
      // The store as it was before reservations: the first migration only, with records in it.
      const old = await openStore<unknown>({ service: 'inventory', telemetry, ...location });
      await old.migrate({ ...eventMigrations, '0001_stock': migrations['0001_stock']! });
      await sql`insert into stock (product_id, quantity, updated_at) values ('p-old-1', 7, '2024-01-01T00:00:00.000Z'), ('p-old-2', 0, '2024-01-01T00:00:00.000Z')`.execute(
        old.db,
      );
      await old.close();

      const upgraded = await createInventory({ telemetry, store: location, seed: false, reservationSweepIntervalMs: false });
      try {
        expect(await upgraded.stock.byProductIds(['p-old-1', 'p-old-2'])).toEqual([
          { productId: 'p-old-1', onHand: 7, reserved: 0, updatedAt: '2024-01-01T00:00:00.000Z' },
          { productId: 'p-old-2', onHand: 0, reserved: 0, updatedAt: '2024-01-01T00:00:00.000Z' },
        ]);
        const consumer = idempotentConsumer({
          store: upgraded.store as Store<unknown>,
          telemetry,
          handlers: inventoryConsumers(upgraded.stock, telemetry),
        });
        await consumer(reserve(checkout(), [['p-old-1', 7]]));
        expect((await upgraded.stock.byProductIds(['p-old-1']))[0]).toMatchObject({ onHand: 7, reserved: 7 });
      } finally {
        await upgraded.stop();
      }
    });
  });
}

function chunksOf<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Waits for a condition the system reaches by itself (a bus delivery, a sweep): polls, never sleeps a fixed time. */
async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for a condition');
    await new Promise((r) => setTimeout(r, 10));
  }
}
