import { slotOf } from '@shop/eventstore';
import type { Kysely, StoreDialect } from '@shop/store';
import { type SlotState, shardingTables } from './map';

/**
 * An append for a slot this shard does not own right now: the slot is fenced (a move is copying
 * its last events away), incoming (a move is copying it here) or gone (moved). Nothing was
 * written; the router reloads the map and retries on the owner.
 */
export class SlotNotOwnedError extends Error {
  constructor(
    readonly slot: number,
    readonly state: SlotState | 'absent',
  ) {
    super(`slot ${slot} is ${state} on this shard: reload the slot map and retry on its owner`);
    this.name = 'SlotNotOwnedError';
  }
}

/** Whether an error (possibly wrapped as a cause) is a {@link SlotNotOwnedError}. */
export function isSlotNotOwned(err: unknown): err is SlotNotOwnedError {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof SlotNotOwnedError || (e as { name?: unknown }).name === 'SlotNotOwnedError') return true;
  }
  return false;
}

/**
 * The event store's guard for a shard: every append checks, inside its own transaction, that the
 * shard owns the slot of the append's partition key (the customer id). On PostgreSQL the row is
 * read FOR SHARE, so a move's fence (an UPDATE of the row) waits for appends in flight to commit,
 * and appends after it see the fence: a write can never land on a shard after it handed the slot
 * on. SQLite has one writer at a time, which serialises the two the same way.
 */
export function ownershipGuard(dialect: StoreDialect): (trx: Kysely<never>, partitionKey: string | null) => Promise<void> {
  return async (trx, partitionKey) => {
    // No key: nothing to own (a rejected command never gets here; the decider refuses it first).
    if (!partitionKey) return;
    const slot = slotOf(partitionKey);
    let query = shardingTables(trx).selectFrom('orders_slots').select('state').where('slot', '=', slot);
    if (dialect === 'postgres') query = query.forShare();
    const row = await query.executeTakeFirst();
    if (row?.state !== 'owned') throw new SlotNotOwnedError(slot, row?.state ?? 'absent');
  };
}
