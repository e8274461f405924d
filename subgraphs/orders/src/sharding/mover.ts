import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { eventStoreTables } from '@shop/eventstore';
import { eventTables } from '@shop/events';
import { type Kysely, sql } from '@shop/store';
import type { CheckoutTables } from '../checkout/projection';
import type { OrdersDB, OrdersRepository } from '../data/repository';
import type { OrderReadModels } from '../data/projections';
import { type MoveStep, type ShardInfo, type SlotMap, type ShardingTables, assignSlots, readSlotMap, shardingTables, slotsOf } from './map';

/** A shard as the mover works on it: its id, its store's query builder and its repository (projections). */
export interface MoverShard {
  info: ShardInfo;
  db: Kysely<unknown>;
  orders: OrdersRepository;
}

/** Where a crash can be injected (tests kill the mover at each): after the named step is recorded and done. */
export const MOVE_POINTS = ['copied', 'fenced', 'tail', 'owned', 'flipped', 'cleaned'] as const;
export type MovePoint = (typeof MOVE_POINTS)[number];

export interface MoveProgress {
  moveId: string;
  step: MoveStep | 'draining' | 'cleaning';
  slots: number[];
  source: string;
  target: string;
  eventsCopied: number;
  /** The source's newest position minus the position copied up to, while copying. */
  lag: number;
}

export interface MoveReport {
  moveId: string;
  slots: number[];
  source: string;
  target: string;
  eventsCopied: number;
  /** How long writes to the moving slots were fenced (the longest a write could wait). */
  fenceMs: number;
  /**
   * Where the fence's time went, in this run (empty for a move resumed after its flip): taking
   * the fence (waiting for appends in flight), draining the outbox, copying the tail, projecting
   * it on the target, and flipping ownership and the map.
   */
  fenceSteps: Partial<Record<'fence' | 'drain' | 'tail' | 'project' | 'flip', number>>;
  ms: number;
  mapVersion: number;
}

export interface MoverOptions {
  /** The store the slot map lives in (the first shard's). */
  mapDb: Kysely<unknown>;
  /** Opens a shard by its map entry (the mover closes nothing: the caller does). */
  shard: (info: ShardInfo) => Promise<MoverShard>;
  /** Events per copy batch. @default 1000 */
  batchSize?: number;
  /** Copy rounds stop and the fence goes up when a round copies fewer than this: the fence then covers only that much. @default 20 */
  fenceBelow?: number;
  /**
   * How long to wait after the flip before deleting the source's copy: every service process
   * reads the map this often (ORDERS_MAP_REFRESH_MS), so none still reads the source. @default 3000
   */
  graceMs?: number;
  /** How long the source's outbox may take to publish what was written before the fence. @default 30000 */
  drainTimeoutMs?: number;
  onProgress?: (progress: MoveProgress) => void;
  /** Tests: called after each point; it may kill the process. */
  at?: (point: MovePoint) => void | Promise<void>;
}

type MoveRow = ShardingTables['orders_slot_moves'];

const parseList = (text: string) => (text === '' ? [] : text.split(',').map(Number));

/**
 * Moves slots from the shard that owns them to `target`, while writes go on:
 *
 * 1. **copy**: the slots' events are copied from the source in position order, in batches, each
 *    recorded in the move's journal row, until a round finds little left;
 * 2. **fence**: the source's ownership rows become `fenced` (on PostgreSQL the UPDATE waits for
 *    appends in flight, which hold the rows FOR SHARE); writers to these slots now wait;
 * 3. **drain**: the source's outbox publishes what was written before the fence, so the order of
 *    each order's events on the bus holds across the move;
 * 4. **tail**: the rest of the events, and the saga's idempotency keys and deadlines, are copied;
 *    the target's read models are brought up to date;
 * 5. **flip**: the target owns the slots, then the map gives them to it (version + 1), then the
 *    source lets go: writers retry on the target;
 * 6. **clean**: after a grace period (every process has read the new map), the source's copy of
 *    the slots' events, read models and saga rows is deleted.
 *
 * Every step is recorded in `orders_slot_moves` before or as it is taken and every step is
 * idempotent, so a mover that dies anywhere resumes when run again ({@link resumeMove}); before the
 * flip a move can also be rolled back ({@link abortMove}).
 */
