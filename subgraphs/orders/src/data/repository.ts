import { randomUUID } from 'node:crypto';
import { appendEvents } from '@shop/events';
import { ConcurrencyError, EventStore, ProjectionRunner, type RebuildReport, type RecordedEvent } from '@shop/eventstore';
import { type SeedSizes, chunks, prng, productId as seedProductId, seedProducts, seedUsers, userId } from '@shop/seed';
import { DomainError, type EventSink, quote } from '@shop/server';
import { type Kysely, type Store, newestPerParent } from '@shop/store';
import type { Logger } from '@shop/telemetry';
import { type Order, type OrderCommand, type OrderState, decide, isRejection, replay } from '../domain';
import type { HistoryEntryModel } from '../model';
import { type OrderReadModels, type OrderRow, fromRow, orderProjections, toDomainEvent } from './projections';
import { type CheckoutTables, type CheckoutView, checkoutProjection, checkoutViewOf, viewOf } from '../checkout/projection';
import { checkoutStream, replayCheckout, toCheckoutEvent } from '../checkout/domain';
import { orderIdFor } from '../sharding/ids';
import { ownershipGuard } from '../sharding/ownership';

/** orders' tables, as the query builder sees them (the event store's live beside them). */
export interface OrdersDB extends OrderReadModels, CheckoutTables {
  /** The catalogue's prices as orders knows them, from products' events. */
  product_prices: { id: string; price: number; discontinued: number; source_version: number };
  /** The users accounts created, as orders knows them, from accounts' events. */
  customers: { id: string };
}

/** Where a `User.orders` page starts: after this order in newest-first order. */
export interface OrderCursor {
  createdAt: string;
  id: string;
}

export interface ExecuteOptions {
  /** The version the client saw; a different current version is CONCURRENCY_CONFLICT. */
  expectedVersion?: number | null | undefined;
  /** The request the command came from: every event it causes carries it. */
  correlationId: string;
  /** Bring the read models up to date before returning (off while seeding). @default true */
  project?: boolean;
  /**
   * Who may change an existing order, checked on the state the command is decided on, before
   * anything else about it (its version, its status, the command's input): throw to refuse, and a
   * caller who may not touch the order learns nothing more of it. Not called for an order that
   * does not exist (the decider says NOT_FOUND, or creates it).
   */
  authorize?: (order: Order) => void;
}

export interface ExecuteResult {
  /** The order as this command's events left it (not a later writer's). */
  order: Order;
  events: RecordedEvent[];
}

/**
 * A lost race as the client sees it: CONCURRENCY_CONFLICT with both versions, so it can reload and
 * retry. The event store's own error (a generic library's, no client code) stays as the cause.
 */
const concurrencyConflict = (err: ConcurrencyError): DomainError =>
  new DomainError('CONCURRENCY_CONFLICT', err.message, undefined, {
    details: { expectedVersion: err.expectedVersion, actualVersion: err.actualVersion },
    cause: err,
  });

/** The orders seed: how many deterministic orders an empty store starts with. */
export const SEED_ORDERS = 60;
/** Seed order i's customer: the first users get several orders each, so User.orders has pages. */
export const seedCustomerOf = (i: number, users: number) => userId(1 + ((i - 1) % Math.min(20, users)));
/** Seed order i's id, carrying its customer's slot (`o<slot>-000001`). */
export const seedOrderId = (i: number, users = 20) => orderIdFor(seedCustomerOf(i, users), String(i).padStart(6, '0'));

const historyEntry = (e: RecordedEvent): HistoryEntryModel => ({
  version: e.version,
  type: e.type,
  recordedAt: e.recordedAt,
  position: e.position,
  correlationId: typeof e.metadata.correlationId === 'string' ? e.metadata.correlationId : null,
  causationId: typeof e.metadata.causationId === 'string' ? e.metadata.causationId : null,
});

/**
 * The only code that reads or writes orders' store. Writes are commands: load the stream, decide,
 * append at the loaded version (with the outbox rows in the same transaction), then bring the
 * read models up. Reads come from the read models, or from the event store for history and
 * time travel.
 */
export class OrdersRepository {
  readonly events: EventStore;
  readonly projections: ProjectionRunner;

