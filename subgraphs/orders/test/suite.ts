import { randomBytes, randomUUID } from 'node:crypto';
import { type EventEnvelope, MemoryBroker, MemoryBus, eventTables } from '@shop/events';
import { type SeedSizes, seedProducts } from '@shop/seed';
import { type Identity, gatewayHeaders } from '@shop/server';
import type { Kysely } from '@shop/store';
import { type Backend, type GraphQLClient, eventually, graphqlClient, testTelemetry } from '@shop/testing';
import { MAX_ORDER_TOTAL, replay } from '../src/domain';
import { fromRow, toDomainEvent } from '../src/data/projections';
import { type OrdersSubgraph, createOrders, orderIdFor, readSlotMap, seedOrderId } from '../src/server';

const sizes: SeedSizes = { users: 30, products: 60, reviews: 0 };
/** The key the suite's requests are signed with, as the gateway signs them. */
const SECRET = randomBytes(32).toString('hex');
const customer = (sub: string): Identity => ({ sub, roles: ['customer'], scopes: [] });
/** Support staff: any customer's orders (an admin's token carries the scope too). */
const STAFF: Identity = { sub: 'u00030', roles: ['customer'], scopes: ['orders:admin'] };
/** The ids the suite's orders get: a chosen id is prefixed with its customer's slot. */
const ID_LIFE_1 = orderIdFor('u00007', 'life-1');
const ID_RULES_1 = orderIdFor('u00008', 'rules-1');
const ID_PRICED_1 = orderIdFor('u00010', 'priced-1');
const ID_OVERFLOW_1 = orderIdFor('u00009', 'overflow-1');
const ID_AUTHZ_1 = orderIdFor('u00011', 'authz-1');
const ID_AUTHZ_3 = orderIdFor('u00011', 'authz-3');
const ID_AUTHZ_2 = orderIdFor('u00012', 'authz-2');
const ID_TRAVEL_1 = orderIdFor('u00009', 'travel-1');
const prices = new Map([...seedProducts(sizes)].map((p) => [p.id, p.price]));

/** Polls `read` until `done` holds, at most `ms`: events from the bus apply asynchronously. */
const ORDER =
  'id customer { id } status total version createdAt placedAt cancelledAt cancelReason lines { product { id } quantity unitPrice lineTotal }';
interface OrderView {
  id: string;
  customer: { id: string };
  status: string;
  total: number;
  version: number;
  createdAt: string;
  placedAt: string | null;
  cancelledAt: string | null;
  cancelReason: string | null;
  lines: Array<{ product: { id: string }; quantity: number; unitPrice: number; lineTotal: number }>;
  history?: Array<{ version: number; type: string; recordedAt: string; correlationId: string | null; causationId: string | null }>;
}