export async function moveSlots(options: MoverOptions, slots: readonly number[], targetId: string): Promise<MoveReport[]> {
  const map = await readSlotMap(options.mapDb);
  if (!map) throw new Error('orders has no slot map yet: start the service once first');
  if (!map.shards.some((s) => s.id === targetId)) throw new Error(`no shard ${targetId} in the slot map`);
  const open = await openMoveRow(options.mapDb);
  if (open)
    throw new Error(
      `move ${open.id} (slots ${open.slots} from ${open.source} to ${open.target}) is not finished: resume or abort it first`,
    );
  // One move per source shard, in turn.
  const bySource = new Map<string, number[]>();
  for (const slot of slots) {
    const owner = map.owners[slot]!;
    if (owner !== targetId) bySource.set(owner, [...(bySource.get(owner) ?? []), slot]);
  }
  const reports: MoveReport[] = [];
  for (const [source, some] of bySource) {
    const now = new Date().toISOString();
    const row: MoveRow = {
      id: randomUUID(),
      slots: some.join(','),
      source,
      target: targetId,
      step: 'copying',
      copied_position: 0,
      events_copied: 0,
      fenced_at: null,
      fence_ms: null,
      started_at: now,
      updated_at: now,
    };
    await shardingTables(options.mapDb).insertInto('orders_slot_moves').values(row).execute();
    reports.push(await run(options, row));
  }
  return reports;
}

/** The move not yet done or aborted, if there is one. */
export async function openMoveRow(mapDb: Kysely<unknown>): Promise<MoveRow | undefined> {
  const row = await shardingTables(mapDb)
    .selectFrom('orders_slot_moves')
    .selectAll()
    .where('step', 'not in', ['done', 'aborted'])
    .executeTakeFirst();
  return row ? { ...row, copied_position: Number(row.copied_position), events_copied: Number(row.events_copied) } : undefined;
}

/** Runs the unfinished move to its end from wherever it stopped; undefined when there is none. */
export async function resumeMove(options: MoverOptions): Promise<MoveReport | undefined> {
  const row = await openMoveRow(options.mapDb);
  return row ? run(options, row) : undefined;
}

/**
 * Rolls the unfinished move back, when it has not flipped yet: the source owns its slots again
 * (writes resume there) and the target's copies are deleted. After the flip the target is the
 * owner and the move can only be resumed.
 */
export async function abortMove(options: MoverOptions): Promise<MoveRow | undefined> {
  const row = await openMoveRow(options.mapDb);
  if (!row) return undefined;
  if (row.step !== 'copying' && row.step !== 'fenced') throw new Error(`move ${row.id} has flipped already: resume it instead`);
  const map = (await readSlotMap(options.mapDb))!;
  const slots = parseList(row.slots);
  const source = await options.shard(map.shards.find((s) => s.id === row.source)!);
  const target = await options.shard(map.shards.find((s) => s.id === row.target)!);
  const now = new Date().toISOString();
  await shardingTables(source.db).updateTable('orders_slots').set({ state: 'owned', updated_at: now }).where('slot', 'in', slots).execute();
  await deleteSlots(target.db, slots);
  await shardingTables(target.db).deleteFrom('orders_slots').where('slot', 'in', slots).execute();
  await shardingTables(options.mapDb)
    .updateTable('orders_slot_moves')
    .set({ step: 'aborted', updated_at: now })
    .where('id', '=', row.id)
    .execute();
  return { ...row, step: 'aborted' };
}

