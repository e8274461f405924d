import { randomBytes } from 'node:crypto';
import { Socket } from 'node:net';
import pg from 'pg';

/** The real services the int tier talks to. Override with TEST_POSTGRES_URL / TEST_REDIS_URL / TEST_AMQP_URL. */
export const services = {
  postgres: process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  redis: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
  amqp: process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
} as const;

export type ServiceName = keyof typeof services;

function reachable(url: string, defaultPort: number): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.setTimeout(2000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
    socket.connect(Number(u.port || defaultPort), u.hostname);
  });
}

const defaultPorts: Record<ServiceName, number> = { postgres: 5432, redis: 6379, amqp: 5672 };

/**
 * Fails with a clear message when a real service does not answer: the int tier needs it, and a
 * test that needs a service must fail, not skip (CI runs every tier).
 */
export async function requireService(name: ServiceName): Promise<void> {
  if (await reachable(services[name], defaultPorts[name])) return;
  throw new Error(`${name} is not reachable at ${services[name]}: start it (see README, "Services") or run \`npm run test:unit\``);
}

/** The base URL (database `postgres`) of the second PostgreSQL server. Override with TEST_POSTGRES_URL_2. */
export function secondPostgresUrl(): string {
  return process.env.TEST_POSTGRES_URL_2 ?? 'postgres://postgres@127.0.0.1:5433/postgres';
}

function serverAddress(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || 5432}`;
}

/**
 * Fails with how to start it when the second PostgreSQL server does not answer, or when its URL
 * names the first server's host and port (a shard "on another server" would then share one).
 * Sharding tests need a second server and must fail without it, never skip.
 */
export async function requireSecondPostgres(): Promise<void> {
  const url = secondPostgresUrl();
  if (serverAddress(url) === serverAddress(services.postgres)) {
    throw new Error(`TEST_POSTGRES_URL_2 (${url}) names the first PostgreSQL server (${services.postgres}): point it at a second server`);
  }
  if (await reachable(url, 5432)) return;
  throw new Error(
    `the second PostgreSQL server is not reachable at ${url}: \`.ci/run\` creates and starts it, or by hand ` +
      `(as root, <version> the main cluster's, see pg_lsclusters): \`pg_createcluster <version> second --port 5433\`, ` +
      `trust 127.0.0.1/32 in /etc/postgresql/<version>/second/pg_hba.conf, then ` +
      `\`pg_ctlcluster --skip-systemctl-redirect <version> second start\` (see README, "Tests"); or set TEST_POSTGRES_URL_2`,
  );
}

/**
 * Where a store keeps its data: @shop/store's StoreLocation, spelled out here so that the test
 * helpers depend on no package they help test (no dev-dependency cycle).
 */
export interface StoreLocation {
  postgresUrl?: string | undefined;
  sqlitePath?: string | undefined;
}

/** Drops a PostgreSQL database a test (or a benchmark) created, closing its connections first. */
export async function dropPostgresDatabase(url: string): Promise<void> {
  const name = decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    await client.query(`drop database if exists "${name.replace(/"/g, '""')}" with (force)`);
  } finally {
    await client.end();
  }
}

/** Which PostgreSQL server: the first (TEST_POSTGRES_URL) or the second (TEST_POSTGRES_URL_2). */
export type PostgresServer = 'first' | 'second';

export interface TempPostgresOptions {
  /** The server the database goes on; a test on the second calls \`requireSecondPostgres\` first. */
  server?: PostgresServer;
}

/** A fresh, uniquely named PostgreSQL database URL (created on first connect, dropped by \`drop\`). */
export function tempPostgres(prefix: string, options: TempPostgresOptions = {}): { url: string; drop: () => Promise<void> } {
  const u = new URL(options.server === 'second' ? secondPostgresUrl() : services.postgres);
  u.pathname = `/t_${prefix.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  const url = u.toString();
  return { url, drop: () => dropPostgresDatabase(url) };
}

/** A store backend the shared contract suites run over. */
export interface Backend {
  name: 'sqlite' | 'postgres';
  /** A new, empty store location. */
  location: () => Promise<StoreLocation>;
  /** Drops what \`location\` created. */
  cleanup: () => Promise<void>;
}

/** SQLite in memory, or a fresh database on real PostgreSQL (which must be reachable). */
export function storeBackend(name: Backend['name'], prefix: string): Backend {
  if (name === 'sqlite') return { name, location: async () => ({ sqlitePath: ':memory:' }), cleanup: async () => {} };
  const created: Array<() => Promise<void>> = [];
  return {
    name,
    location: async () => {
      await requireService('postgres');
      const db = tempPostgres(prefix);
      created.push(db.drop);
      return { postgresUrl: db.url };
    },
    cleanup: async () => {
      await Promise.all(created.splice(0).map((drop) => drop()));
    },
  };
}
