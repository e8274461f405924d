import { randomUUID } from 'node:crypto';
import { type Generated, type Kysely, type Migration, type Store, inBackground, sql } from '@shop/store';
import type { Telemetry } from '@shop/telemetry';
import {
  SpanKind,
  type Span,
  contextFrom,
  currentTraceContext,
  inSpan,
  propagation,
  recordError,
  trace,
  tracer,
  tracingEnabled,
} from '@shop/tracing';
import type { Bus, EventEnvelope } from './types';

/** The outbox and inbox tables every service that publishes or consumes events has. */
export interface EventTables {
  outbox: {
    position: Generated<number>;
    id: string;
    type: string;
    aggregate_id: string;
    aggregate_version: number;
    occurred_at: string;
    schema_version: number;
    payload: string;
    published_at: string | null;
    /** The W3C trace context (JSON) of the request that wrote the event; null outside a trace. */
    trace_context: string | null;
  };
  inbox: { event_id: string; type: string; source: string; handled_at: string };
}

/** The tables as a query builder over any service's store (they live beside its own tables). */
export const eventTables = (db: Kysely<unknown> | Kysely<never>): Kysely<EventTables> => db as unknown as Kysely<EventTables>;

/** Migrations for the outbox and inbox; each service merges them into its own. */
export const eventMigrations: Record<string, Migration> = {
  '0100_outbox': {
    async up(db) {
      const postgres = (await sql<{ v: string }>`select version() as v`.execute(db).catch(() => undefined)) !== undefined;
      await db.schema
        .createTable('outbox')
        // The global order of events: a relay publishes in this order.
        .addColumn('position', postgres ? 'bigserial' : 'integer', (c) => (postgres ? c.primaryKey() : c.primaryKey().autoIncrement()))
        .addColumn('id', 'text', (c) => c.notNull().unique())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('aggregate_id', 'text', (c) => c.notNull())
        .addColumn('aggregate_version', 'integer', (c) => c.notNull())
        .addColumn('occurred_at', 'text', (c) => c.notNull())
        .addColumn('schema_version', 'integer', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('published_at', 'text')
        .addUniqueConstraint('outbox_aggregate_version', ['aggregate_id', 'aggregate_version'])
        .execute();
      await db.schema.createIndex('outbox_pending').on('outbox').columns(['published_at', 'position']).execute();
    },
  },
  '0101_inbox': {
    async up(db) {
      await db.schema
        .createTable('inbox')
        .addColumn('event_id', 'text', (c) => c.primaryKey())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('handled_at', 'text', (c) => c.notNull())
        .execute();
    },
  },
  // The relay publishes in the trace of the request that wrote the event: it needs that trace's context.
  '0102_outbox_trace_context': {
    async up(db) {
      await db.schema.alterTable('outbox').addColumn('trace_context', 'text').execute();
    },
  },
};

/** An event a write produces, before the outbox gives it an id, a version and a time. */
export interface NewEvent {
  type: string;
  aggregateId: string;
  payload: Record<string, unknown>;
  /** @default 1 */
  schemaVersion?: number;
}

/**
 * Appends events to the outbox INSIDE the caller's transaction, so the state change and its
 * events commit together or not at all. Versions continue each aggregate's sequence.
 */
export function appendEvents(trx: Kysely<never> | Kysely<unknown>, source: string, events: readonly NewEvent[]): Promise<EventEnvelope[]> {
  if (!tracingEnabled() || events.length === 0) return append(trx, source, events, undefined);
  // With tracing on the rows keep the context of this span, which is the request's child.
  return inSpan(`${source} outbox append`, { 'shop.service': source, 'messaging.batch.message_count': events.length }, () =>
    append(trx, source, events, currentTraceContext()),
  );
}

async function append(
  trx: Kysely<never> | Kysely<unknown>,
  source: string,
  events: readonly NewEvent[],
  traceContext: Record<string, string> | undefined,
): Promise<EventEnvelope[]> {
  const db = eventTables(trx);
  const out: EventEnvelope[] = [];
  const next = new Map<string, number>();
  for (const e of events) {
    let version = next.get(e.aggregateId);
    if (version === undefined) {
      const row = await db
        .selectFrom('outbox')
        .select((eb) => eb.fn.max('aggregate_version').as('v'))
        .where('aggregate_id', '=', e.aggregateId)
        .executeTakeFirst();
      version = Number(row?.v ?? 0);
    }
    version += 1;
    next.set(e.aggregateId, version);
    out.push({
      id: randomUUID(),
      type: e.type,
      source,
      aggregateId: e.aggregateId,
      aggregateVersion: version,
      occurredAt: new Date().toISOString(),
      schemaVersion: e.schemaVersion ?? 1,
      payload: e.payload,
      ...(traceContext ? { traceContext } : {}),
    });
  }
  if (out.length > 0) {
    await db
      .insertInto('outbox')
      .values(
        out.map((e) => ({
          id: e.id,
          type: e.type,
          aggregate_id: e.aggregateId,
          aggregate_version: e.aggregateVersion,
          occurred_at: e.occurredAt,
          schema_version: e.schemaVersion,
          payload: JSON.stringify(e.payload),
          published_at: null,
          trace_context: e.traceContext ? JSON.stringify(e.traceContext) : null,
        })),
      )
      .execute();
  }
  return out;
}

type OutboxRow = Omit<EventTables['outbox'], 'position'>;

/** The event a row holds; with `traced`, the trace context it was written in (a replay is not part of that request). */
const toEnvelope = (source: string, r: OutboxRow, traced = false): EventEnvelope => ({
  id: r.id,
  type: r.type,
  source,
  aggregateId: r.aggregate_id,
  aggregateVersion: Number(r.aggregate_version),
  occurredAt: r.occurred_at,
  schemaVersion: Number(r.schema_version),
  payload: JSON.parse(r.payload) as Record<string, unknown>,
  ...(traced && r.trace_context ? { traceContext: parseTraceContext(r.trace_context) } : {}),
});

function parseTraceContext(text: string): Record<string, string> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as Record<string, string>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * With tracing on, a producer span per event that has a trace context, under the span that wrote
 * it; the event then carries the producer span's context, so consumers hang below the publish.
 * Returns the events to send and how to end the spans once the broker confirmed (or refused).
 */
function publishSpans(service: string, events: EventEnvelope[]): { events: EventEnvelope[]; end(err?: unknown): void } {
  if (!tracingEnabled()) return { events, end: () => undefined };
  const spans: Span[] = [];
  const out = events.map((e) => {
    if (!e.traceContext) return e;
    const writer = contextFrom(e.traceContext);
    const span = tracer.startSpan(
      `${service} publish ${e.type}`,
      {
        kind: SpanKind.PRODUCER,
        attributes: {
          'messaging.operation.type': 'send',
          'messaging.destination.name': e.type,
          'messaging.message.id': e.id,
          'shop.service': service,
        },
      },
      writer,
    );
    spans.push(span);
    const carrier: Record<string, string> = {};
    propagation.inject(trace.setSpan(writer, span), carrier);
    return { ...e, traceContext: carrier };
  });
  return {
    events: out,
    end(err?: unknown) {
      for (const span of spans) {
        if (err !== undefined) recordError(span, err);
        span.end();
      }
    },
  };
}

export interface RelayOptions {
  store: Store<unknown>;
  bus: Bus;
  telemetry: Telemetry;
  /** Rows per publish. @default 200 */
  batchSize?: number;
  /** How often to look for pending rows when nothing kicked the relay. @default 50 */
  pollMs?: number;
}

/**
 * Publishes pending outbox rows in position order and marks them published only after the broker
 * confirmed them. On PostgreSQL an advisory lock makes one relay at a time do the work, so
 * several replicas never publish one aggregate's events out of order; a crash between publish
 * and mark republishes, and consumers' inboxes make that harmless.
 */
export class OutboxRelay {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private stopped = false;
  private readonly batchSize: number;
  private readonly pollMs: number;
  private failures = 0;
  /** A write committed since the current pass began: that pass may not have seen it. */
  private kicked = false;

  constructor(private readonly options: RelayOptions) {
    this.batchSize = options.batchSize ?? 200;
    this.pollMs = options.pollMs ?? 50;
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  /**
   * Runs a pass soon: call after committing a write that appended events. During a pass it asks
   * for another right after (that pass may have read the outbox before the commit), so an event
   * never waits for the next poll.
   */
  kick(): void {
    if (this.stopped) return;
    this.kicked = true;
    if (!this.running) this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => 0);
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.loop(), ms);
    this.timer.unref();
  }

  private async loop(): Promise<void> {
    if (this.stopped) return;
    // A fresh pass sees every commit before it; joining one already running, a kick still counts.
    if (!this.running) this.kicked = false;
    let published = 0;
    try {
      published = await this.runOnce();
      this.failures = 0;
    } catch (err) {
      this.failures++;
      // The broker is down or refused: keep the rows, back off, try again.
      if (this.failures === 1 || this.failures % 50 === 0) {
        this.options.telemetry.logger.warn(
          { err: (err as Error).message, failures: this.failures },
          'outbox relay could not publish; will retry',
        );
      }
    }
    if (this.stopped) return;
    const backoff =
      this.failures > 0
        ? Math.min(50 * 2 ** Math.min(this.failures, 6), 1_000)
        : published >= this.batchSize || this.kicked
          ? 0
          : this.pollMs;
    this.schedule(backoff);
  }

  /** One pass: publishes up to `batchSize` pending rows; returns how many. */
  runOnce(): Promise<number> {
    if (!this.running) {
      this.running = inBackground(() => this.pass()).finally(() => {
        this.running = undefined;
      });
    }
    return this.running;
  }

  private async pass(): Promise<number> {
    const { store, telemetry } = this.options;
    const service = telemetry.service;
    const db = eventTables(store.db);
    let published: number | undefined;
    try {
      // -1: another relay holds the lock (and publishes); count what waits.
      published = await this.publishPending(db);
      return Math.max(0, published);
    } finally {
      // Measured after every pass, failed ones included: a growing backlog is what an outage shows.
      // A pass that took less than a batch took every pending row it saw: none left, no need to count.
      if (published !== undefined && published >= 0 && published < this.batchSize) {
        telemetry.metrics.outboxPending.set({ service }, 0);
      } else {
        const pending = await db
          .selectFrom('outbox')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('published_at', 'is', null)
          .executeTakeFirst();
        telemetry.metrics.outboxPending.set({ service }, Number(pending?.n ?? 0));
      }
    }
  }

  private async publishPending(db: Kysely<EventTables>): Promise<number> {
    const { store, bus, telemetry } = this.options;
    const service = telemetry.service;
    // Most passes find nothing (a poll between commits): one indexed read then, no transaction.
    // A row committed after it is the next pass's: its commit kicked the relay.
    const pending = await db.selectFrom('outbox').select('position').where('published_at', 'is', null).limit(1).executeTakeFirst();
    if (!pending) return 0;
    return db.transaction().execute(async (trx) => {
      type Row = OutboxRow & { position: number };
      let rows: Row[];
      if (store.dialect === 'postgres') {
        // The lock first, and no waiting for the disk at commit: losing the mark in a database
        // crash only republishes those events, and consumers' inboxes drop the copies.
        const lock = await sql<{ locked: boolean }>`
          select pg_try_advisory_xact_lock(hashtext(${`outbox:${service}`})) as locked, set_config('synchronous_commit', 'off', true) as sc`.execute(
          trx,
        );
        if (!lock.rows[0]?.locked) return -1;
        // Then the rows, in a statement of their own: a statement reads the rows committed when it
        // began, and the relay that held the lock before may have committed its marks after that
        // and before the lock was ours. Read in the lock's statement (as this was), those rows
        // looked pending and were published twice (the inventory bus test saw a repeat).
        const found = await sql<Row>`select * from outbox where published_at is null order by position limit ${this.batchSize}`.execute(
          trx,
        );
        rows = found.rows;
      } else {
        rows = await trx
          .selectFrom('outbox')
          .selectAll()
          .where('published_at', 'is', null)
          .orderBy('position')
          .limit(this.batchSize)
          .execute();
      }
      if (rows.length === 0) return 0;
      const sending = publishSpans(
        service,
        rows.map((r) => toEnvelope(service, r, true)),
      );
      try {
        await bus.publish(sending.events);
      } catch (err) {
        sending.end(err);
        throw err;
      }
      sending.end();
      await trx
        .updateTable('outbox')
        .set({ published_at: new Date().toISOString() })
        .where(
          'position',
          'in',
          rows.map((r) => r.position),
        )
        .execute();
      return rows.length;
    });
  }

  /** Republishes every event from `position` on (for a new consumer or a rebuilt projection). */
  async replayFrom(position: number): Promise<number> {
    const { store, bus, telemetry } = this.options;
    const db = eventTables(store.db);
    let from = position;
    let total = 0;
    for (;;) {
      const rows = await inBackground(() =>
        db
          .selectFrom('outbox')
          .selectAll()
          .where('position', '>=', from)
          .where('published_at', 'is not', null)
          .orderBy('position')
          .limit(this.batchSize)
          .execute(),
      );
      if (rows.length === 0) return total;
      await bus.publish(rows.map((r) => toEnvelope(telemetry.service, r)));
      total += rows.length;
      from = Number(rows.at(-1)?.position ?? from) + 1;
    }
  }
}

/** Where a service's outbox stands: what a replay can start from and what waits for the broker. */
export interface OutboxStatus {
  /** Rows in the outbox. */
  events: number;
  /** Rows the broker has not confirmed yet. */
  pending: number;
  /** The first and last positions (null when empty): `replayFrom(first)` republishes everything. */
  first: number | null;
  last: number | null;
  /** Events this service applied (its inbox). */
  applied: number;
}

export async function outboxStatus(store: Store<unknown>): Promise<OutboxStatus> {
  const db = eventTables(store.db);
  return inBackground(async () => {
    const row = await db
      .selectFrom('outbox')
      .select((eb) => [
        eb.fn.countAll<number>().as('events'),
        eb.fn.count<number>('published_at').as('published'),
        eb.fn.min('position').as('first'),
        eb.fn.max('position').as('last'),
      ])
      .executeTakeFirst();
    const inbox = await db
      .selectFrom('inbox')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirst();
    const events = Number(row?.events ?? 0);
    return {
      events,
      pending: events - Number(row?.published ?? 0),
      first: row?.first == null ? null : Number(row.first),
      last: row?.last == null ? null : Number(row.last),
      applied: Number(inbox?.n ?? 0),
    };
  });
}