async function run(options: MoverOptions, initial: MoveRow): Promise<MoveReport> {
  const started = Date.now();
  let row = initial;
  const slots = parseList(row.slots);
  const fenceSteps: MoveReport['fenceSteps'] = {};
  const map = (await readSlotMap(options.mapDb))!;
  const info = (id: string) => {
    const found = map.shards.find((s) => s.id === id);
    if (!found) throw new Error(`no shard ${id} in the slot map`);
    return found;
  };
  const source = await options.shard(info(row.source));
  const target = await options.shard(info(row.target));
  const journal = shardingTables(options.mapDb);
  const record = async (changes: Partial<MoveRow>) => {
    row = { ...row, ...changes, updated_at: new Date().toISOString() };
    await journal
      .updateTable('orders_slot_moves')
      .set({ ...changes, updated_at: row.updated_at })
      .where('id', '=', row.id)
      .execute();
  };
  const progress = (step: MoveProgress['step'], lag = 0) =>
    options.onProgress?.({ moveId: row.id, step, slots, source: row.source, target: row.target, eventsCopied: row.events_copied, lag });
  const batchSize = options.batchSize ?? 1000;

  /** Copies the slots' events after the recorded position; returns how many it copied. */
  const copyRound = async (): Promise<number> => {
    let copied = 0;
    for (;;) {
      const rows = await eventStoreTables(source.db)
        .selectFrom('es_events')
        .selectAll()
        .where('partition_slot', 'in', slots)
        .where('position', '>', row.copied_position)
        .orderBy('position')
        .limit(batchSize)
        .execute();
      if (rows.length === 0) return copied;
      await target.db.transaction().execute(async (trx) => {
        // As every append does: positions become visible in commit order, so the target's
        // projections, reading after a position, cannot skip a batch that commits late.
        if (target.orders.dialect === 'postgres') await sql`select pg_advisory_xact_lock(hashtext('es_events:append'))`.execute(trx);
        await eventStoreTables(trx)
          .insertInto('es_events')
          .values(rows.map(({ position: _position, ...r }) => r))
          // A batch copied before a crash is copied again: the event id makes it a no-op.
          .onConflict((oc) => oc.column('event_id').doNothing())
          .execute();
      });
      copied += rows.length;
      await record({ copied_position: Number(rows.at(-1)!.position), events_copied: row.events_copied + rows.length });
      const head = await source.orders.events.headPosition();
      progress(row.step, Math.max(0, head - row.copied_position));
      if (rows.length < batchSize) return copied;
    }
  };

  if (row.step === 'copying') {
    // The target refuses writes for the slots while they arrive (an 'owned' row stays: a rerun after the flip).
    const now = new Date().toISOString();
    await shardingTables(target.db)
      .insertInto('orders_slots')
      .values(slots.map((slot) => ({ slot, state: 'incoming' as const, updated_at: now })))
      .onConflict((oc) => oc.column('slot').doNothing())
      .execute();
    // A new shard knows no prices or customers yet: the service hands it events only once it has
    // read the map that names it. Copied now and again at the tail.
    await copyReferenceData(source.db, target.db);
    // Copy while writes go on, until a round finds little to copy: the fence then stays up briefly.
    // The target's read models follow each round, so that little is left to project under the fence.
    for (let round = 0; round < 20; round++) {
      const copied = await copyRound();
      await target.orders.projections.catchUp();
      if (copied < (options.fenceBelow ?? 20)) break;
    }
    await options.at?.('copied');
    await record({ step: 'fenced', fenced_at: new Date().toISOString() });
  }
  if (row.step === 'fenced') {
    // Idempotent: a rerun fences again. On PostgreSQL this waits for appends holding the rows FOR SHARE.
    let lap = Date.now();
    const took = (step: keyof MoveReport['fenceSteps']) => {
      fenceSteps[step] = Date.now() - lap;
      lap = Date.now();
    };
    await shardingTables(source.db)
      .updateTable('orders_slots')
      .set({ state: 'fenced', updated_at: new Date().toISOString() })
      .where('slot', 'in', slots)
      .execute();
    took('fence');
    await options.at?.('fenced');
    progress('draining');
    await drainOutbox(source.db, options.drainTimeoutMs ?? 30_000);
    took('drain');
    await copyRound();
    await copyRows(source.db, target.db, slots);
    took('tail');
    // The target's read models had the bulk projected while copying: only the tail is left.
    await target.orders.projections.catchUp();
    took('project');
    await options.at?.('tail');
    // The target owns the slots, then the map says so, then the source lets go.
    await shardingTables(target.db)
      .updateTable('orders_slots')
      .set({ state: 'owned', updated_at: new Date().toISOString() })
      .where('slot', 'in', slots)
      .execute();
    await options.at?.('owned');
    const fenceMs = Date.now() - Date.parse(row.fenced_at ?? new Date().toISOString());
    await journal.transaction().execute(async (trx) => {
      await assignSlots(trx, slots, row.target);
      await trx
        .updateTable('orders_slot_moves')
        .set({ step: 'flipped', fence_ms: fenceMs, updated_at: new Date().toISOString() })
        .where('id', '=', row.id)
        .execute();
    });
    took('flip');
    row = { ...row, step: 'flipped', fence_ms: fenceMs };
    await options.at?.('flipped');
  }
  if (row.step === 'flipped') {
    // A rerun after the flip makes sure the map and both shards agree before cleaning.
    const current = (await readSlotMap(options.mapDb))!;
    if (slots.some((s) => current.owners[s] !== row.target))
      await journal.transaction().execute((trx) => assignSlots(trx, slots, row.target));
    await shardingTables(target.db)
      .updateTable('orders_slots')
      .set({ state: 'owned', updated_at: new Date().toISOString() })
      .where('slot', 'in', slots)
      .execute();
    await shardingTables(source.db).deleteFrom('orders_slots').where('slot', 'in', slots).execute();
    // Prices and customers that arrived while the slots moved (the service hands the target events
    // from when it reads the map that names it).
    await copyReferenceData(source.db, target.db);
    progress('cleaning');
    await delay(options.graceMs ?? 3000);
    await deleteSlots(source.db, slots);
    await options.at?.('cleaned');
    await record({ step: 'done' });
  }
  const version = (await readSlotMap(options.mapDb))!.version;
  progress('done');
  return {
    moveId: row.id,
    slots,
    source: row.source,
    target: row.target,
    eventsCopied: row.events_copied,
    fenceMs: row.fence_ms ?? 0,
    fenceSteps,
    ms: Date.now() - started,
    mapVersion: version,
  };
}

