import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import {
  type Generated,
  Kysely,
  type Migration,
  type MigrationProvider,
  Migrator,
  PostgresDialect,
  SqliteDialect,
  type SqliteDatabase as KyselySqliteDatabase,
  type SqliteStatement,
  sql,
} from 'kysely';
import pg from 'pg';
import type { Telemetry } from '@shop/telemetry';
import { SpanKind, recordError, trace, tracer, tracingEnabled } from '@shop/tracing';

export { sql, type Generated, type Kysely, type Migration };

const background = new AsyncLocalStorage<true>();

/**
 * Runs `fn` as background work (an outbox relay's polling, say): its store round trips are
 * counted in `store_background_queries_total`, not in `store_queries_total`, which measures what
 * requests cost.
 */
export function inBackground<T>(fn: () => Promise<T>): Promise<T> {
  return background.run(true, fn);
}

export type StoreDialect = 'sqlite' | 'postgres';

/** Where a service keeps its data: PostgreSQL in services mode, SQLite (file or memory) embedded. */
export interface StoreLocation {
  /** A PostgreSQL URL (services mode). The database is created when missing. Wins over `sqlitePath`. */
  postgresUrl?: string | undefined;
  /** A SQLite file path, or ':memory:' (embedded mode). @default ':memory:' */
  sqlitePath?: string | undefined;
}

export interface StoreOptions extends StoreLocation {
  /** The owning service; labels `store_queries_total`. */
  service: string;
  telemetry: Telemetry;
  /** Connections in the PostgreSQL pool. @default 10 */
  poolSize?: number;
}

/** A service's own store: a typed query builder whose every round trip is counted. */
export interface Store<DB> {
  readonly db: Kysely<DB>;
  readonly dialect: StoreDialect;
  /** Runs the service's migrations, in name order, once each. */
  migrate(migrations: Record<string, Migration>): Promise<void>;
  /** True when the store answers a trivial query. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/** Opens a service's store; on PostgreSQL, creates the database first if it does not exist. */
export async function openStore<DB>(options: StoreOptions): Promise<Store<DB>> {
  const { service, telemetry } = options;
  const counter = telemetry.metrics.storeQueries.labels({ service });
  const backgroundCounter = telemetry.metrics.storeBackgroundQueries.labels({ service });
  const log = (event: LogEvent) => {
    if (background.getStore()) backgroundCounter.inc();
    else counter.inc();
    if (event.level === 'error') telemetry.logger.debug({ err: event.error, sql: event.query.sql }, 'store query failed');
  };

  if (options.postgresUrl) {
    await ensurePostgresDatabase(options.postgresUrl);
    const pool = new pg.Pool({
      connectionString: options.postgresUrl,
      max: options.poolSize ?? 10,
      types: { getTypeParser: pgTypeParser },
    });
    // An idle client losing its connection must not crash the process; the pool replaces it.
    pool.on('error', (err) => telemetry.logger.warn({ err }, 'idle PostgreSQL client error'));
    // Nor one in use: pg fails its query (the caller sees that) and also emits 'error' on the
    // client, which pg-pool listens to only while the client is idle. A connection cut under a
    // running query (pg_terminate_backend, a server restart) crashed the process with that
    // unhandled 'error' (a clean-clone CI run of test/sharding.e2e.test.ts: read ECONNRESET).
    pool.on('connect', (client) => {
      client.on('error', (err) => telemetry.logger.warn({ err }, 'PostgreSQL connection lost under a query'));
    });
    const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }), log });
    return makeStore(db, 'postgres');
  }

  const path = options.sqlitePath ?? ':memory:';
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const database = new SqliteDatabase(path);
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.pragma('busy_timeout = 5000');
  database.pragma('foreign_keys = ON');
  // SQLite has no maintained OpenTelemetry instrumentation (pg's is used on PostgreSQL): with
  // tracing on, each statement inside a trace becomes a span here, timed by Kysely.
  const sqliteLog = (event: LogEvent) => {
    log(event);
    if (tracingEnabled()) statementSpan(service, event);
  };
  const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: withStatementCache(database) }), log: sqliteLog });
  return makeStore(db, 'sqlite');
}

type LogEvent = { level: 'query' | 'error'; error?: unknown; query: { sql: string }; queryDurationMillis: number };

/** Longest statement text a span keeps: the text is for finding the statement, not archiving it. */
const SPAN_SQL_CHARS = 2_000;

/**
 * A client span for one SQLite statement that just ran, under the active span (none outside a
 * trace, like pg's instrumentation with requireParentSpan): it started `queryDurationMillis` ago.
 */
function statementSpan(service: string, event: LogEvent): void {
  if (!trace.getActiveSpan()) return;
  const text = event.query.sql;
  const operation = /^\s*(\w+)/.exec(text)?.[1]?.toUpperCase() ?? 'SQL';
  const end = performance.now();
  const span = tracer.startSpan(`${operation} ${service}`, {
    kind: SpanKind.CLIENT,
    startTime: end - event.queryDurationMillis,
    attributes: {
      'db.system.name': 'sqlite',
      'db.namespace': service,
      'db.operation.name': operation,
      'db.query.text': text.length > SPAN_SQL_CHARS ? text.slice(0, SPAN_SQL_CHARS) : text,
    },
  });
  if (event.level === 'error') recordError(span, event.error);
  span.end(end);
}