  constructor(
    private readonly store: Store<OrdersDB>,
    private readonly sink: EventSink,
    private readonly logger?: Logger,
  ) {
    // Every append checks that this shard owns the customer's slot, in the append's transaction.
    this.events = new EventStore(store as Store<unknown>, { guard: ownershipGuard(store.dialect) });
    this.projections = new ProjectionRunner({
      store: store as Store<unknown>,
      events: this.events,
      projections: [...orderProjections, checkoutProjection],
      ...(logger ? { logger } : {}),
    });
  }

  /** The write side's state of an order: its whole stream, folded. Never used to answer queries. */
  async load(orderId: string): Promise<{ state: OrderState; version: number }> {
    const stream = await this.events.readStream(orderId);
    return { state: replay(stream.map(toDomainEvent)), version: stream.at(-1)?.version ?? 0 };
  }

  /**
   * Runs a command against an order. `authorize` (when given) sees an existing order first. A
   * stale `expectedVersion`, or another write landing between this one's load and append, is a
   * CONCURRENCY_CONFLICT DomainError: nothing is written and the caller retries. A command the
   * order refuses is a DomainError with the decider's code.
   */
  async execute(orderId: string, given: OrderCommand | (() => Promise<OrderCommand>), options: ExecuteOptions): Promise<ExecuteResult> {
    const { state, version } = await this.load(orderId);
    if (state) options.authorize?.(state);
    const expected = options.expectedVersion ?? undefined;
    if (expected !== undefined && expected !== version) throw concurrencyConflict(new ConcurrencyError(orderId, expected, version));
    // A command that needs a lookup (a line's price) is built only once the caller may change the order.
    const command = typeof given === 'function' ? await given() : given;
    const decision = decide(command, state);
    // Every rejection code is a DomainErrorCode: a decider code missing from the one list fails to compile here.
    if (isRejection(decision)) throw new DomainError(decision.code, decision.message, decision.field);
    const customerId = state?.customerId ?? (command.type === 'CreateOrder' ? command.customerId : '');
    const commandId = randomUUID();
    const appended = this.events.append(
      orderId,
      decision.map((e) => ({ type: e.type, data: e.data })),
      {
        expectedVersion: version,
        // Sharding by customer (a later issue) routes on this; every row carries it from day one.
        partitionKey: customerId,
        metadata: { correlationId: options.correlationId, causationId: commandId, command: command.type },
        inTransaction: (trx, recorded) => this.publish(trx, orderId, customerId, recorded, options.correlationId, commandId),
      },
    );
    // The store's generic ConcurrencyError (a write landed between load and append) is the client's CONCURRENCY_CONFLICT.
    const { events } = await appended.catch((err: unknown) => {
      throw err instanceof ConcurrencyError ? concurrencyConflict(err) : err;
    });
    this.sink.committed();
    if (options.project ?? true) {
      // Read your writes: the read models include this command's events before the reply. The
      // events are committed either way; if projecting fails here, the poller catches up later.
      await this.projections.catchUp().catch((err: unknown) => this.logger?.error({ err }, 'projection catch-up after a command failed'));
    }
    return { order: replay(events.map(toDomainEvent), state)!, events };
  }

  /** The outbox rows of an order's new events, in the transaction that appends them. */
  private async publish(
    trx: Kysely<never>,
    orderId: string,
    customerId: string,
    recorded: readonly RecordedEvent[],
    correlationId: string,
    causationId: string,
  ): Promise<void> {
    await appendEvents(
      trx,
      this.sink.source,
      recorded.map((e) => ({
        type: e.type,
        aggregateId: orderId,
        payload: {
          orderId,
          customerId,
          version: e.version,
          recordedAt: e.recordedAt,
          ...e.data,
          correlationId,
          causationId,
          affects: [
            { __typename: 'Order', id: orderId },
            { __typename: 'User', id: customerId },
          ],
        },
      })),
    );
  }

