import { SLOT_COUNT, slotOf } from '@shop/eventstore';
import type { Kysely } from '@shop/store';
import { sql } from '@shop/store';

/** The slot map's tables (in the store the map lives in) and each shard's ownership table. */
export interface ShardingTables {
  orders_shards: { id: string; location: string; added_at: string };
  orders_slot_map: { slot: number; shard: string };
  orders_map_version: { id: number; version: number; updated_at: string };
  orders_slot_moves: {
    id: string;
    slots: string;
    source: string;
    target: string;
    step: MoveStep;
    copied_position: number;
    events_copied: number;
    fenced_at: string | null;
    fence_ms: number | null;
    started_at: string;
    updated_at: string;
  };
  orders_slots: { slot: number; state: SlotState; updated_at: string };
}

/** A slot on one shard: owned (writes go on), fenced (a move copies its tail: writes wait), incoming (being copied here). */
export type SlotState = 'owned' | 'fenced' | 'incoming';

/** Where a move stands; every step is recorded before it is taken, so a rerun resumes it. */
export type MoveStep = 'copying' | 'fenced' | 'flipped' | 'done' | 'aborted';

export const shardingTables = (db: Kysely<never> | Kysely<unknown>): Kysely<ShardingTables> => db as unknown as Kysely<ShardingTables>;

/** A shard: its id (s0, s1...) and where its store is (a PostgreSQL URL or a SQLite path). */
export interface ShardInfo {
  id: string;
  location: string;
}

/** Which shard owns each slot, at a version that every change to it increments. */
export interface SlotMap {
  version: number;
  shards: ShardInfo[];
  /** `owners[slot]` is the id of the shard that owns the slot. */
  owners: string[];
}

/** The slots a shard owns in `map`. */
export const slotsOf = (map: SlotMap, shardId: string): number[] => map.owners.flatMap((owner, slot) => (owner === shardId ? [slot] : []));

/** The shard that owns a partition key (orders: a customer id). */
export const ownerOfKey = (map: SlotMap, key: string): string => map.owners[slotOf(key)]!;

/** The map's version alone: what a router polls to learn that the map changed. 0 when there is none yet. */
export async function mapVersion(db: Kysely<unknown>): Promise<number> {
  const row = await shardingTables(db).selectFrom('orders_map_version').select('version').where('id', '=', 1).executeTakeFirst();
  return Number(row?.version ?? 0);
}

/** The whole map, read in one transaction so the version and the assignment agree; undefined before it exists. */
export async function readSlotMap(db: Kysely<unknown>): Promise<SlotMap | undefined> {
  return shardingTables(db)
    .transaction()
    .execute(async (trx) => {
      const version = await trx.selectFrom('orders_map_version').select('version').where('id', '=', 1).executeTakeFirst();
      if (!version) return undefined;
      const shards = await trx.selectFrom('orders_shards').select(['id', 'location']).orderBy('added_at').orderBy('id').execute();
      const rows = await trx.selectFrom('orders_slot_map').select(['slot', 'shard']).orderBy('slot').execute();
      const owners = new Array<string>(SLOT_COUNT);
      for (const r of rows) owners[Number(r.slot)] = r.shard;
      if (rows.length !== SLOT_COUNT) throw new Error(`the slot map assigns ${rows.length} of ${SLOT_COUNT} slots: it is damaged`);
      return { version: Number(version.version), shards, owners };
    });
}

/**
 * Creates the map when there is none: the shards in the order given (s0, s1...), the slots split
 * into equal runs (slot s goes to shard floor(s * n / 256)), version 1. When a map exists it is
 * returned unchanged: the map, not the configuration, is the truth once it exists (shards added
 * by `orders:reshard` are in it and not in the configuration).
 */
