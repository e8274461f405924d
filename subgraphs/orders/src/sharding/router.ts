import { setTimeout as delay } from 'node:timers/promises';
import { withTimeout } from '@shop/events';
import { slotOf } from '@shop/eventstore';
import { DomainError, quote } from '@shop/server';
import { type Kysely, inBackground } from '@shop/store';
import { type Logger, type Telemetry, sharedCounter } from '@shop/telemetry';
import type { SeedSizes } from '@shop/seed';
import { Gauge, Histogram } from 'prom-client';
import type { CheckoutView } from '../checkout/projection';
import type { ExecuteOptions, ExecuteResult, OrderCursor, OrdersRepository } from '../data/repository';
import type { Order, OrderCommand } from '../domain';
import type { HistoryEntryModel } from '../model';
import { slotOfId } from './ids';
import { type SlotMap, mapVersion, readSlotMap, shardingTables, slotsOf } from './map';
import { isSlotNotOwned } from './ownership';
import type { Shard } from './shard';

export interface ShardRouterOptions {
  /** The store the slot map lives in. */
  mapDb: Kysely<unknown>;
  /** The map as read at start. */
  map: SlotMap;
  /** The shards open at start, by id. */
  shards: Map<string, Shard>;
  /** Opens a shard the map gained since (`orders:reshard --add`). */
  open: (info: SlotMap['shards'][number]) => Promise<Shard>;
  telemetry: Telemetry;
  /** How often the map's version is read (a moved slot is seen this soon without a failed write). @default 1000 */
  refreshMs?: number;
  /** How long a write waits for a moving slot before SHARD_UNAVAILABLE. @default 5000 */
  fenceWaitMs?: number;
  /**
   * How long the cross-shard listing waits for one shard (a frozen database, a lock held) before
   * leaving it out of the page and naming it. @default 2000
   */
  readTimeoutMs?: number | undefined;
}

/** One page of the cross-shard listing, and the shards that could not answer. */
export interface OrdersPage {
  orders: Order[];
  hasNextPage: boolean;
  /** Shards that failed: their orders are missing from this page. */
  unavailable: { shard: string; message: string }[];
}

/** The listing's order: newest first, by (createdAt, id), the same on every shard and in the merge. */
const newerFirst = (a: Order, b: Order) =>
  a.createdAt === b.createdAt ? (a.id < b.id ? 1 : a.id > b.id ? -1 : 0) : a.createdAt < b.createdAt ? 1 : -1;

/** Errors that mean the shard's database cannot be reached (not a bug, not a refusal). */
function isUnreachable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  if (
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', '57P01', '57P02', '57P03', '53300', '08006', '08001'].includes(
      code,
    )
  )
    return true;
  return (
    typeof e.message === 'string' && /Connection terminated|connect ECONNREFUSED|timeout exceeded when trying to connect/i.test(e.message)
  );
}

const metricsOf = (telemetry: Telemetry) => {
  const registry = telemetry.registry;
  return {
    waits:
      (registry.getSingleMetric('orders_slot_write_wait_seconds') as Histogram | undefined) ??
      new Histogram({
        name: 'orders_slot_write_wait_seconds',
        help: 'How long a write to orders waited for its slot to finish moving between shards (only writes that waited)',
        buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
        registers: [registry],
      }),
    mapVersion:
      (registry.getSingleMetric('orders_slot_map_version') as Gauge | undefined) ??
      new Gauge({ name: 'orders_slot_map_version', help: "The version of orders' slot map this process routes by", registers: [registry] }),
    slots:
      (registry.getSingleMetric('orders_shard_slots') as Gauge<'shard'> | undefined) ??
      new Gauge({
        name: 'orders_shard_slots',
        help: 'Slots each orders shard owns in the map this process routes by',
        labelNames: ['shard'],
        registers: [registry],
      }),
    moves: sharedCounter(
      registry,
      'orders_slot_moves_total',
      'Slot moves between orders shards this process saw flip, by source and target shard',
      ['source', 'target'] as const,
    ),
    movedSlots: sharedCounter(
      registry,
      'orders_slots_moved_total',
      'Slots moved between orders shards (moves this process saw flip), by source and target shard',
      ['source', 'target'] as const,
    ),
    moveEvents: sharedCounter(
      registry,
      'orders_slot_move_events_copied_total',
      'Events copied by slot moves this process saw flip, by source and target shard',
      ['source', 'target'] as const,
    ),
    fence:
      (registry.getSingleMetric('orders_slot_move_fence_seconds') as Histogram | undefined) ??
      new Histogram({
        name: 'orders_slot_move_fence_seconds',
        help: 'How long each slot move this process saw flip fenced writes to its slots',
        buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
        registers: [registry],
      }),
    unavailable: sharedCounter(
      registry,
      'orders_shard_unavailable_total',
      'Reads and writes that failed because an orders shard could not be reached, by shard',
      ['shard'] as const,
    ),
  };
};

