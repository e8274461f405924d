import pg from 'pg';
import { sql } from 'kysely';
import { storeBackend, tempPostgres, testTelemetry } from '@shop/testing';
import { ensurePostgresDatabase, openStore } from '../src';
import { storeContract } from './suite';

storeContract(storeBackend('postgres', 'store'));

describe('ensurePostgresDatabase', () => {
  it('creates a missing database once, and tolerates concurrent creators', async () => {
    const db = tempPostgres('ensure');
    try {
      await Promise.all([ensurePostgresDatabase(db.url), ensurePostgresDatabase(db.url), ensurePostgresDatabase(db.url)]);
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      const res = await client.query<{ name: string }>('select current_database() as name');
      await client.end();
      expect(res.rows[0]?.name).toBe(new URL(db.url).pathname.slice(1));
    } finally {
      await db.drop();
    }
  });
});

describe('a PostgreSQL connection cut under a running query', () => {
  it('fails that query and leaves the process up (pg emits an error on a client the pool has lent out)', async () => {
    const db = tempPostgres('cut');
    const store = await openStore<Record<string, never>>({
      postgresUrl: db.url,
      telemetry: testTelemetry('store-cut'),
      service: 'store-cut',
    });
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    try {
      const running = sql`select pg_sleep(30)`.execute(store.db);
      const name = new URL(db.url).pathname.slice(1);
      // Wait until the sleep is running, then cut its connection, as pg_terminate_backend does in the sharding test.
      for (let i = 0; i < 200; i++) {
        const found = await admin.query("select 1 from pg_stat_activity where datname = $1 and query like 'select pg_sleep%'", [name]);
        if (found.rowCount) break;
        await new Promise((resolve) => setImmediate(resolve));
      }
      await admin.query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and query like 'select pg_sleep%'", [
        name,
      ]);
      await expect(running).rejects.toThrow();
      // The store answers again once the pool has dropped the cut connection (a query sent in the
      // instant before pg notices the socket ended may still get it and fail: at most a few).
      let failures = 0;
      for (;;) {
        const answer = await sql<{ one: number }>`select 1 as one`.execute(store.db).then(
          (r) => r.rows,
          () => undefined,
        );
        if (answer) {
          expect(answer).toEqual([{ one: 1 }]);
          break;
        }
        expect(++failures).toBeLessThan(5);
        await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      await admin.end();
      await store.close();
      await db.drop();
    }
  });
});
