import { type Backend, testTelemetry } from '@shop/testing';
import { metricValue } from '@shop/telemetry';
import { type Migration, type Store, newestPerParent, openStore, sql } from '../src';

interface Child {
  id: string;
  parent_id: string;
  created_at: string;
}

interface DB {
  items: { id: string; qty: number };
  children: Child;
}

const migrations: Record<string, Migration> = {
  '0001_items': {
    up: async (db) => {
      await db.schema
        .createTable('items')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('qty', 'integer', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('children')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('parent_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('children_newest').on('children').columns(['parent_id', 'created_at', 'id']).execute();
    },
  },
};

/** The store contract: the same behaviour on SQLite and on PostgreSQL. */
export function storeContract(backend: Backend): void {
  describe(`store on ${backend.name}`, () => {
    const telemetry = testTelemetry('contract');
    let store: Store<DB>;
    const queries = () => metricValue(telemetry.metrics.storeQueries, { service: 'contract' });

    beforeAll(async () => {
      store = await openStore<DB>({ service: 'contract', telemetry, ...(await backend.location()) });
      await store.migrate(migrations);
    });
    afterAll(async () => {
      await store?.close();
      await backend.cleanup();
    });

    it('reports its dialect and answers ping', async () => {
      expect(store.dialect).toBe(backend.name);
      expect(await store.ping()).toBe(true);
    });

    it('runs migrations once: a second migrate is a no-op', async () => {
      await store.migrate(migrations);
      await store.db.insertInto('items').values({ id: 'a', qty: 1 }).execute();
      const rows = await store.db.selectFrom('items').selectAll().execute();
      expect(rows).toEqual([{ id: 'a', qty: 1 }]);
    });

    it('counts every round trip in store_queries_total', async () => {
      const before = await queries();
      await store.db.selectFrom('items').selectAll().execute();
      await store.db.selectFrom('items').select('id').where('id', 'in', ['a', 'b', 'c']).execute();
      expect((await queries()) - before).toBe(2);
    });

    it('answers a repeated query after a schema change with the new columns, and streams while the same query runs', async () => {
      // SQLite keeps prepared statements by SQL text: neither a schema change nor a statement still
      // iterating may hand back a stale or busy one.
      await store.db.insertInto('items').values({ id: 'stream-1', qty: 5 }).execute();
      const first = await store.db.selectFrom('items').selectAll().where('id', '=', 'stream-1').execute();
      expect(first).toEqual([{ id: 'stream-1', qty: 5 }]);
      await sql`alter table items add column note text`.execute(store.db);
      const again = await store.db.selectFrom('items').selectAll().where('id', '=', 'stream-1').execute();
      expect(again).toEqual([{ id: 'stream-1', qty: 5, note: null }]);
      await sql`alter table items drop column note`.execute(store.db);
      if (store.dialect === 'sqlite') {
        const seen: unknown[] = [];
        for await (const row of store.db.selectFrom('items').selectAll().where('id', '=', 'stream-1').stream()) seen.push(row);
        expect(seen).toEqual([{ id: 'stream-1', qty: 5 }]);
      }
      expect(await store.db.selectFrom('items').selectAll().where('id', '=', 'stream-1').execute()).toEqual([{ id: 'stream-1', qty: 5 }]);
      await store.db.deleteFrom('items').where('id', '=', 'stream-1').execute();
    });

    it('rolls a failed transaction back entirely', async () => {
      // Compare the message, not the class: better-sqlite3's native addon keeps the error class of the
      // first jest module registry that loaded it, so `instanceof Error` can fail across test files.
      const outcome = await store.db
        .transaction()
        .execute(async (trx) => {
          await trx.insertInto('items').values({ id: 'b', qty: 2 }).execute();
          await trx.insertInto('items').values({ id: 'a', qty: 3 }).execute(); // duplicate key
        })
        .then(
          () => 'committed',
          (err: unknown) => String((err as { message?: unknown }).message),
        );
      expect(outcome).toMatch(/unique|duplicate/i);
      const ids = (await store.db.selectFrom('items').select('id').execute()).map((r) => r.id);
      expect(ids).toEqual(['a']);
    });

    it('returns counts as numbers on both dialects', async () => {
      const row = await store.db
        .selectFrom('items')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      expect(row.n).toBe(1);
      const raw = await sql<{ one: number }>`select 1 as one`.execute(store.db);
      expect(raw.rows[0]?.one).toBe(1);
    });

    it('reads the newest n children of each parent in one round trip: ties broken by id, lists in the order asked', async () => {
      // Parent a: 50 children at 25 distinct times (two per time), b: 3, c: none.
      const rows: Child[] = [
        ...Array.from({ length: 50 }, (_, i) => ({
          id: `a-${String(i).padStart(2, '0')}`,
          parent_id: 'a',
          created_at: `2026-01-01T00:00:${String(Math.floor(i / 2)).padStart(2, '0')}Z`,
        })),
        ...Array.from({ length: 3 }, (_, i) => ({ id: `b-${i}`, parent_id: 'b', created_at: `2026-02-0${i + 1}T00:00:00Z` })),
      ];
      await store.db.insertInto('children').values(rows).execute();
      const expected = (parent: string, n: number) =>
        rows
          .filter((r) => r.parent_id === parent)
          .sort((x, y) => (x.created_at === y.created_at ? (x.id < y.id ? 1 : -1) : x.created_at < y.created_at ? 1 : -1))
          .slice(0, n)
          .map((r) => r.id);
      const before = await queries();
      const lists = await newestPerParent<DB, Child>(store, 'children', 'parent_id', ['c', 'a', 'b', 'a'], 5);
      expect((await queries()) - before).toBe(1);
      expect(lists.map((list) => list.map((r) => r.id))).toEqual([[], expected('a', 5), expected('b', 5), expected('a', 5)]);
      expect(lists[1]?.map((r) => r.id)).toEqual(['a-49', 'a-48', 'a-47', 'a-46', 'a-45']);
      expect(lists[2]?.[0]).toEqual({ id: 'b-2', parent_id: 'b', created_at: '2026-02-03T00:00:00Z' });
      // Nothing asked, nothing read.
      expect(await newestPerParent<DB, Child>(store, 'children', 'parent_id', ['a'], 0)).toEqual([[]]);
      expect(await newestPerParent<DB, Child>(store, 'children', 'parent_id', [], 5)).toEqual([]);
      expect((await queries()) - before).toBe(1);
    });

    it('names the failing migration', async () => {
      await expect(
        store.migrate({ ...migrations, '0002_broken': { up: async (db) => void (await sql`this is not sql`.execute(db)) } }),
      ).rejects.toThrow(/Migration 0002_broken failed/);
    });
  });
}