/**
 * Orders over its shards: routes every read and write by slot (a customer id's, or the slot an
 * order or checkout id carries) to the shard the slot map names, fans batched reads out one query
 * per shard, and lists across shards with a k-way merge. The map is re-read when its version
 * changes (polled every `refreshMs`) and whenever a shard refuses a write for a slot it no longer
 * owns; such a write is retried on the new owner, waiting out a move's fence.
 */
export class ShardedOrders {
  private current: SlotMap;
  private readonly shards: Map<string, Shard>;
  private readonly refreshMs: number;
  private readonly fenceWaitMs: number;
  private readonly readTimeoutMs: number;
  private readonly logger: Logger;
  private readonly metrics: ReturnType<typeof metricsOf>;
  private refreshing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private projectionPollMs = 1000;

  constructor(private readonly options: ShardRouterOptions) {
    this.current = options.map;
    this.shards = options.shards;
    this.refreshMs = options.refreshMs ?? 1000;
    this.fenceWaitMs = options.fenceWaitMs ?? 5000;
    this.readTimeoutMs = options.readTimeoutMs ?? 2000;
    this.logger = options.telemetry.logger;
    this.metrics = metricsOf(options.telemetry);
    this.mapped(this.current);
  }

  /** Moves already seen: each is counted once, when this process first sees it flipped. */
  private readonly movesSeen = new Set<string>();
  private movesPrimed = false;

  /** The map's gauges, and the moves that flipped since the last look (counted once each). */
  private mapped(map: SlotMap): void {
    this.metrics.mapVersion.set(map.version);
    for (const shard of map.shards) this.metrics.slots.set({ shard: shard.id }, slotsOf(map, shard.id).length);
  }

  private async countMoves(): Promise<void> {
    const rows = await shardingTables(this.options.mapDb)
      .selectFrom('orders_slot_moves')
      .selectAll()
      .where('step', 'in', ['flipped', 'done'])
      .execute();
    for (const row of rows) {
      if (this.movesSeen.has(row.id)) continue;
      this.movesSeen.add(row.id);
      // Moves from before this process started are history, not news.
      if (!this.movesPrimed) continue;
      const labels = { source: row.source, target: row.target };
      this.metrics.moves.inc(labels);
      this.metrics.movedSlots.inc(labels, row.slots.split(',').length);
      this.metrics.moveEvents.inc(labels, Number(row.events_copied));
      if (row.fence_ms !== null) this.metrics.fence.observe(Number(row.fence_ms) / 1000);
    }
    this.movesPrimed = true;
  }

  get map(): SlotMap {
    return this.current;
  }

  /** Every open shard, in the map's order. */
  all(): Shard[] {
    return this.current.shards.flatMap((s) => this.shards.get(s.id) ?? []);
  }

  /** The shard that owns `slot` in the map as last read. */
  owner(slot: number): Shard {
    const id = this.current.owners[slot]!;
    const shard = this.shards.get(id);
    if (!shard) throw new DomainError('SHARD_UNAVAILABLE', `orders shard ${id} (slot ${slot}) is not open yet; retry shortly`);
    return shard;
  }

  forCustomer(customerId: string): Shard {
    return this.owner(slotOf(customerId));
  }

  /** The shard of an order or checkout id; undefined for an id this service never issued (no such order). */
  forId(id: string): Shard | undefined {
    const slot = slotOfId(id);
    return slot === undefined ? undefined : this.owner(slot);
  }