  /**
   * A command on an existing order inside the caller's transaction (the checkout saga's, which
   * writes its own stream in the same one): load, decide and append there, outbox included. No
   * lookups (the command is complete) and no projection pass: the caller runs one after commit.
   */
  async executeIn(
    trx: Kysely<never>,
    orderId: string,
    command: OrderCommand,
    options: { correlationId: string; causationId?: string; authorize?: (order: Order) => void; expectedVersion?: number | undefined },
  ): Promise<ExecuteResult> {
    const stream = await this.events.readStream(orderId, { db: trx });
    const state = replay(stream.map(toDomainEvent));
    if (state) options.authorize?.(state);
    const version = stream.at(-1)?.version ?? 0;
    if (options.expectedVersion !== undefined && options.expectedVersion !== version) {
      throw concurrencyConflict(new ConcurrencyError(orderId, options.expectedVersion, version));
    }
    const decision = decide(command, state);
    if (isRejection(decision)) throw new DomainError(decision.code, decision.message, decision.field);
    const customerId = state?.customerId ?? '';
    const commandId = options.causationId ?? randomUUID();
    const { events } = await this.events.appendIn(
      trx,
      orderId,
      decision.map((e) => ({ type: e.type, data: e.data })),
      {
        expectedVersion: version,
        partitionKey: customerId,
        metadata: { correlationId: options.correlationId, causationId: commandId, command: command.type },
      },
    );
    await this.publish(trx, orderId, customerId, events, options.correlationId, commandId);
    return { order: replay(events.map(toDomainEvent), state)!, events };
  }

  /** Runs `work` in one transaction of orders' store; the relay is told when it commits. */
  async transaction<T>(work: (trx: Kysely<never>) => Promise<T>): Promise<T> {
    const result = await this.store.db.transaction().execute((trx) => work(trx as unknown as Kysely<never>));
    this.sink.committed();
    return result;
  }

  /** The store, for the checkout orchestrator's own tables (same store, same transactions). */
  get db(): Kysely<OrdersDB> {
    return this.store.db;
  }

  get dialect(): Store<OrdersDB>['dialect'] {
    return this.store.dialect;
  }

  /** A line's price: from orders' own projection of the catalogue, never a call to products. */
  async priceOf(productId: string): Promise<number> {
    const row = await this.store.db.selectFrom('product_prices').selectAll().where('id', '=', productId).executeTakeFirst();
    if (!row)
      throw new DomainError(
        'NOT_FOUND',
        `product ${quote(productId)} is unknown to orders (a new product can take a moment to arrive)`,
        'productId',
      );
    if (Number(row.discontinued) === 1)
      throw new DomainError('CONFLICT', `product ${quote(productId)} is discontinued and cannot be ordered`, 'productId');
    return Number(row.price);
  }

  /** Refuses a customer accounts never created (as orders knows from its events); never calls accounts. */
  async requireCustomer(customerId: string): Promise<void> {
    const row = await this.store.db.selectFrom('customers').select('id').where('id', '=', customerId).executeTakeFirst();
    if (!row)
      throw new DomainError(
        'NOT_FOUND',
        `customer ${quote(customerId)} is unknown to orders (a new user can take a moment to arrive)`,
        'customerId',
      );
  }

  // ---- reads from the read models ------------------------------------------------------------

  /** Orders by id from the order view, in `ids` order, null where missing. One round trip. */
  async byIds(ids: readonly string[]): Promise<(Order | null)[]> {
    if (ids.length === 0) return [];
    const rows = await this.store.db
      .selectFrom('order_view')
      .selectAll()
      .where('id', 'in', [...new Set(ids)])
      .execute();
    const found = new Map(rows.map((r) => [r.id, fromRow(r)]));
    return ids.map((id) => found.get(id) ?? null);
  }

  /** The newest `limit` orders of each customer, in ONE round trip, bounded per customer (newestPerParent). */
  async newestPerCustomer(customerIds: readonly string[], limit: number): Promise<Order[][]> {
    const lists = await newestPerParent<OrdersDB, OrderRow>(this.store, 'customer_orders', 'customer_id', customerIds, limit);
    return lists.map((rows) => rows.map(fromRow));
  }