export async function ensureSlotMap(db: Kysely<unknown>, locations: readonly string[]): Promise<SlotMap> {
  if (locations.length === 0 || locations.length > SLOT_COUNT) throw new RangeError(`orders needs 1 to ${SLOT_COUNT} shards`);
  const now = new Date().toISOString();
  await shardingTables(db)
    .transaction()
    .execute(async (trx) => {
      if (await trx.selectFrom('orders_map_version').select('version').where('id', '=', 1).executeTakeFirst()) return;
      const shards = locations.map((location, i) => ({ id: `s${i}`, location, added_at: now }));
      await trx.insertInto('orders_shards').values(shards).execute();
      await trx
        .insertInto('orders_slot_map')
        .values(
          Array.from({ length: SLOT_COUNT }, (_, slot) => ({ slot, shard: shards[Math.floor((slot * shards.length) / SLOT_COUNT)]!.id })),
        )
        .execute();
      // A concurrent starter loses on the primary key and rolls back; the map it then reads is the winner's.
      await trx.insertInto('orders_map_version').values({ id: 1, version: 1, updated_at: now }).execute();
    })
    .catch(async (err: unknown) => {
      if ((await mapVersion(db)) === 0) throw err;
    });
  return (await readSlotMap(db))!;
}

/** Adds a shard with no slots (version + 1), or returns the one already at `location`. */
export async function addShard(db: Kysely<unknown>, location: string): Promise<ShardInfo> {
  return shardingTables(db)
    .transaction()
    .execute(async (trx) => {
      const existing = await trx.selectFrom('orders_shards').select(['id', 'location']).where('location', '=', location).executeTakeFirst();
      if (existing) return existing;
      const ids = await trx.selectFrom('orders_shards').select('id').execute();
      const next = Math.max(-1, ...ids.map((r) => Number(r.id.slice(1)))) + 1;
      const shard = { id: `s${next}`, location };
      await trx
        .insertInto('orders_shards')
        .values({ ...shard, added_at: new Date().toISOString() })
        .execute();
      await bumpVersion(trx);
      return shard;
    });
}

/** Gives `slots` to `shardId` (version + 1), inside the caller's transaction on the map's store. */
export async function assignSlots(trx: Kysely<ShardingTables>, slots: readonly number[], shardId: string): Promise<number> {
  await trx
    .updateTable('orders_slot_map')
    .set({ shard: shardId })
    .where('slot', 'in', [...slots])
    .execute();
  return bumpVersion(trx);
}

async function bumpVersion(trx: Kysely<ShardingTables>): Promise<number> {
  const row = await trx
    .updateTable('orders_map_version')
    .set({ version: sql<number>`version + 1`, updated_at: new Date().toISOString() })
    .where('id', '=', 1)
    .returning('version')
    .executeTakeFirstOrThrow();
  return Number(row.version);
}

/** Whether a move is under way (not done, not aborted): ownership is then the mover's to change. */
export async function openMove(db: Kysely<unknown>): Promise<ShardingTables['orders_slot_moves'] | undefined> {
  return shardingTables(db).selectFrom('orders_slot_moves').selectAll().where('step', 'not in', ['done', 'aborted']).executeTakeFirst();
}

/**
 * Makes a shard's ownership table say what the map says, when no move is under way: owned for
 * its slots, nothing for the others. Run at start, so a shard created with the map (or one whose
 * start crashed half-way) owns its slots. During a move the mover alone changes ownership.
 */
export async function reconcileOwnership(shardDb: Kysely<unknown>, map: SlotMap, shardId: string): Promise<void> {
  const mine = slotsOf(map, shardId);
  const now = new Date().toISOString();
  await shardingTables(shardDb)
    .transaction()
    .execute(async (trx) => {
      const current = await trx.selectFrom('orders_slots').select(['slot', 'state']).execute();
      const wanted = new Set(mine);
      const stale = current.filter((r) => !wanted.has(Number(r.slot))).map((r) => Number(r.slot));
      if (stale.length > 0) await trx.deleteFrom('orders_slots').where('slot', 'in', stale).execute();
      const have = new Map(current.map((r) => [Number(r.slot), r.state]));
      const missing = mine.filter((s) => have.get(s) !== 'owned');
      for (let i = 0; i < missing.length; i += 200) {
        const batch = missing.slice(i, i + 200).map((slot) => ({ slot, state: 'owned' as const, updated_at: now }));
        await trx
          .insertInto('orders_slots')
          .values(batch)
          .onConflict((oc) => oc.column('slot').doUpdateSet({ state: 'owned', updated_at: now }))
          .execute();
      }
    });
}
