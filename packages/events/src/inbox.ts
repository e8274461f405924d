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

/** The consumer a bus subscription takes: `handler` for one event, `batchHandler` for several at once. */
export interface IdempotentConsumer {
  (event: EventEnvelope): Promise<void>;
  /** One transaction for the whole batch: one inbox insert, each new event's effect, one commit. */
  batch(events: EventEnvelope[]): Promise<void>;
}

/**
 * An idempotent consumer: the event id goes into the inbox in the same transaction as the
 * handler's effect, so a redelivered event is a no-op and a crash mid-way leaves neither. An
 * unknown type or schema version is a PermanentError: it goes to dead letters, not a crash.
 * `batch` applies several events in one transaction (all or none), which is what keeps a consumer
 * up with hundreds of events a second: a commit waits for the disk, once per batch instead of
 * once per event.
 */
export function idempotentConsumer(options: ConsumerOptions): IdempotentConsumer {
  const { store, telemetry } = options;
  const service = telemetry.service;
  const handlerOf = (event: EventEnvelope) => {
    const handler = options.handlers[event.type];
    if (!handler) throw new PermanentError(`${service} has no handler for ${event.type}`);
    if (!handler.versions.includes(event.schemaVersion)) {
      throw new PermanentError(
        `${service} cannot read ${event.type} schema version ${event.schemaVersion} (knows ${handler.versions.join(', ')})`,
      );
    }
    return handler;
  };
  const applied = async (event: EventEnvelope) => {
    // events_consumed_total is counted by the bus (per delivery); the inbox adds the lag of applied ones.
    telemetry.metrics.eventPropagationSeconds.observe({ service }, Math.max(0, (Date.now() - Date.parse(event.occurredAt)) / 1000));
    await options.afterCommit?.(event);
  };
  const batch = async (events: EventEnvelope[]) => {
    // Every event must be readable first: otherwise the bus takes them one by one and dead-letters that one.
    const handlers = events.map(handlerOf);
    const handledAt = new Date().toISOString();
    const done = await eventTables(store.db)
      .transaction()
      .execute(async (trx) => {
        const fresh = new Set(
          (
            await trx
              .insertInto('inbox')
              .values([
                ...new Map(events.map((e) => [e.id, { event_id: e.id, type: e.type, source: e.source, handled_at: handledAt }])).values(),
              ])
              .onConflict((oc) => oc.column('event_id').doNothing())
              .returning('event_id')
              .execute()
          ).map((r) => r.event_id),
        );
        const out: EventEnvelope[] = [];
        for (const [i, event] of events.entries()) {
          // delete: an id twice in one batch (a redelivery right behind the original) applies once.
          if (!fresh.delete(event.id)) continue;
          await handlers[i]?.handle(trx as unknown as Kysely<never>, event);
          out.push(event);
        }
        return out;
      });
    for (const event of done) await applied(event);
  };
  const one = async (event: EventEnvelope) => {
    const handler = handlerOf(event);
    const isNew = await eventTables(store.db)
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
    if (isNew) await applied(event);
  };
  return Object.assign(one, { batch });
}