  /** A customer's orders after `after`, newest first, at most `limit`. */
  async customerPage(customerId: string, limit: number, after: OrderCursor): Promise<Order[]> {
    const rows = await this.store.db
      .selectFrom('customer_orders')
      .selectAll()
      .where('customer_id', '=', customerId)
      .where((eb) =>
        eb.or([eb('created_at', '<', after.createdAt), eb.and([eb('created_at', '=', after.createdAt), eb('id', '<', after.id)])]),
      )
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit)
      .execute();
    return rows.map(fromRow);
  }

  /**
   * A page of the cross-shard listing from this shard: orders in `slots` (the ones the map gives
   * this shard), optionally of one status, newest first after `after`, at most `limit`.
   */
  async listPage(input: {
    status?: string | undefined;
    limit: number;
    after?: OrderCursor | undefined;
    slots: readonly number[];
  }): Promise<Order[]> {
    let query = this.store.db
      .selectFrom('order_view')
      .selectAll()
      .where('slot', 'in', [...input.slots]);
    if (input.status !== undefined) query = query.where('status', '=', input.status);
    const after = input.after;
    if (after !== undefined) {
      query = query.where((eb) =>
        eb.or([eb('created_at', '<', after.createdAt), eb.and([eb('created_at', '=', after.createdAt), eb('id', '<', after.id)])]),
      );
    }
    const rows = await query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(input.limit).execute();
    return rows.map(fromRow);
  }

  /** Each order's latest checkout (by start time), in `orderIds` order, null where none. One round trip. */
  async latestCheckouts(orderIds: readonly string[]): Promise<(CheckoutView | null)[]> {
    if (orderIds.length === 0) return [];
    const rows = await (this.store.db as unknown as Kysely<CheckoutTables>)
      .selectFrom('checkout_view')
      .selectAll()
      .where('order_id', 'in', [...new Set(orderIds)])
      .orderBy('started_at')
      .orderBy('id')
      .execute();
    const latest = new Map<string, CheckoutView>();
    for (const r of rows) latest.set(r.order_id, viewOf(r));
    return orderIds.map((id) => latest.get(id) ?? null);
  }

  /** Every checkout not finished (RUNNING, COMPENSATING, REVERSING), oldest first, from the view. */
  async openCheckouts(): Promise<CheckoutView[]> {
    const rows = await (this.store.db as unknown as Kysely<CheckoutTables>)
      .selectFrom('checkout_view')
      .selectAll()
      .where('status', 'in', ['RUNNING', 'COMPENSATING', 'REVERSING'])
      .orderBy('started_at')
      .execute();
    return rows.map(viewOf);
  }

  /** A checkout by id, from the view. */
  async checkoutById(id: string): Promise<CheckoutView | null> {
    const row = await (this.store.db as unknown as Kysely<CheckoutTables>)
      .selectFrom('checkout_view')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst();
    return row ? viewOf(row) : null;
  }

  // ---- reads from the event store ------------------------------------------------------------

  /** Each order's events, oldest first, in one round trip. */
  async histories(ids: readonly string[]): Promise<HistoryEntryModel[][]> {
    return (await this.events.readStreams(ids)).map((stream) => stream.map(historyEntry));
  }

  /** Time travel: the order rebuilt from the events recorded at or before `instant` (ISO 8601). */
  async asOf(orderId: string, instant: string): Promise<Order | null> {
    return replay((await this.events.readStream(orderId, { recordedAtOrBefore: instant })).map(toDomainEvent));
  }

  /** A checkout rebuilt from its stream up to `version`: what it was right after that event. */
  async checkoutAtVersion(checkoutId: string, version: number): Promise<CheckoutView | null> {
    const stream = await this.events.readStream(checkoutStream(checkoutId), { toVersion: version });
    const state = replayCheckout(stream.map((e) => toCheckoutEvent(e.type, e.data, e.version)));
    return state ? checkoutViewOf(state) : null;
  }

  /** The order rebuilt from its events up to `version`: what it was right after that change. */
  async atVersion(orderId: string, version: number): Promise<Order | null> {
    return replay((await this.events.readStream(orderId, { toVersion: version })).map(toDomainEvent));
  }

  /** Drops every order read model and replays the event store from position zero. */
  rebuild(): Promise<RebuildReport> {
    return this.projections.rebuild();
  }

  /** Both read models' rows, in key order: what a rebuild must reproduce. */
  async readModels(): Promise<{ orderView: OrderRow[]; customerOrders: OrderRow[]; checkpoints: Record<string, number> }> {
    const [orderView, customerOrders, checkpoints] = await Promise.all([
      this.store.db.selectFrom('order_view').selectAll().orderBy('id').execute(),
      this.store.db.selectFrom('customer_orders').selectAll().orderBy('id').execute(),
      this.projections.checkpoints(),
    ]);
    const plain = (rows: OrderRow[]) =>
      rows.map((r) => ({ ...r, total: Number(r.total), version: Number(r.version), line_count: Number(r.line_count) }));
    return { orderView: plain(orderView), customerOrders: plain(customerOrders), checkpoints };
  }

  // ---- products' events ----------------------------------------------------------------------

  /** Applies a product event to the price projection, inside the consumer's transaction. */
  static async applyProduct(
    trx: Kysely<OrdersDB>,
    product: { id: string; price: number; discontinued: boolean },
    sourceVersion: number,
  ): Promise<void> {
    const row = { id: product.id, price: product.price, discontinued: product.discontinued ? 1 : 0, source_version: sourceVersion };
    await trx
      .insertInto('product_prices')
      .values(row)
      .onConflict((oc) =>
        oc
          .column('id')
          .doUpdateSet({ price: row.price, discontinued: row.discontinued, source_version: row.source_version })
          // An older event arriving late never overwrites a newer price.
          .where('product_prices.source_version', '<', row.source_version),
      )
      .execute();
  }

  /** Records a user from accounts' events, inside the consumer's transaction; repeats are no-ops. */
  static async applyCustomer(trx: Kysely<OrdersDB>, id: string): Promise<void> {
    await trx
      .insertInto('customers')
      .values({ id })
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
  }

  // ---- seed ----------------------------------------------------------------------------------

  /**
   * Starts an empty store with the seed catalogue's prices and the seed users (products and
   * accounts seed from the same generators; their events keep them current after) and a few
   * deterministic orders, written as commands so they have real event streams and outbox rows.
   */
  async seed(sizes: SeedSizes, owns: (customerId: string) => boolean = () => true): Promise<number> {
    const known = await this.store.db
      .selectFrom('product_prices')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    let rows = 0;
    const customers = await this.store.db
      .selectFrom('customers')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    if (Number(customers.n) === 0) {
      await this.store.db.transaction().execute(async (trx) => {
        for (const batch of chunks(seedUsers(sizes), 500)) {
          await trx
            .insertInto('customers')
            .values(batch.map((u) => ({ id: u.id })))
            .onConflict((oc) => oc.column('id').doNothing())
            .execute();
          rows += batch.length;
        }
      });
    }
    if (Number(known.n) === 0) {
      await this.store.db.transaction().execute(async (trx) => {
        for (const batch of chunks(seedProducts(sizes), 500)) {
          await trx
            .insertInto('product_prices')
            .values(batch.map((p) => ({ id: p.id, price: p.price, discontinued: 0, source_version: 0 })))
            .execute();
          rows += batch.length;
        }
      });
    }
    if ((await this.events.headPosition()) > 0 || sizes.users === 0 || sizes.products === 0) return rows;
    const rand = prng(7);
    const count = Math.min(SEED_ORDERS, sizes.users * 3);
    let written = 0;
    for (let i = 1; i <= count; i++) {
      const orderId = seedOrderId(i, sizes.users);
      const customerId = seedCustomerOf(i, sizes.users);
      // Every shard draws the same numbers and writes the orders of the customers it owns.
      const lines = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => ({
        productId: seedProductId(1 + Math.floor(rand() * sizes.products)),
        quantity: 1 + Math.floor(rand() * 3),
      }));
      const fate = rand();
      if (!owns(customerId)) continue;
      const run = (command: OrderCommand) => this.execute(orderId, command, { correlationId: 'seed', project: false });
      await run({ type: 'CreateOrder', orderId, customerId });
      for (const line of lines) await run({ type: 'AddOrderLine', ...line, unitPrice: await this.priceOf(line.productId) });
      if (fate < 0.6) await run({ type: 'PlaceOrder' });
      if (fate > 0.85) await run({ type: 'CancelOrder', reason: 'seed' });
      written++;
    }
    await this.projections.catchUp();
    return rows + written;
  }
}