const STATEMENTS_KEPT = 500;
const SCHEMA_CHANGE = /^\s*(create|drop|alter)\b/i;

/**
 * better-sqlite3 with its prepared statements kept by SQL text: Kysely's SQLite driver prepares
 * every query afresh, which was 4-8% of a subgraph's CPU under the bench's varied load. A
 * statement still iterating (a stream) is not handed out again; a schema change forgets them all.
 * Bounded: the least recently used is dropped past STATEMENTS_KEPT.
 */
function withStatementCache(database: SqliteDatabase.Database): KyselySqliteDatabase {
  const kept = new Map<string, SqliteDatabase.Statement & SqliteStatement>();
  return {
    prepare(source: string): SqliteStatement {
      if (SCHEMA_CHANGE.test(source)) {
        kept.clear();
        return database.prepare(source);
      }
      const statement = kept.get(source);
      if (statement && !statement.busy) {
        kept.delete(source);
        kept.set(source, statement);
        return statement;
      }
      const fresh = database.prepare(source);
      if (!statement) {
        kept.set(source, fresh);
        if (kept.size > STATEMENTS_KEPT) kept.delete(kept.keys().next().value as string);
      }
      return fresh;
    },
    close: () => database.close(),
  };
}

/**
 * The newest `first` rows (by `created_at`, then `id`, both descending) of each of `parentIds`
 * in `table`, in ONE round trip and bounded per parent: for each parent an index on
 * (parentColumn, created_at, id) yields its newest `first` keys and only those rows are read, so
 * a parent with 900 children costs `first` index steps, not 900. PostgreSQL runs a lateral join;
 * SQLite, which has no LATERAL, a correlated `rowid IN (… LIMIT n)` per parent (the table must
 * have a rowid). The window-function query this replaced (rank every child of every parent, keep
 * the first n) cost 2-2.7x the SQLite CPU on the bench's batches. Lists follow `parentIds`.
 */
export async function newestPerParent<DB, Row extends { created_at: string; id: string }>(
  store: Pick<Store<DB>, 'db' | 'dialect'>,
  table: string,
  parentColumn: keyof Row & string,
  parentIds: readonly string[],
  first: number,
): Promise<Row[][]> {
  if (parentIds.length === 0) return [];
  if (first <= 0) return parentIds.map(() => []);
  const groups = new Map<string, Row[]>(parentIds.map((id) => [id, []]));
  const parents = [...groups.keys()];
  const from = sql.table(table);
  const parent = sql.ref(`x.${parentColumn}`);
  const query =
    store.dialect === 'postgres'
      ? sql<Row>`select r.* from unnest(${parents}::text[]) as p(parent)
          cross join lateral (select * from ${from} x where ${parent} = p.parent
            order by x.created_at desc, x.id desc limit ${first}) as r
          order by r.created_at desc, r.id desc`
      : sql<Row>`select r.* from json_each(${JSON.stringify(parents)}) as p
          cross join ${from} r on r.rowid in (select x.rowid from ${from} x where ${parent} = p.value
            order by x.created_at desc, x.id desc limit ${first})
          order by r.created_at desc, r.id desc`;
  const { rows } = await query.execute(store.db);
  for (const row of rows) groups.get(row[parentColumn] as string)?.push(row);
  return parentIds.map((id) => groups.get(id) ?? []);
}

function makeStore<DB>(db: Kysely<DB>, dialect: StoreDialect): Store<DB> {
  return {
    db,
    dialect,
    async migrate(migrations) {
      const provider: MigrationProvider = { getMigrations: async () => migrations };
      // Unordered: shared migrations (the outbox's) may sort after a service's newer ones.
      const { error, results } = await new Migrator({ db, provider, allowUnorderedMigrations: true }).migrateToLatest();
      if (error) {
        const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
        throw new Error(`Migration ${failed} failed: ${error instanceof Error ? error.message : JSON.stringify(error)}`, {
          cause: error,
        });
      }
    },
    async ping() {
      try {
        await sql`select 1`.execute(db);
        return true;
      } catch {
        return false;
      }
    },
    close: () => db.destroy(),
  };
}

const INT8_OID = 20;
const NUMERIC_OID = 1700;
/** Counts and sums come back as numbers, not strings: our values stay far below 2^53. */
function pgTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
  if (oid === INT8_OID || oid === NUMERIC_OID) return (value: string) => Number(value);
  // pg's typings give its parsers as `any`; each takes the wire value and returns the JS value.
  const parser = (format === 'binary' ? pg.types.getTypeParser(oid, 'binary') : pg.types.getTypeParser(oid, 'text')) as (
    value: string,
  ) => unknown;
  return parser;
}

/** Creates the database named in `url` when it does not exist, connecting to the `postgres` database. */
export async function ensurePostgresDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ''));
  if (!name) throw new Error(`PostgreSQL URL has no database name: ${redact(url)}`);
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (found.rowCount === 0) {
      try {
        await client.query(`create database ${quoteIdent(name)}`);
      } catch (err) {
        // Another replica created it first: that is the state we wanted.
        const code = (err as { code?: string }).code;
        if (code !== '42P04' && code !== '23505') throw err;
      }
    }
  } finally {
    await client.end();
  }
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A URL with its password replaced, safe to log. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

/** The embedded mode's store for a service: `<dataDir>/<service>/<service>.sqlite`. */
export function sqliteFileFor(dataDir: string, service: string): string {
  return join(dataDir, service, `${service}.sqlite`);
}