  /** Starts every shard's background work and the map's polling. */
  start(projectionPollMs: number): void {
    this.projectionPollMs = projectionPollMs;
    for (const shard of this.all()) shard.start(projectionPollMs);
    this.stopped = false;
    const tick = () => {
      if (this.stopped) return;
      inBackground(() => this.refresh())
        .catch((err: unknown) => this.logger.warn({ err }, 'could not read the orders slot map; will retry'))
        .finally(() => {
          if (this.stopped) return;
          this.timer = setTimeout(tick, this.refreshMs);
          this.timer.unref();
        });
    };
    this.timer = setTimeout(tick, this.refreshMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.refreshing?.catch(() => undefined);
    // The first shard is the service's own: defineStoreSubgraph releases its store and relay.
    await Promise.all(this.all().map((s) => s.stop()));
  }

  /** Reads the map again if its version moved; opens shards it gained. One refresh at a time. */
  refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        if (!this.movesPrimed) await this.countMoves();
        const version = await mapVersion(this.options.mapDb);
        if (version <= this.current.version) return;
        const map = await readSlotMap(this.options.mapDb);
        if (!map) return;
        for (const info of map.shards) {
          if (this.shards.has(info.id)) continue;
          const shard = await this.options.open(info);
          this.shards.set(info.id, shard);
          if (!this.stopped) shard.start(this.projectionPollMs);
          this.logger.info({ shard: info.id }, 'opened a new orders shard');
        }
        this.logger.info({ from: this.current.version, to: map.version }, 'orders slot map changed');
        this.current = map;
        this.mapped(map);
        await this.countMoves();
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  /**
   * Runs a write for `slot` on its owner. A shard that refuses because it no longer owns the slot
   * (moved, or fenced for a move's last copy) makes the router re-read the map and try again, on
   * the new owner once there is one, for up to `fenceWaitMs`: then SHARD_UNAVAILABLE.
   */
  async write<T>(slot: number, work: (shard: Shard) => Promise<T>): Promise<T> {
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      const shard = this.owner(slot);
      try {
        const result = await this.guarded(shard, () => work(shard));
        if (attempt > 0) this.metrics.waits.observe((Date.now() - started) / 1000);
        return result;
      } catch (err) {
        if (!isSlotNotOwned(err)) throw err;
        if (Date.now() - started >= this.fenceWaitMs) {
          throw new DomainError(
            'SHARD_UNAVAILABLE',
            `orders slot ${slot} has been moving between shards for ${this.fenceWaitMs} ms; retry`,
          );
        }
        await this.refresh();
        if (this.owner(slot) === shard) await delay(Math.min(100, 5 * 2 ** attempt));
      }
    }
  }

