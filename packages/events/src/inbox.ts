import { type Kysely, type Store } from '@shop/store';
import type { Telemetry } from '@shop/telemetry';
import { eventTables } from './outbox';
import { type EventEnvelope, PermanentError } from './types';

/** Handles one event inside the transaction that records it in the inbox. */
export type EventHandler = (trx: Kysely<never>, event: EventEnvelope) => Promise<void>;

export interface ConsumerOptions {
  store: Store<unknown>;
  telemetry: Telemetry;
  /** Handlers by event type, each with the schema versions it understands. */
  handlers: Record<string, { versions: number[]; handle: EventHandler }>;
  /** Called after a handled event's transaction commits (cache eviction, a relay kick). */
  afterCommit?: (event: EventEnvelope) => Promise<void> | void;
}

/**
 * An idempotent consumer: the event id goes into the inbox in the same transaction as the
 * handler's effect, so a redelivered event is a no-op and a crash mid-way leaves neither. An
 * unknown type or schema version is a PermanentError: it goes to dead letters, not a crash.
 */
export function idempotentConsumer(options: ConsumerOptions): (event: EventEnvelope) => Promise<void> {
  const { store, telemetry } = options;
  const service = telemetry.service;
  return async (event) => {
    const handler = options.handlers[event.type];
    if (!handler) throw new PermanentError(`${service} has no handler for ${event.type}`);
    if (!handler.versions.includes(event.schemaVersion)) {
      throw new PermanentError(`${service} cannot read ${event.type} schema version ${event.schemaVersion} (knows ${handler.versions.join(', ')})`);
    }
    const applied = await eventTables(store.db as Kysely<unknown>)
      .transaction()
      .execute(async (trx) => {
        const inserted = await trx
          .insertInto('inbox')
          .values({ event_id: event.id, type: event.type, source: event.source, handled_at: new Date().toISOString() })
          .onConflict((oc) => oc.column('event_id').doNothing())
          .executeTakeFirst();
        if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) return false; // a duplicate: already applied
        await handler.handle(trx as unknown as Kysely<never>, event);
        return true;
      });
    if (!applied) return;
    // events_consumed_total is counted by the bus (per delivery); the inbox adds the lag of applied ones.
    telemetry.metrics.eventPropagationSeconds.observe({ service }, Math.max(0, (Date.now() - Date.parse(event.occurredAt)) / 1000));
    await options.afterCommit?.(event);
  };
}
