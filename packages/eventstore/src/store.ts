import { randomUUID } from 'node:crypto';
import { type Generated, type Kysely, type Migration, type Store, sql } from '@shop/store';
import { slotOf } from './slots';

/**
 * The event store's tables, beside a service's own. Rows are only ever inserted: never updated,
 * never deleted (a projection rebuild deletes projection rows and checkpoints, not events).
 */
export interface EventStoreTables {
  es_events: {
    /** The global order of every event in this store: projections read from it. */
    position: Generated<number>;
    /** Unique per event (a UUID): what other events name as their causation. */
    event_id: string;
    stream_id: string;
    /** 1, 2, 3... per stream; (stream_id, version) is unique, which is what makes appends safe. */
    version: number;
    type: string;
    /** JSON. */
    payload: string;
    /** JSON: correlationId, causationId and whatever else the writer adds. */
    metadata: string;
    /** ISO 8601, never earlier than the previous event's (see `append`). */
    recorded_at: string;
    /**
     * The key a store would be sharded by (orders: the customer id). Kept on every row now so
     * that partitioning later needs no data migration.
     */
    partition_key: string | null;
    /** `slotOf(partition_key)` (slots.ts): what a slot move copies and deletes by. Null without a key. */
    partition_slot: number | null;
  };
  es_checkpoints: { projection: string; position: number; updated_at: string };
}

/** The tables as a query builder over any service's store (or one of its transactions). */
export const eventStoreTables = (db: Kysely<unknown> | Kysely<never>): Kysely<EventStoreTables> =>
  db as unknown as Kysely<EventStoreTables>;

