// The second PostgreSQL server (TEST_POSTGRES_URL_2, port 5433) that sharding tests put a shard on:
// tempPostgres({ server: 'second' }) creates its database there, not on the first server, and drops it.
import pg from 'pg';
import { requireSecondPostgres, requireService, secondPostgresUrl, services, tempPostgres } from '../src/services';

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

async function ensureDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  await query(new URL('/postgres', url).toString(), `create database "${name}"`);
}

async function databaseExists(serverUrl: string, name: string): Promise<boolean> {
  const rows = await query<{ n: number }>(serverUrl, `select count(*)::int as n from pg_database where datname = '${name}'`);
  return rows[0]?.n === 1;
}

beforeAll(async () => {
  await requireService('postgres');
  await requireSecondPostgres();
});

it('creates a temp database on the second server (port 5433), not the first (5432), and drops it', async () => {
  const first = tempPostgres('second_pg_first');
  const second = tempPostgres('second_pg', { server: 'second' });
  const secondName = new URL(second.url).pathname.slice(1);
  try {
    await ensureDatabase(first.url);
    await ensureDatabase(second.url);
    expect(await query<{ port: string }>(second.url, 'show port')).toEqual([{ port: '5433' }]);
    expect(await query<{ port: string }>(first.url, 'show port')).toEqual([{ port: '5432' }]);
    expect(await databaseExists(secondPostgresUrl(), secondName)).toBe(true);
    expect(await databaseExists(services.postgres, secondName)).toBe(false);
  } finally {
    await second.drop();
    await first.drop();
  }
  expect(await databaseExists(secondPostgresUrl(), secondName)).toBe(false);
});