/** orders' behaviour over its own store, run over SQLite (orders.test.ts) and PostgreSQL (orders.int.test.ts). */
export function ordersSuite(backend: Backend, shardCount = 1, options: { mapApart?: boolean } = {}): void {
  describe(`orders on ${backend.name}, ${shardCount} shard(s)${options.mapApart ? ', the slot map in a store of its own' : ''}`, () => {
    const telemetry = testTelemetry('orders');
    const broker = new MemoryBroker();
    const bus = new MemoryBus({ service: 'orders', telemetry, broker });
    const productsBus = new MemoryBus({ service: 'products', telemetry: testTelemetry('products'), broker });
    const accountsBus = new MemoryBus({ service: 'accounts', telemetry: testTelemetry('accounts'), broker });
    let subgraph: OrdersSubgraph;
    /** Anonymous (signed, with no identity). */
    let anonymous: GraphQLClient;
    /** As the gateway would send a request from `identity`. */
    let as: (identity: Identity) => GraphQLClient;
    /** With orders:admin: the domain tests below act on many customers' orders. */
    let client: GraphQLClient;

    beforeAll(async () => {
      const locations: string[] = [];
      for (let i = 0; i < shardCount; i++) {
        const at = await backend.location();
        locations.push(at.postgresUrl ?? at.sqlitePath ?? ':memory:');
      }
      const store = locations[0]!.startsWith('postgres') ? { postgresUrl: locations[0] } : { sqlitePath: locations[0] };
      const slotMap = options.mapApart ? ':memory:' : undefined;
      subgraph = await createOrders({ telemetry, store, shards: locations, slotMap, seed: sizes, pageMax: 20, bus });
      expect(subgraph.shards()).toHaveLength(shardCount);
      // The map is where it was told to be: in the first shard, or not there at all.
      const inFirst = await readSlotMap(subgraph.store.db as unknown as Kysely<unknown>);
      expect(inFirst?.version ?? null).toBe(options.mapApart ? null : 1);
      const url = `${(await subgraph.listen(0, '127.0.0.1', { gatewaySecret: SECRET })).url}/graphql`;
      anonymous = graphqlClient(url, { sign: (body) => gatewayHeaders(SECRET, url, body) });
      as = (identity) => graphqlClient(url, { sign: (body) => gatewayHeaders(SECRET, url, body, { identity }) });
      client = as(STAFF);
    });
    afterAll(async () => {
      await subgraph?.stop();
      await bus.close();
      await productsBus.close();
      await accountsBus.close();
      await backend.cleanup();
    });

    /** Every shard's events (positions are per shard). */
    const allEvents = async () => (await Promise.all(subgraph.shards().map((s) => s.orders.events.readAll(0, 1_000_000)))).flat();
    /** Every shard's read models, rows in id order, checkpoints by shard. */
    const readModels = async () => {
      const each = await Promise.all(subgraph.shards().map((s) => s.orders.readModels()));
      const byId = <T extends { id: string }>(rows: T[]) => rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      return {
        orderView: byId(each.flatMap((m) => m.orderView)),
        customerOrders: byId(each.flatMap((m) => m.customerOrders)),
        checkpoints: each.map((m) => m.checkpoints),
      };
    };

    const mutate = async <K extends string>(field: K, args: string, select = ORDER, caller = client) => {
      const res = await caller.query<Record<K, OrderView>>(`mutation { ${field}(${args}) { ${select} } }`);
      return { order: res.data?.[field] ?? null, error: res.errors?.[0], res };
    };
    const order = async (id: string, asOf?: string, caller = client) =>
      (
        await caller.query<{ order: OrderView | null }>(
          `query($id: ID!, $asOf: DateTime) { order(id: $id, asOf: $asOf) { ${ORDER} history { version type recordedAt correlationId causationId } } }`,
          { id, asOf },
        )
      ).data?.order ?? null;

    it('seeds prices and deterministic orders with real event streams', async () => {
      const seeded = await order(seedOrderId(1));
      expect(seeded).toMatchObject({ id: seedOrderId(1), customer: { id: 'u00001' } });
      expect(seeded!.history!.map((h) => h.type)[0]).toBe('OrderCreated');
      expect(seeded!.version).toBe(seeded!.history!.length);
      for (const line of seeded!.lines) expect(line.unitPrice).toBe(prices.get(line.product.id));
    });

    it('runs an order through its life: create, add, remove, place; each write returns the new state', async () => {
      // As its customer, who need not name themself: the order is the caller's.
      const owner = as(customer('u00007'));
      const created = await mutate('createOrder', `id: "${ID_LIFE_1}"`, ORDER, owner);
      expect(created.error).toBeUndefined();
      expect(created.order).toMatchObject({
        id: ID_LIFE_1,
        customer: { id: 'u00007' },
        status: 'DRAFT',
        total: 0,
        version: 1,
        lines: [],
        placedAt: null,
      });
      // The customer's order list changed: the gateway is told to evict the user.
      expect((created.res as unknown as { extensions?: { invalidate?: unknown[] } }).extensions?.invalidate).toEqual(
        expect.arrayContaining([
          { __typename: 'User', id: 'u00007' },
          { __typename: 'Order', id: ID_LIFE_1 },
        ]),
      );

      const a = await mutate('addOrderLine', `orderId: "${ID_LIFE_1}", productId: "p00003", quantity: 2`, ORDER, owner);
      expect(a.order).toMatchObject({
        version: 2,
        total: 2 * prices.get('p00003')!,
        lines: [{ product: { id: 'p00003' }, quantity: 2, unitPrice: prices.get('p00003') }],
      });
      const b = await mutate('addOrderLine', `orderId: "${ID_LIFE_1}", productId: "p00004", quantity: 1, expectedVersion: 2`, ORDER, owner);
      expect(b.order?.version).toBe(3);
      const c = await mutate('addOrderLine', `orderId: "${ID_LIFE_1}", productId: "p00003", quantity: 1`, ORDER, owner);
      expect(c.order?.lines.map((l) => [l.product.id, l.quantity])).toEqual([
        ['p00003', 3],
        ['p00004', 1],
      ]);
      const d = await mutate('removeOrderLine', `orderId: "${ID_LIFE_1}", productId: "p00004"`, ORDER, owner);
      expect(d.order).toMatchObject({ version: 5, total: 3 * prices.get('p00003')! });
      const placed = await mutate('placeOrder', `orderId: "${ID_LIFE_1}", expectedVersion: 5`, ORDER, owner);
      expect(placed.order).toMatchObject({ status: 'PLACED', version: 6 });
      expect(placed.order?.placedAt).toMatch(/^\d{4}-\d{2}-\d{2}T/);

      // The read model answers queries, and says what the mutation said.
      const read = await order(ID_LIFE_1, undefined, owner);
      const { history, ...view } = read!;
      expect(view).toEqual(placed.order);
      expect(history!.map((h) => [h.version, h.type])).toEqual([
        [1, 'OrderCreated'],
        [2, 'OrderLineAdded'],
        [3, 'OrderLineAdded'],
        [4, 'OrderLineAdded'],
        [5, 'OrderLineRemoved'],
        [6, 'OrderPlaced'],
      ]);
      // Each command has its own causation id; each request its correlation id.
      expect(new Set(history!.map((h) => h.causationId)).size).toBe(6);
      expect(history!.every((h) => typeof h.correlationId === 'string' && h.correlationId.length > 0)).toBe(true);
    });

    it('refuses invalid transitions and input with codes', async () => {
      await mutate('createOrder', `customerId: "u00008", id: "${ID_RULES_1}"`);
      const cases: Array<[string, string, string, string?]> = [
        ['createOrder', `customerId: "u00008", id: "${ID_RULES_1}"`, 'ORDER_ALREADY_EXISTS'],
        ['createOrder', 'customerId: "u00008", id: "bad id!"', 'BAD_USER_INPUT', 'id'],
        ['createOrder', 'customerId: "u99999", id: "rules-2"', 'NOT_FOUND', 'customerId'],
        ['placeOrder', `orderId: "${ID_RULES_1}"`, 'ORDER_EMPTY'],
        ['addOrderLine', 'orderId: "nope", productId: "p00001", quantity: 1', 'NOT_FOUND'],
        ['addOrderLine', `orderId: "${ID_RULES_1}", productId: "p99999", quantity: 1`, 'NOT_FOUND', 'productId'],
        ['addOrderLine', `orderId: "${ID_RULES_1}", productId: "p00001", quantity: 0`, 'BAD_USER_INPUT', 'quantity'],
        [
          'addOrderLine',
          `orderId: "${ID_RULES_1}", productId: "p00001", quantity: 1, expectedVersion: -2`,
          'BAD_USER_INPUT',
          'expectedVersion',
        ],
        ['removeOrderLine', `orderId: "${ID_RULES_1}", productId: "p00001"`, 'ORDER_LINE_NOT_FOUND', 'productId'],
        ['placeOrder', `orderId: "${ID_RULES_1}", expectedVersion: 7`, 'CONCURRENCY_CONFLICT'],
      ];
      for (const [field, args, code, f] of cases) {
        const { error, order: o } = await mutate(field, args);
        expect({ field, args, code: error?.extensions?.code, ...(f ? { f: error?.extensions?.field } : {}) }).toEqual({
          field,
          args,
          code,
          ...(f ? { f } : {}),
        });
        expect(o).toBeNull();
      }
      const conflict = await mutate('placeOrder', `orderId: "${ID_RULES_1}", expectedVersion: 7`);
      expect(conflict.error?.extensions).toMatchObject({ code: 'CONCURRENCY_CONFLICT', expectedVersion: 7, actualVersion: 1 });

      await mutate('addOrderLine', `orderId: "${ID_RULES_1}", productId: "p00001", quantity: 1`);
      await mutate('placeOrder', `orderId: "${ID_RULES_1}"`);
      expect((await mutate('addOrderLine', `orderId: "${ID_RULES_1}", productId: "p00002", quantity: 1`)).error?.extensions?.code).toBe(
        'ORDER_NOT_DRAFT',
      );
      expect((await mutate('placeOrder', `orderId: "${ID_RULES_1}"`)).error?.extensions?.code).toBe('ORDER_NOT_DRAFT');
      expect((await mutate('cancelOrder', `orderId: "${ID_RULES_1}", reason: "late"`)).order).toMatchObject({
        status: 'CANCELLED',
        cancelReason: 'late',
      });
      expect((await mutate('cancelOrder', `orderId: "${ID_RULES_1}"`)).error?.extensions?.code).toBe('ORDER_ALREADY_CANCELLED');
      // Refused commands wrote nothing.
      expect((await order(ID_RULES_1))!.history!.map((h) => h.type)).toEqual([
        'OrderCreated',
        'OrderLineAdded',
        'OrderPlaced',
        'OrderCancelled',
      ]);
      expect(await order('nope')).toBeNull();
      const badTime = await client.query(`query($t: DateTime) { order(id: "${ID_RULES_1}", asOf: $t) { id } }`, { t: 'yesterday' });
      expect(badTime.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(badTime.errors?.[0]?.message).toContain('ISO 8601');
    });

    it('answers asOf with the state at every recorded point of a history', async () => {
      const id = ID_TRAVEL_1;
      const states: OrderView[] = [];
      const steps = [
        ['createOrder', `customerId: "u00009", id: "travel-1"`],
        ['addOrderLine', `orderId: "${id}", productId: "p00010", quantity: 1`],
        ['addOrderLine', `orderId: "${id}", productId: "p00011", quantity: 4`],
        ['removeOrderLine', `orderId: "${id}", productId: "p00010"`],
        ['addOrderLine', `orderId: "${id}", productId: "p00011", quantity: 1`],
        ['placeOrder', `orderId: "${id}"`],
        ['cancelOrder', `orderId: "${id}", reason: "travelled"`],
      ] as const;
      for (const [field, args] of steps) {
        const { order: o, error } = await mutate(field, args);
        expect(error).toBeUndefined();
        states.push(o!);
      }
      const history = (await order(id))!.history!;
      expect(history).toHaveLength(steps.length);
      for (const [i, entry] of history.entries()) {
        const past = await order(id, entry.recordedAt);
        // Events recorded in the same millisecond are one instant: asOf shows the last of them.
        const last = history.filter((h) => h.recordedAt <= entry.recordedAt).length - 1;
        expect(last).toBeGreaterThanOrEqual(i);
        const { history: pastHistory, ...state } = past!;
        expect(state).toEqual(states[last]);
        expect(pastHistory!.map((h) => h.version)).toEqual(history.slice(0, last + 1).map((h) => h.version));
      }
      // Before the first event the order did not exist; any time later it is as it is now.
      expect(await order(id, new Date(Date.parse(history[0]!.recordedAt) - 1).toISOString())).toBeNull();
      const { history: _h, ...now } = (await order(id, '2999-01-01T00:00:00+02:00'))!;
      expect(now).toEqual(states.at(-1));
    });

    it("pages a customer's orders newest first from the summary read model, batching customers", async () => {
      const customer = 'u00029';
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await mutate('createOrder', `customerId: "${customer}"`)).order!.id);
      const pageQuery = `query($r: [_Any!]!, $first: Int, $after: String) { _entities(representations: $r) { ... on User { id orders(first: $first, after: $after) { edges { cursor node { id customer { id } status } } pageInfo { endCursor hasNextPage } } } } }`;
      type Page = {
        _entities: Array<{
          orders: { edges: Array<{ node: { id: string } }>; pageInfo: { endCursor: string | null; hasNextPage: boolean } };
        }>;
      };
      const seen: string[] = [];
      let after: string | null = null;
      for (;;) {
        const res: { data?: Page | null; errors?: unknown } = await client.query<Page>(pageQuery, {
          r: [{ __typename: 'User', id: customer }],
          first: 2,
          after,
        });
        expect(res.errors).toBeUndefined();
        const page = res.data!._entities[0]!.orders;
        seen.push(...page.edges.map((e) => e.node.id));
        if (!page.pageInfo.hasNextPage) break;
        after = page.pageInfo.endCursor;
      }
      expect(seen.sort()).toEqual([...ids].sort());
      expect(new Set(seen).size).toBe(5);

      const batch = await client.query<Page>(pageQuery, {
        r: ['u00001', 'u00002', 'nobody'].map((id) => ({ __typename: 'User', id })),
        first: 3,
      });
      const lists = batch.data!._entities.map((e) => e.orders.edges.length);
      expect(lists[0]).toBeGreaterThan(0);
      expect(lists[2]).toBe(0);
      const bad = await client.query(pageQuery, { r: [{ __typename: 'User', id: customer }], first: 21 });
      expect((bad.errors as Array<{ extensions?: { code?: string } }>)[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    });

    it('captures prices from products events (not a call), ignoring replays and older versions', async () => {
      const db = subgraph.store.db as unknown as Kysely<{ product_prices: { id: string; price: number; source_version: number } }>;
      const price = async (id: string) =>
        Number((await db.selectFrom('product_prices').select('price').where('id', '=', id).executeTakeFirst())?.price ?? -1);
      const event = (version: number, p: number): EventEnvelope => ({
        id: randomUUID(),
        type: 'ProductUpdated',
        source: 'products',
        aggregateId: 'p00020',
        aggregateVersion: version,
        occurredAt: new Date().toISOString(),
        schemaVersion: 1,
        payload: { id: 'p00020', name: 'x', price: p, weight: 1, category: 'home', discontinued: false },
      });
      const v2 = event(2, 4321);
      await productsBus.publish([v2, event(1, 1111), v2]);
      expect(
        await eventually(
          () => price('p00020'),
          (p) => p === 4321,
        ),
      ).toBe(4321);
      await mutate('createOrder', `customerId: "u00010", id: "${ID_PRICED_1}"`);
      const added = await mutate('addOrderLine', `orderId: "${ID_PRICED_1}", productId: "p00020", quantity: 2`);
      expect(added.order).toMatchObject({ lines: [{ unitPrice: 4321, lineTotal: 8642 }], total: 8642 });
      // A new product arrives by ProductCreated and can be ordered.
      await productsBus.publish([
        { ...event(1, 777), id: randomUUID(), type: 'ProductCreated', aggregateId: 'p-new', payload: { id: 'p-new', price: 777 } },
      ]);
      await eventually(
        () => price('p-new'),
        (p) => p === 777,
      );
      expect((await mutate('addOrderLine', `orderId: "${ID_PRICED_1}", productId: "p-new", quantity: 1`)).order?.total).toBe(8642 + 777);
      // The captured price stays when the catalogue price changes later.
      await productsBus.publish([event(3, 9999)]);
      await eventually(
        () => price('p00020'),
        (p) => p === 9999,
      );
      expect((await order(ID_PRICED_1))!.lines[0]).toMatchObject({ unitPrice: 4321 });
    });

    it("knows its customers from accounts' UserCreated events, not by calling accounts", async () => {
      const create = (customer: string) => mutate('createOrder', `customerId: "${customer}"`);
      expect((await create('u-newcomer')).error?.extensions).toMatchObject({ code: 'NOT_FOUND', field: 'customerId' });
      const userCreated = {
        id: randomUUID(),
        type: 'UserCreated',
        source: 'accounts',
        aggregateId: 'u-newcomer',
        aggregateVersion: 1,
        occurredAt: new Date().toISOString(),
        schemaVersion: 1,
        payload: { id: 'u-newcomer', name: 'New Comer' },
      };
      // Delivered twice: the second is a no-op.
      await accountsBus.publish([userCreated, userCreated]);
      const created = await eventually(
        () => create('u-newcomer'),
        (r) => r.order !== null,
      );
      expect(created.order).toMatchObject({ customer: { id: 'u-newcomer' }, status: 'DRAFT', version: 1 });
      // The duplicate delivery left one row.
      const known = await (subgraph.store.db as unknown as Kysely<{ customers: { id: string } }>)
        .selectFrom('customers')
        .selectAll()
        .where('id', '=', 'u-newcomer')
        .execute();
      expect(known).toEqual([{ id: 'u-newcomer' }]);
    });

    it('publishes every order event through the outbox, in the same transaction as the append', async () => {
      // The outbox of the order's own shard.
      const db = eventTables(subgraph.orders.forId(ID_LIFE_1)!.store.db as Kysely<unknown>);
      const rows = await db.selectFrom('outbox').selectAll().where('aggregate_id', '=', ID_LIFE_1).orderBy('position').execute();
      expect(rows.map((r) => [r.type, Number(r.aggregate_version)])).toEqual([
        ['OrderCreated', 1],
        ['OrderLineAdded', 2],
        ['OrderLineAdded', 3],
        ['OrderLineAdded', 4],
        ['OrderLineRemoved', 5],
        ['OrderPlaced', 6],
      ]);
      expect(JSON.parse(rows[1]!.payload)).toMatchObject({
        orderId: ID_LIFE_1,
        customerId: 'u00007',
        version: 2,
        productId: 'p00003',
        quantity: 2,
      });
      // And the event store holds exactly as many events as the outbox for every order.
      let outboxCount = 0;
      for (const shard of subgraph.shards()) {
        const row = await eventTables(shard.store.db as Kysely<unknown>)
          .selectFrom('outbox')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('type', 'like', 'Order%')
          .executeTakeFirstOrThrow();
        outboxCount += Number(row.n);
      }
      expect(outboxCount).toBe((await allEvents()).filter((e) => e.type.startsWith('Order')).length);
    });

    it('refuses a line that would take the order total past Int with BAD_USER_INPUT, and writes nothing', async () => {
      // The reproduction: a product priced 2147483647 cents (products refuses such a price
      // now; an old event can still carry one), quantity 2.
      const db = subgraph.store.db as unknown as Kysely<{ product_prices: { id: string; price: number } }>;
      await productsBus.publish([
        {
          id: randomUUID(),
          type: 'ProductUpdated',
          source: 'products',
          aggregateId: 'p00021',
          aggregateVersion: 5,
          occurredAt: new Date().toISOString(),
          schemaVersion: 1,
          payload: { id: 'p00021', name: 'x', price: MAX_ORDER_TOTAL, weight: 1, category: 'home', discontinued: false },
        },
      ]);
      await eventually(
        async () => Number((await db.selectFrom('product_prices').select('price').where('id', '=', 'p00021').executeTakeFirst())?.price),
        (p) => p === MAX_ORDER_TOTAL,
      );
      expect((await mutate('createOrder', `customerId: "u00009", id: "${ID_OVERFLOW_1}"`)).error).toBeUndefined();
      const written = async () => ({
        head: await Promise.all(subgraph.shards().map((s) => s.orders.events.headPosition())),
        outbox: await Promise.all(
          subgraph.shards().map(async (shard) =>
            Number(
              (
                await eventTables(shard.store.db as Kysely<unknown>)
                  .selectFrom('outbox')
                  .select((eb) => eb.fn.countAll<number>().as('n'))
                  .executeTakeFirstOrThrow()
              ).n,
            ),
          ),
        ),
        readModels: await readModels(),
      });
      const before = await written();

      const refused = await mutate('addOrderLine', `orderId: "${ID_OVERFLOW_1}", productId: "p00021", quantity: 2`);
      expect(refused.order).toBeNull();
      expect(refused.error?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'quantity' });
      expect(refused.error?.message).toContain(`above the maximum of ${MAX_ORDER_TOTAL}`);
      // Nothing written: event store, outbox and read models as they were.
      expect(await written()).toEqual(before);

      // Up to the maximum is fine, and reads serve it; one cent more on top is refused.
      const full = await mutate('addOrderLine', `orderId: "${ID_OVERFLOW_1}", productId: "p00021", quantity: 1`);
      expect(full.error).toBeUndefined();
      expect(full.order).toMatchObject({ total: MAX_ORDER_TOTAL, lines: [{ quantity: 1, lineTotal: MAX_ORDER_TOTAL }] });
      expect((await order(ID_OVERFLOW_1))?.total).toBe(MAX_ORDER_TOTAL);
      const more = await mutate('addOrderLine', `orderId: "${ID_OVERFLOW_1}", productId: "p00001", quantity: 1`);
      expect(more.error?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'quantity' });
      expect((await order(ID_OVERFLOW_1))?.history?.map((h) => h.type)).toEqual(['OrderCreated', 'OrderLineAdded']);
      // The customer's orders still answer (the user(id: "u00009") came back null).
      const list = await client.query<{ _entities: Array<{ orders: { edges: Array<{ node: { id: string; total: number } }> } }> }>(
        'query($r: [_Any!]!) { _entities(representations: $r) { ... on User { orders(first: 20) { edges { node { id total } } } } } }',
        { r: [{ __typename: 'User', id: 'u00009' }] },
      );
      expect(list.errors).toBeUndefined();
      expect(list.data!._entities[0]!.orders.edges.map((e) => e.node)).toContainEqual({ id: ID_OVERFLOW_1, total: MAX_ORDER_TOTAL });
    });

    describe('who may read and change an order', () => {
      const owner = () => as(customer('u00011'));
      const stranger = () => as(customer('u00012'));
      const codes = (res: { errors?: Array<{ extensions?: { code?: string } }> }) => res.errors?.map((e) => e.extensions?.code);
      const READ = 'query($id: ID!, $t: DateTime) { order(id: $id, asOf: $t) { id customer { id } version } }';

      beforeAll(async () => {
        const created = await mutate('createOrder', `id: "${ID_AUTHZ_1}"`, ORDER, owner());
        expect(created.order?.customer).toEqual({ id: 'u00011' });
        expect(
          (await mutate('addOrderLine', `orderId: "${ID_AUTHZ_1}", productId: "p00005", quantity: 1`, ORDER, owner())).error,
        ).toBeUndefined();
      });

      it('order(id): its customer and orders:admin read it; anyone else gets null with UNAUTHORIZED_FIELD_OR_TYPE, asOf too', async () => {
        for (const reader of [owner(), client]) {
          const res = await reader.query(READ, { id: ID_AUTHZ_1 });
          expect(res.errors).toBeUndefined();
          expect(res.data).toEqual({ order: { id: ID_AUTHZ_1, customer: { id: 'u00011' }, version: 2 } });
        }
        for (const reader of [anonymous, stranger()]) {
          for (const t of [null, '2999-01-01T00:00:00Z']) {
            const res = await reader.query(READ, { id: ID_AUTHZ_1, t });
            expect(res.data).toEqual({ order: null });
            expect(res.errors).toHaveLength(1);
            expect(res.errors?.[0]).toMatchObject({ path: ['order'], extensions: { code: 'UNAUTHORIZED_FIELD_OR_TYPE' } });
          }
        }
        // An unknown order is null with no error, for a signed-in caller as for its customer.
        const unknown = await stranger().query(READ, { id: 'no-such-order' });
        expect(unknown).toMatchObject({ data: { order: null } });
        expect(unknown.errors).toBeUndefined();
      });

      it('resolves Order references only for its customer or orders:admin', async () => {
        const ENTITIES = 'query($r: [_Any!]!) { _entities(representations: $r) { ... on Order { id total } } }';
        const r = [{ __typename: 'Order', id: ID_AUTHZ_1 }];
        expect((await owner().query(ENTITIES, { r })).data).toEqual({ _entities: [{ id: ID_AUTHZ_1, total: prices.get('p00005') }] });
        for (const reader of [anonymous, stranger()]) {
          const res = await reader.query(ENTITIES, { r });
          expect(res.data).toEqual({ _entities: [null] });
          expect(codes(res)).toEqual(['UNAUTHORIZED_FIELD_OR_TYPE']);
        }
      });

      it('User.orders: the user themself and orders:admin; anyone else gets null with UNAUTHORIZED_FIELD_OR_TYPE', async () => {
        const LIST =
          'query($r: [_Any!]!) { _entities(representations: $r) { ... on User { id orders(first: 20) { edges { node { id } } } } } }';
        type List = { _entities: Array<{ id: string; orders: { edges: Array<{ node: { id: string } }> } | null }> };
        const r = [{ __typename: 'User', id: 'u00011' }];
        for (const reader of [owner(), client]) {
          const res = await reader.query<List>(LIST, { r });
          expect(res.errors).toBeUndefined();
          expect(res.data!._entities[0]!.orders!.edges.map((e) => e.node.id)).toContain(ID_AUTHZ_1);
        }
        for (const reader of [anonymous, stranger()]) {
          const res = await reader.query<List>(LIST, { r });
          expect(res.data).toEqual({ _entities: [{ id: 'u00011', orders: null }] });
          expect(res.errors?.map((e) => [e.path, e.extensions?.code])).toEqual([
            [['_entities', 0, 'orders'], 'UNAUTHORIZED_FIELD_OR_TYPE'],
          ]);
        }
        // Several users in one request: each list is checked on its own.
        const mixed = await owner().query<List>(LIST, { r: [...r, { __typename: 'User', id: 'u00001' }] });
        expect(mixed.data!._entities.map((e) => e.orders === null)).toEqual([false, true]);
      });

      it('writes: UNAUTHENTICATED anonymous, FORBIDDEN for a stranger before version, state or input, NOT_FOUND for an unknown order', async () => {
        const writes = [
          `addOrderLine(orderId: "${ID_AUTHZ_1}", productId: "p00006", quantity: 1)`,
          // A product orders does not know, an invalid quantity, a stale version: none is told to a stranger.
          `addOrderLine(orderId: "${ID_AUTHZ_1}", productId: "p99999", quantity: 0)`,
          `addOrderLine(orderId: "${ID_AUTHZ_1}", productId: "p00006", quantity: 1, expectedVersion: 99)`,
          `removeOrderLine(orderId: "${ID_AUTHZ_1}", productId: "p00005")`,
          `placeOrder(orderId: "${ID_AUTHZ_1}")`,
          `cancelOrder(orderId: "${ID_AUTHZ_1}", reason: "not yours")`,
          // Someone else's order id, to create: refused as a write to their order.
          `createOrder(id: "${ID_AUTHZ_1}")`,
        ];
        for (const [who, caller, code] of [
          ['anonymous', anonymous, 'UNAUTHENTICATED'],
          ['a stranger', stranger(), 'FORBIDDEN'],
        ] as const) {
          for (const write of writes) {
            const res = await caller.query(`mutation { ${write} { id } }`);
            expect({ who, write, data: res.data, codes: codes(res) }).toEqual({ who, write, data: null, codes: [code] });
          }
        }
        // Nothing was written.
        expect((await order(ID_AUTHZ_1))?.version).toBe(2);
        // An order that does not exist is NOT_FOUND for anyone signed in (an order id is no secret; its contents are).
        const unknown = await mutate('placeOrder', 'orderId: "no-such-order"', 'id', stranger());
        expect(unknown.error?.extensions).toMatchObject({ code: 'NOT_FOUND', field: 'orderId' });
        expect(codes((await mutate('placeOrder', 'orderId: "no-such-order"', 'id', anonymous)).res)).toEqual(['UNAUTHENTICATED']);

        // Its customer writes, and so does orders:admin.
        const added = await mutate(
          'addOrderLine',
          `orderId: "${ID_AUTHZ_1}", productId: "p00006", quantity: 1, expectedVersion: 2`,
          ORDER,
          owner(),
        );
        expect(added.order).toMatchObject({ version: 3 });
        expect(
          codes(
            (await mutate('addOrderLine', `orderId: "${ID_AUTHZ_1}", productId: "p00006", quantity: 1, expectedVersion: 2`, ORDER, owner()))
              .res,
          ),
        ).toEqual(['CONCURRENCY_CONFLICT']);
        expect((await mutate('placeOrder', `orderId: "${ID_AUTHZ_1}"`, ORDER, owner())).order).toMatchObject({ status: 'PLACED' });
        expect((await mutate('cancelOrder', `orderId: "${ID_AUTHZ_1}", reason: "support"`, ORDER, client)).order).toMatchObject({
          status: 'CANCELLED',
          cancelReason: 'support',
        });
        expect(codes((await mutate('createOrder', `id: "${ID_AUTHZ_1}"`, ORDER, owner())).res)).toEqual(['ORDER_ALREADY_EXISTS']);
      });

      it('createOrder: for the caller by default; for another customer only with orders:admin, checked before the customer is looked up', async () => {
        expect(codes((await mutate('createOrder', 'id: "authz-anon"', 'id', anonymous)).res)).toEqual(['UNAUTHENTICATED']);
        const own = await mutate('createOrder', `customerId: "u00012", id: "${ID_AUTHZ_2}"`, ORDER, stranger());
        expect(own.order?.customer).toEqual({ id: 'u00012' });
        for (const other of ['u00011', 'u99999', '']) {
          const res = await mutate('createOrder', `customerId: "${other}"`, 'id', stranger());
          expect(res.error?.extensions).toMatchObject({ code: 'FORBIDDEN', field: 'customerId' });
        }
        const forCustomer = await mutate('createOrder', `customerId: "u00011", id: "${ID_AUTHZ_3}"`, ORDER, client);
        expect(forCustomer.order?.customer).toEqual({ id: 'u00011' });
        expect((await mutate('createOrder', 'customerId: "u99999"', 'id', client)).error?.extensions).toMatchObject({
          code: 'NOT_FOUND',
          field: 'customerId',
        });
        // The customer reads and changes an order support opened for them.
        expect((await order(ID_AUTHZ_3, undefined, owner()))?.customer).toEqual({ id: 'u00011' });
        expect((await mutate('cancelOrder', `orderId: "${ID_AUTHZ_3}"`, ORDER, owner())).order?.status).toBe('CANCELLED');
      });
    });

    it('projects every order in the event store: each read model row is its stream replayed', async () => {
      // An order whose events cannot be projected (an integer column overflow on PostgreSQL, an
      // event evolve refuses) would be missing here or behind its stream.
      for (const shard of subgraph.shards()) await shard.orders.projections.catchUp();
      const events = await allEvents();
      const streams = new Map<string, typeof events>();
      for (const e of events) streams.set(e.streamId, [...(streams.get(e.streamId) ?? []), e]);
      const { orderView, customerOrders } = await readModels();
      expect(orderView.map((r) => r.id).sort()).toEqual([...streams.keys()].sort());
      for (const row of [...orderView, ...customerOrders]) {
        expect(fromRow(row)).toEqual(replay(streams.get(row.id)!.map(toDomainEvent)));
      }
    });

    it('rebuilds both read models to exactly what they were', async () => {
      const live = await readModels();
      expect(live.orderView.length).toBeGreaterThan(0);
      for (const shard of subgraph.shards()) {
        const report = await shard.orders.rebuild();
        expect(report.position).toBe(await shard.orders.events.headPosition());
      }
      expect(await readModels()).toEqual(live);
    });
  });
}