/** Migrations for the event store; a service merges them into its own. */
export const eventStoreMigrations: Record<string, Migration> = {
  '0200_event_store': {
    async up(db) {
      const postgres = (await sql<{ v: string }>`select version() as v`.execute(db).catch(() => undefined)) !== undefined;
      await db.schema
        .createTable('es_events')
        .addColumn('position', postgres ? 'bigserial' : 'integer', (c) => (postgres ? c.primaryKey() : c.primaryKey().autoIncrement()))
        .addColumn('event_id', 'text', (c) => c.notNull().unique())
        .addColumn('stream_id', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('metadata', 'text', (c) => c.notNull())
        .addColumn('recorded_at', 'text', (c) => c.notNull())
        .addColumn('partition_key', 'text')
        // The optimistic-concurrency guarantee: one event per (stream, version), whoever races.
        .addUniqueConstraint('es_events_stream_version', ['stream_id', 'version'])
        .execute();
      await db.schema.createIndex('es_events_by_partition').on('es_events').columns(['partition_key', 'position']).execute();
    },
  },
  '0201_projection_checkpoints': {
    async up(db) {
      await db.schema
        .createTable('es_checkpoints')
        .addColumn('projection', 'text', (c) => c.primaryKey())
        .addColumn('position', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
    },
  },
  '0202_partition_slot': {
    async up(db) {
      // The slot of every event's partition key, so a shard can hand a slot's events on (orders).
      await db.schema.alterTable('es_events').addColumn('partition_slot', 'integer').execute();
      const tables = eventStoreTables(db);
      const keys = await tables.selectFrom('es_events').select('partition_key').distinct().where('partition_key', 'is not', null).execute();
      for (const { partition_key: key } of keys) {
        await tables
          .updateTable('es_events')
          .set({ partition_slot: slotOf(key!) })
          .where('partition_key', '=', key)
          .execute();
      }
      await db.schema.createIndex('es_events_by_slot').on('es_events').columns(['partition_slot', 'position']).execute();
    },
  },
};

/** Tracing ids carried by every event. */
export interface EventMetadata {
  /** The request or process the event is part of: every event it caused shares it. */
  correlationId?: string;
  /** The command or event that directly caused this one. */
  causationId?: string;
  [key: string]: unknown;
}

/** An event to append: what happened, and its data. */
export interface NewStreamEvent {
  type: string;
  data: Record<string, unknown>;
  metadata?: EventMetadata;
}

/** An event as the store recorded it. */
export interface RecordedEvent {
  position: number;
  eventId: string;
  streamId: string;
  version: number;
  type: string;
  data: Record<string, unknown>;
  metadata: EventMetadata;
  /** ISO 8601. */
  recordedAt: string;
  partitionKey: string | null;
}

/**
 * What the writer believes the stream's version is: a number (0 for "the stream must not exist
 * yet") or 'any' to append whatever the version (no concurrency check).
 */
export type ExpectedVersion = number | 'any';

/** The stream moved on since the writer read it: nothing was written; reload and decide again. */
export class ConcurrencyError extends Error {
  readonly code = 'CONCURRENCY_CONFLICT';
  constructor(
    readonly streamId: string,
    readonly expectedVersion: number,
    readonly actualVersion: number,
  ) {
    super(`stream ${JSON.stringify(streamId)} is at version ${actualVersion}, not the expected ${expectedVersion}: reload and try again`);
    this.name = 'ConcurrencyError';
  }
}

export interface AppendOptions {
  expectedVersion: ExpectedVersion;
  /** Written on every row: see `EventStoreTables.es_events.partition_key`. @default null */
  partitionKey?: string | null;
  /** Merged into every event's own metadata. */
  metadata?: EventMetadata;
  /**
   * Runs inside the append's transaction after the rows are in: write the outbox here, so the
   * events and their publication commit together or not at all.
   */
  inTransaction?: (trx: Kysely<never>, recorded: readonly RecordedEvent[]) => Promise<void>;
}

export interface AppendResult {
  events: RecordedEvent[];
  /** The stream's version after the append: pass it as the next expected version. */
  version: number;
}

/** Where a stream read stops. */
export interface ReadStreamOptions {
  /** Only events recorded at or before this instant (ISO 8601): time travel. */
  recordedAtOrBefore?: string;
  /** Only events up to this version. */
  toVersion?: number;
  /** Only events after this version (a snapshot covers the ones before). */
  afterVersion?: number;
  /** Read in this transaction (a consumer's, deciding on what it reads). @default the store */
  db?: Kysely<never> | Kysely<unknown>;
}

type Row = Omit<EventStoreTables['es_events'], 'position' | 'partition_slot'> & { position: number };

export const toRecorded = (r: Row): RecordedEvent => ({
  position: Number(r.position),
  eventId: r.event_id,
  streamId: r.stream_id,
  version: Number(r.version),
  type: r.type,
  data: JSON.parse(r.payload) as Record<string, unknown>,
  metadata: JSON.parse(r.metadata) as EventMetadata,
  recordedAt: r.recorded_at,
  partitionKey: r.partition_key,
});

/** A PostgreSQL or SQLite unique violation on (stream_id, version). */
function isStreamVersionViolation(err: unknown): boolean {
  const e = err as { code?: unknown; constraint?: unknown; message?: unknown };
  if (e.code === '23505') return e.constraint === 'es_events_stream_version';
  return e.code === 'SQLITE_CONSTRAINT_UNIQUE' && typeof e.message === 'string' && e.message.includes('es_events.stream_id');
}

export interface EventStoreOptions {
  /** The clock. @default () => new Date() */
  now?: () => Date;
  /**
   * Runs first in every append's transaction with the append's partition key, before any row is
   * written: throw to refuse the append (a sharded store checks that it still owns the key's slot,
   * so a write can never land on a shard that has handed the slot on). @default none
   */
  guard?: (trx: Kysely<never>, partitionKey: string | null) => Promise<void>;
}

/**
 * An append-only event store in a service's own store.
 *
 * Concurrency: an append states the version it expects the stream to be at. A stale expectation
 * collides with the unique (stream_id, version) index and becomes a `ConcurrencyError`; nothing
 * is written, nothing is lost. On PostgreSQL appends also take a transaction-scoped advisory
 * lock, so global positions become visible in commit order: a projection reading "after
 * position N" can never skip an event that committed late with a smaller position. (SQLite
 * has one writer anyway.)
 */
export class EventStore {
  private readonly now: () => Date;
  private readonly guard: EventStoreOptions['guard'];

  constructor(
    private readonly store: Store<unknown>,
    options: EventStoreOptions = {},
  ) {
    this.now = options.now ?? (() => new Date());
    this.guard = options.guard;
  }

  get dialect(): Store<unknown>['dialect'] {
    return this.store.dialect;
  }

  private get db(): Kysely<EventStoreTables> {
    return eventStoreTables(this.store.db);
  }

  /** Appends `events` to `streamId` at the next versions, or throws `ConcurrencyError`. */
  async append(streamId: string, events: readonly NewStreamEvent[], options: AppendOptions): Promise<AppendResult> {
    try {
      return await this.db.transaction().execute((trx) => this.appendIn(trx as unknown as Kysely<never>, streamId, events, options));
    } catch (err) {
      throw await this.asConcurrencyError(err, streamId, options.expectedVersion);
    }
  }

  /**
   * `append` inside the caller's transaction (a consumer's inbox transaction, or one that appends
   * to several streams at once), so the events commit with whatever else it writes. A stale
   * expectation may surface as the store's unique violation rather than a `ConcurrencyError`
   * (PostgreSQL aborts the transaction at the insert): the caller's transaction fails either way,
   * and `isConcurrencyFailure` tells the two apart from other errors.
   */
  async appendIn(trx: Kysely<never>, streamId: string, events: readonly NewStreamEvent[], options: AppendOptions): Promise<AppendResult> {
    const expected = options.expectedVersion;
    if (expected !== 'any' && (!Number.isInteger(expected) || expected < 0)) {
      throw new RangeError(`expectedVersion must be a whole number >= 0 or 'any'; received ${String(expected)}`);
    }
    const db = eventStoreTables(trx);
    if (this.store.dialect === 'postgres') await sql`select pg_advisory_xact_lock(hashtext('es_events:append'))`.execute(db);
    await this.guard?.(trx, options.partitionKey ?? null);
    let base: number;
    if (expected === 'any') {
      base = await this.versionOf(db, streamId);
    } else {
      base = expected;
      // An expectation ahead of the stream would leave a gap: refuse it. One behind it is
      // refused by the unique index when the insert below collides.
      if (expected > 0) {
        const at = await db
          .selectFrom('es_events')
          .select('version')
          .where('stream_id', '=', streamId)
          .where('version', '=', expected)
          .executeTakeFirst();
        if (!at) throw new ConcurrencyError(streamId, expected, await this.versionOf(db, streamId));
      }
    }
    if (events.length === 0) return { events: [], version: base };
    // Times never go backwards along the global position, so "recorded at or before T" is
    // a prefix of every stream (what time travel relies on), even if the clock steps back.
    const last = await db.selectFrom('es_events').select('recorded_at').orderBy('position', 'desc').limit(1).executeTakeFirst();
    const now = this.now().toISOString();
    const recordedAt = last && last.recorded_at > now ? last.recorded_at : now;
    const recorded: RecordedEvent[] = [];
    let version = base;
    for (const e of events) {
      version += 1;
      const row = {
        event_id: randomUUID(),
        stream_id: streamId,
        version,
        type: e.type,
        payload: JSON.stringify(e.data),
        metadata: JSON.stringify({ ...options.metadata, ...e.metadata }),
        recorded_at: recordedAt,
        partition_key: options.partitionKey ?? null,
        partition_slot: options.partitionKey == null ? null : slotOf(options.partitionKey),
      };
      const { position } = await db.insertInto('es_events').values(row).returning('position').executeTakeFirstOrThrow();
      recorded.push(toRecorded({ ...row, position: Number(position) }));
    }
    await options.inTransaction?.(trx, recorded);
    return { events: recorded, version };
  }

  /** Whether an append failed because another writer got to the stream first (retry after reloading). */
  static isConcurrencyFailure(err: unknown): boolean {
    return err instanceof ConcurrencyError || isStreamVersionViolation(err);
  }

  private async asConcurrencyError(err: unknown, streamId: string, expected: ExpectedVersion): Promise<unknown> {
    if (isStreamVersionViolation(err) && expected !== 'any')
      return new ConcurrencyError(streamId, expected, await this.streamVersion(streamId));
    return err;
  }

  private async versionOf(db: Kysely<EventStoreTables>, streamId: string): Promise<number> {
    const row = await db
      .selectFrom('es_events')
      .select((eb) => eb.fn.max('version').as('v'))
      .where('stream_id', '=', streamId)
      .executeTakeFirst();
    return Number(row?.v ?? 0);
  }

  /** The stream's current version (0 when it has no events). */
  streamVersion(streamId: string): Promise<number> {
    return this.versionOf(this.db, streamId);
  }

  /** A stream's events in version order, optionally only up to an instant or a version. */
  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
    const db = options.db ? eventStoreTables(options.db) : this.db;
    let q = db.selectFrom('es_events').selectAll().where('stream_id', '=', streamId);
    if (options.recordedAtOrBefore !== undefined) q = q.where('recorded_at', '<=', options.recordedAtOrBefore);
    if (options.toVersion !== undefined) q = q.where('version', '<=', options.toVersion);
    if (options.afterVersion !== undefined) q = q.where('version', '>', options.afterVersion);
    const rows = await q.orderBy('version').execute();
    return rows.map(toRecorded);
  }

  /** Many streams in one round trip, each in version order; a missing stream is empty. */
  async readStreams(streamIds: readonly string[]): Promise<RecordedEvent[][]> {
    if (streamIds.length === 0) return [];
    const rows = await this.db
      .selectFrom('es_events')
      .selectAll()
      .where('stream_id', 'in', [...new Set(streamIds)])
      .orderBy('stream_id')
      .orderBy('version')
      .execute();
    const groups = new Map<string, RecordedEvent[]>();
    for (const r of rows) {
      const list = groups.get(r.stream_id) ?? [];
      list.push(toRecorded(r));
      groups.set(r.stream_id, list);
    }
    return streamIds.map((id) => groups.get(id) ?? []);
  }

  /**
   * Every stream's events after global position `after`, in position order, at most `limit`.
   * Pass a transaction as `db` to read inside it (SQLite has one connection).
   */
  async readAll(after: number, limit: number, db: Kysely<never> | Kysely<unknown> = this.store.db): Promise<RecordedEvent[]> {
    const rows = await eventStoreTables(db)
      .selectFrom('es_events')
      .selectAll()
      .where('position', '>', after)
      .orderBy('position')
      .limit(limit)
      .execute();
    return rows.map(toRecorded);
  }

  /** The position of the newest event (0 when the store is empty). */
  async headPosition(): Promise<number> {
    const row = await this.db
      .selectFrom('es_events')
      .select((eb) => eb.fn.max('position').as('p'))
      .executeTakeFirst();
    return Number(row?.p ?? 0);
  }
}
