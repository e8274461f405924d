import pg from 'pg';
import { storeBackend, tempPostgres } from '@shop/testing';
import { ensurePostgresDatabase } from '../src';
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