  /** `work` on one shard, with an unreachable database reported as SHARD_UNAVAILABLE naming it. */
  private async guarded<T>(shard: Shard, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      if (!isUnreachable(err)) throw err;
      this.metrics.unavailable.inc({ shard: shard.info.id });
      throw new DomainError('SHARD_UNAVAILABLE', `orders shard ${shard.info.id} is unavailable`, undefined, {
        details: { shard: shard.info.id },
        cause: err,
      });
    }
  }

  /** Runs `read` once per shard over the keys that shard owns, and puts the answers back in key order. */
  private async fanOut<K, V>(
    keys: readonly K[],
    shardOf: (key: K) => Shard | undefined,
    read: (shard: Shard, keys: K[]) => Promise<V[]>,
    none: V,
  ) {
    const groups = new Map<Shard, number[]>();
    keys.forEach((key, i) => {
      const shard = shardOf(key);
      if (shard) groups.set(shard, [...(groups.get(shard) ?? []), i]);
    });
    const out = keys.map(() => none);
    await Promise.all(
      [...groups].map(async ([shard, indexes]) => {
        const values = await this.guarded(shard, () =>
          read(
            shard,
            indexes.map((i) => keys[i]!),
          ),
        );
        indexes.forEach((keyIndex, j) => (out[keyIndex] = values[j] ?? none));
      }),
    );
    return out;
  }

  // ---- reads -----------------------------------------------------------------------------------

  /** Orders by id, one query per shard involved; null where missing (and for ids never issued here). */
  byIds(ids: readonly string[]): Promise<(Order | null)[]> {
    return this.fanOut(
      ids,
      (id) => this.forId(id),
      (shard, some) => shard.orders.byIds(some),
      null,
    );
  }

  /** The newest `limit` orders of each customer, one query per shard involved. */
  newestPerCustomer(customerIds: readonly string[], limit: number): Promise<Order[][]> {
    return this.fanOut(
      customerIds,
      (id) => this.forCustomer(id),
      (shard, some) => shard.orders.newestPerCustomer(some, limit),
      [],
    );
  }

  customerPage(customerId: string, limit: number, after: OrderCursor): Promise<Order[]> {
    const shard = this.forCustomer(customerId);
    return this.guarded(shard, () => shard.orders.customerPage(customerId, limit, after));
  }

  latestCheckouts(orderIds: readonly string[]): Promise<(CheckoutView | null)[]> {
    return this.fanOut(
      orderIds,
      (id) => this.forId(id),
      (shard, some) => shard.orders.latestCheckouts(some),
      null,
    );
  }

  histories(ids: readonly string[]): Promise<HistoryEntryModel[][]> {
    return this.fanOut(
      ids,
      (id) => this.forId(id),
      (shard, some) => shard.orders.histories(some),
      [],
    );
  }

  async asOf(orderId: string, instant: string): Promise<Order | null> {
    const shard = this.forId(orderId);
    return shard ? this.guarded(shard, () => shard.orders.asOf(orderId, instant)) : null;
  }

  async atVersion(orderId: string, version: number): Promise<Order | null> {
    const shard = this.forId(orderId);
    return shard ? this.guarded(shard, () => shard.orders.atVersion(orderId, version)) : null;
  }

  async checkoutAtVersion(checkoutId: string, version: number): Promise<CheckoutView | null> {
    const shard = this.forId(checkoutId);
    return shard ? this.guarded(shard, () => shard.orders.checkoutAtVersion(checkoutId, version)) : null;
  }

  async checkoutById(checkoutId: string): Promise<CheckoutView | null> {
    const shard = this.forId(checkoutId);
    return shard ? this.guarded(shard, () => shard.orders.checkoutById(checkoutId)) : null;
  }

  /** The write side's state of an order (for checks before a command); an id never issued here does not exist. */
  async load(orderId: string): Promise<Awaited<ReturnType<OrdersRepository['load']>>> {
    const shard = this.forId(orderId);
    return shard ? this.guarded(shard, () => shard.orders.load(orderId)) : { state: null, version: 0 };
  }

  /** Refuses a customer accounts never created: every shard knows every customer (from accounts' events). */
  async requireCustomer(customerId: string): Promise<void> {
    const shard = this.forCustomer(customerId);
    await this.guarded(shard, () => shard.orders.requireCustomer(customerId));
  }

  /**
   * Every shard's orders, newest first, `first` at a time after `after`, optionally of one status:
   * each shard is asked for `first + 1` after the cursor, among the slots the map gives it (a slot
   * being copied to a new shard is listed from its owner only), and the answers are merged. The
   * cursor is the last order shown; every shard resumes after it, which stays exact while slots
   * move. A shard that fails, or has not answered within `readTimeoutMs`, is left out and named in
   * `unavailable` (its query is abandoned, not cancelled: it ends when its database answers).
   */
  async list(input: { status?: string | undefined; first: number; after?: OrderCursor | undefined }): Promise<OrdersPage> {
    const unavailable: OrdersPage['unavailable'] = [];
    const map = this.current;
    const lists = await Promise.all(
      this.all().map(async (shard) => {
        const slots = slotsOf(map, shard.info.id);
        if (slots.length === 0) return [];
        try {
          return await withTimeout(
            this.guarded(shard, () => shard.orders.listPage({ ...input, limit: input.first + 1, slots })),
            this.readTimeoutMs,
            () => {
              // Counted as an unreachable shard is (guarded): to an operator a frozen one is the same outage.
              this.metrics.unavailable.inc({ shard: shard.info.id });
              return new DomainError('SHARD_UNAVAILABLE', `orders shard ${shard.info.id} did not answer within ${this.readTimeoutMs} ms`);
            },
          );
        } catch (err) {
          this.logger.warn({ err, shard: shard.info.id }, 'an orders shard failed the cross-shard listing');
          unavailable.push({ shard: shard.info.id, message: err instanceof Error ? err.message : String(err) });
          return [];
        }
      }),
    );
    const merged = kWayMerge(lists, newerFirst, input.first + 1);
    return { orders: merged.slice(0, input.first), hasNextPage: merged.length > input.first, unavailable };
  }

  /** Every shard draws the same seed and keeps the orders of the customers it owns (see OrdersRepository.seed). */
  async seed(sizes: SeedSizes): Promise<number> {
    let rows = 0;
    const map = this.current;
    for (const shard of this.all())
      rows += await shard.orders.seed(sizes, (customerId) => map.owners[slotOf(customerId)] === shard.info.id);
    return rows;
  }

  // ---- writes ----------------------------------------------------------------------------------

  /** A command on an order, on the shard its id names (NOT_FOUND for an id never issued here). */
  async execute(
    orderId: string,
    given: OrderCommand | ((shard: OrdersRepository) => Promise<OrderCommand>),
    options: ExecuteOptions,
  ): Promise<ExecuteResult> {
    const slot = slotOfId(orderId);
    if (slot === undefined) throw new DomainError('NOT_FOUND', `order ${quote(orderId)} not found`, 'orderId');
    return this.write(slot, (shard) =>
      shard.orders.execute(orderId, typeof given === 'function' ? () => given(shard.orders) : given, options),
    );
  }
}

/**
 * Merges lists each sorted by `compare` into one sorted list of at most `limit`: a k-way merge that
 * looks at the head of each list (k is the number of shards, a handful, so a linear scan of the
 * heads beats a heap).
 */
export function kWayMerge<T>(lists: readonly T[][], compare: (a: T, b: T) => number, limit: number): T[] {
  const heads = lists.map(() => 0);
  const out: T[] = [];
  while (out.length < limit) {
    let best = -1;
    for (let i = 0; i < lists.length; i++) {
      const candidate = lists[i]![heads[i]!];
      if (candidate === undefined) continue;
      if (best < 0 || compare(candidate, lists[best]![heads[best]!]!) < 0) best = i;
    }
    if (best < 0) break;
    out.push(lists[best]![heads[best]!]!);
    heads[best]!++;
  }
  return out;
}