/** Waits until the outbox has published every row that was in it now. */
async function drainOutbox(db: Kysely<unknown>, timeoutMs: number): Promise<void> {
  const outbox = eventTables(db);
  const head = await outbox
    .selectFrom('outbox')
    .select((eb) => eb.fn.max('position').as('p'))
    .executeTakeFirst();
  const upTo = Number(head?.p ?? 0);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pending = await outbox
      .selectFrom('outbox')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('published_at', 'is', null)
      .where('position', '<=', upTo)
      .executeTakeFirstOrThrow();
    if (Number(pending.n) === 0) return;
    if (Date.now() > deadline)
      throw new Error(
        `the source shard's outbox still has ${pending.n} unpublished events after ${timeoutMs} ms: is its relay (the orders service) running? Abort or resume the move`,
      );
    // The relay publishes within its poll (50 ms) of a kick; writes wait while this polls.
    await delay(10);
  }
}

/** Copies the checkout saga's write-side rows of the slots (idempotency keys, deadlines), replacing the target's. */
async function copyRows(from: Kysely<unknown>, to: Kysely<unknown>, slots: number[]): Promise<void> {
  const source = from as unknown as Kysely<CheckoutTables>;
  const target = to as unknown as Kysely<CheckoutTables>;
  const keys = await source.selectFrom('checkout_keys').selectAll().where('slot', 'in', slots).execute();
  const timers = await source.selectFrom('checkout_timers').selectAll().where('slot', 'in', slots).execute();
  await target.transaction().execute(async (trx) => {
    await trx.deleteFrom('checkout_keys').where('slot', 'in', slots).execute();
    await trx.deleteFrom('checkout_timers').where('slot', 'in', slots).execute();
    for (let i = 0; i < keys.length; i += 500)
      await trx
        .insertInto('checkout_keys')
        .values(keys.slice(i, i + 500))
        .execute();
    for (let i = 0; i < timers.length; i += 500)
      await trx
        .insertInto('checkout_timers')
        .values(timers.slice(i, i + 500))
        .execute();
  });
}

/**
 * Copies what every shard keeps whole, the catalogue's prices and the customers orders knows
 * (from products' and accounts' events), without going back: a newer price on the target stays.
 */
async function copyReferenceData(from: Kysely<unknown>, to: Kysely<unknown>): Promise<void> {
  const source = from as unknown as Kysely<OrdersDB>;
  const target = to as unknown as Kysely<OrdersDB>;
  const prices = await source.selectFrom('product_prices').selectAll().execute();
  const customers = await source.selectFrom('customers').selectAll().execute();
  for (let i = 0; i < prices.length; i += 500) {
    await target
      .insertInto('product_prices')
      .values(prices.slice(i, i + 500))
      .onConflict((oc) =>
        oc
          .column('id')
          .doUpdateSet((eb) => ({
            price: eb.ref('excluded.price'),
            discontinued: eb.ref('excluded.discontinued'),
            source_version: eb.ref('excluded.source_version'),
          }))
          .where('product_prices.source_version', '<', (eb) => eb.ref('excluded.source_version')),
      )
      .execute();
  }
  for (let i = 0; i < customers.length; i += 500) {
    await target
      .insertInto('customers')
      .values(customers.slice(i, i + 500))
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
  }
}

/** Deletes a shard's copy of the slots: events, read models and saga rows. */
async function deleteSlots(db: Kysely<unknown>, slots: number[]): Promise<void> {
  const tables = db as unknown as Kysely<OrderReadModels & CheckoutTables>;
  await tables.transaction().execute(async (trx) => {
    await eventStoreTables(trx as unknown as Kysely<unknown>)
      .deleteFrom('es_events')
      .where('partition_slot', 'in', slots)
      .execute();
    await trx.deleteFrom('order_view').where('slot', 'in', slots).execute();
    await trx.deleteFrom('customer_orders').where('slot', 'in', slots).execute();
    await trx.deleteFrom('checkout_view').where('slot', 'in', slots).execute();
    await trx.deleteFrom('checkout_keys').where('slot', 'in', slots).execute();
    await trx.deleteFrom('checkout_timers').where('slot', 'in', slots).execute();
  });
}

/** Slots to give a new shard so that every shard holds about the same number: taken from the fullest first. */
export function rebalance(map: SlotMap, newShard: string): number[] {
  const shards = [...new Set([...map.shards.map((s) => s.id), newShard])];
  const counts = new Map(shards.map((id) => [id, slotsOf(map, id)]));
  const fair = Math.floor(map.owners.length / shards.length);
  const taken: number[] = [];
  while (taken.length < fair) {
    const [fullest, list] = [...counts].filter(([id]) => id !== newShard).sort((a, b) => b[1].length - a[1].length)[0]!;
    taken.push(list.pop()!);
    counts.set(fullest, list);
  }
  return taken.sort((a, b) => a - b);
}
