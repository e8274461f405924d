import { type Kysely, type Store, openStore } from '@shop/store';
import { type Backend, testTelemetry } from '@shop/testing';
import {
  ConcurrencyError,
  EventStore,
  type Projection,
  ProjectionRunner,
  type RecordedEvent,
  eventStoreMigrations,
  eventStoreTables,
} from '../src';

interface CountsDB {
  stream_counts: { stream_id: string; events: number; last_type: string; last_version: number };
}

/** A small read model: events per stream. Idempotent by the version guard. */
const counts: Projection = {
  name: 'stream_counts',
  async apply(trx, event) {
    const db = trx as unknown as Kysely<CountsDB>;
    const row = { stream_id: event.streamId, events: 1, last_type: event.type, last_version: event.version };
    await db
      .insertInto('stream_counts')
      .values(row)
      .onConflict((oc) =>
        oc
          .column('stream_id')
          .doUpdateSet((eb) => ({ events: eb('stream_counts.events', '+', 1), last_type: row.last_type, last_version: row.last_version }))
          .where('stream_counts.last_version', '<', row.last_version),
      )
      .execute();
  },
  async reset(trx) {
    await (trx as unknown as Kysely<CountsDB>).deleteFrom('stream_counts').execute();
  },
};

const countsMigration = {
  '0001_counts': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('stream_counts')
        .addColumn('stream_id', 'text', (c) => c.primaryKey())
        .addColumn('events', 'integer', (c) => c.notNull())
        .addColumn('last_type', 'text', (c) => c.notNull())
        .addColumn('last_version', 'integer', (c) => c.notNull())
        .execute();
    },
  },
};

const conflict = (p: Promise<unknown>) =>
  p.then(
    () => 'appended' as const,
    (err: unknown) => {
      if (err instanceof ConcurrencyError) return 'conflict' as const;
      throw err;
    },
  );

/** The event store contract, the same on SQLite and PostgreSQL. */
export function eventStoreContract(backend: Backend): void {
  describe(`event store on ${backend.name}`, () => {
    const telemetry = testTelemetry('es-test');
    let store: Store<CountsDB>;
    let clock = Date.UTC(2025, 0, 1);
    let events: EventStore;
    const newRunner = () => new ProjectionRunner({ store: store as Store<unknown>, events, projections: [counts], batchSize: 7 });
    const dump = () => store.db.selectFrom('stream_counts').selectAll().orderBy('stream_id').execute();
    const allRows = () =>
      eventStoreTables(store.db as Kysely<unknown>)
        .selectFrom('es_events')
        .selectAll()
        .orderBy('position')
        .execute();

    beforeAll(async () => {
      store = await openStore<CountsDB>({ service: 'es-test', telemetry, ...(await backend.location()) });
      await store.migrate({ ...eventStoreMigrations, ...countsMigration });
      events = new EventStore(store as Store<unknown>, { now: () => new Date(clock) });
    });
    afterAll(async () => {
      await store?.close();
      await backend.cleanup();
    });

    it('appends at consecutive versions with metadata, partition key and rising global positions', async () => {
      const first = await events.append('s-1', [{ type: 'Opened', data: { n: 1 } }], {
        expectedVersion: 0,
        partitionKey: 'u1',
        metadata: { correlationId: 'req-1', causationId: 'cmd-1' },
      });
      expect(first.version).toBe(1);
      const second = await events.append(
        's-1',
        [
          { type: 'Moved', data: { n: 2 } },
          { type: 'Moved', data: { n: 3 }, metadata: { causationId: 'cmd-2' } },
        ],
        {
          expectedVersion: 1,
          partitionKey: 'u1',
          metadata: { correlationId: 'req-2', causationId: 'cmd-x' },
        },
      );
      expect(second.version).toBe(3);
      const stream = await events.readStream('s-1');
      expect(stream.map((e) => [e.version, e.type, e.data.n, e.partitionKey])).toEqual([
        [1, 'Opened', 1, 'u1'],
        [2, 'Moved', 2, 'u1'],
        [3, 'Moved', 3, 'u1'],
      ]);
      expect(stream[0]!.metadata).toEqual({ correlationId: 'req-1', causationId: 'cmd-1' });
      // An event's own metadata wins over the append's.
      expect(stream[2]!.metadata).toEqual({ correlationId: 'req-2', causationId: 'cmd-2' });
      expect(stream[1]!.position).toBeGreaterThan(stream[0]!.position);
      expect(stream[2]!.position).toBeGreaterThan(stream[1]!.position);
      expect(new Set(stream.map((e) => e.eventId)).size).toBe(3);
      expect(await events.streamVersion('s-1')).toBe(3);
      expect(await events.streamVersion('nothing')).toBe(0);
    });

    it('refuses a stale or a future expected version with CONCURRENCY_CONFLICT and writes nothing', async () => {
      const before = (await allRows()).length;
      const stale = events.append('s-1', [{ type: 'Moved', data: {} }], { expectedVersion: 2 });
      await expect(stale).rejects.toBeInstanceOf(ConcurrencyError);
      await expect(events.append('s-1', [{ type: 'Moved', data: {} }], { expectedVersion: 2 })).rejects.toMatchObject({
        code: 'CONCURRENCY_CONFLICT',
        expectedVersion: 2,
        actualVersion: 3,
      });
      await expect(events.append('s-1', [{ type: 'Moved', data: {} }], { expectedVersion: 9 })).rejects.toMatchObject({
        expectedVersion: 9,
        actualVersion: 3,
      });
      // 0 means "a new stream": s-1 exists.
      await expect(events.append('s-1', [{ type: 'Opened', data: {} }], { expectedVersion: 0 })).rejects.toBeInstanceOf(ConcurrencyError);
      expect((await allRows()).length).toBe(before);
      // 'any' skips the check.
      expect((await events.append('s-1', [{ type: 'Moved', data: {} }], { expectedVersion: 'any' })).version).toBe(4);
      await expect(events.append('s-1', [], { expectedVersion: -1 })).rejects.toThrow(/expectedVersion/);
    });

    it('the unique (stream, version) index refuses a second event at a version, whoever writes it', async () => {
      const [row] = await allRows();
      const { position: _position, ...copy } = row!;
      await expect(
        eventStoreTables(store.db as Kysely<unknown>)
          .insertInto('es_events')
          .values({ ...copy, event_id: 'another-id' })
          .execute(),
        // Match the driver's code, not toThrow: better-sqlite3's native addon keeps the SqliteError class
        // of the first jest test file that loaded it in a worker, and in later files that class is
        // another realm's Error, which toThrow does not count as thrown.
      ).rejects.toMatchObject({ code: backend.name === 'postgres' ? '23505' : 'SQLITE_CONSTRAINT_UNIQUE' });
      expect((await allRows()).filter((r) => r.event_id === 'another-id')).toEqual([]);
    });

    it('of 20 racing appends at the same expected version exactly one wins; retries take each next version once', async () => {
      await events.append('race', [{ type: 'Opened', data: {} }], { expectedVersion: 0 });
      const writers = Array.from({ length: 20 }, (_, i) => i);
      const outcomes = await Promise.all(
        writers.map((i) => conflict(events.append('race', [{ type: 'Wrote', data: { writer: i } }], { expectedVersion: 1 }))),
      );
      expect(outcomes.filter((o) => o === 'appended')).toHaveLength(1);
      expect(outcomes.filter((o) => o === 'conflict')).toHaveLength(19);
      const winner = outcomes.indexOf('appended');
      // Every loser reloads and retries until it gets in.
      await Promise.all(
        writers
          .filter((i) => i !== winner)
          .map(async (i) => {
            for (;;) {
              const version = await events.streamVersion('race');
              if (
                (await conflict(events.append('race', [{ type: 'Wrote', data: { writer: i } }], { expectedVersion: version }))) ===
                'appended'
              )
                return;
            }
          }),
      );
      const stream = await events.readStream('race');
      expect(stream.map((e) => e.version)).toEqual(Array.from({ length: 21 }, (_, i) => i + 1));
      expect(
        stream
          .slice(1)
          .map((e) => e.data.writer)
          .sort((a, b) => Number(a) - Number(b)),
      ).toEqual(writers);
    });

    it('rolls the events back when the work in the same transaction fails (the outbox hook)', async () => {
      const before = await events.streamVersion('s-1');
      await expect(
        events.append('s-1', [{ type: 'Moved', data: {} }], {
          expectedVersion: before,
          inTransaction: async (_trx, recorded) => {
            expect(recorded.map((e) => e.version)).toEqual([before + 1]);
            throw new Error('outbox write failed');
          },
        }),
      ).rejects.toThrow('outbox write failed');
      expect(await events.streamVersion('s-1')).toBe(before);
    });

    it('reads a stream as of an instant; recorded times never go backwards with the position', async () => {
      const t = (s: number) => Date.UTC(2025, 1, 1, 0, 0, s);
      clock = t(10);
      await events.append('tt', [{ type: 'A', data: {} }], { expectedVersion: 0 });
      clock = t(20);
      await events.append('tt', [{ type: 'B', data: {} }], { expectedVersion: 1 });
      clock = t(30);
      await events.append('tt', [{ type: 'C', data: {} }], { expectedVersion: 2 });
      const asOf = async (s: number) =>
        (await events.readStream('tt', { recordedAtOrBefore: new Date(t(s)).toISOString() })).map((e) => e.type);
      expect(await asOf(9)).toEqual([]);
      expect(await asOf(10)).toEqual(['A']);
      expect(await asOf(25)).toEqual(['A', 'B']);
      expect(await asOf(30)).toEqual(['A', 'B', 'C']);
      expect((await events.readStream('tt', { toVersion: 2 })).map((e) => e.type)).toEqual(['A', 'B']);
      expect((await events.readStream('tt', { afterVersion: 1 })).map((e) => e.type)).toEqual(['B', 'C']);
      // The clock steps back 20 s: the next event is stamped no earlier than the last.
      clock = t(10);
      const [d] = (await events.append('tt', [{ type: 'D', data: {} }], { expectedVersion: 3 })).events;
      expect(d!.recordedAt).toBe(new Date(t(30)).toISOString());
      const all = await allRows();
      for (let i = 1; i < all.length; i++) expect(all[i]!.recorded_at >= all[i - 1]!.recorded_at).toBe(true);
      clock = Date.UTC(2025, 6, 1);
    });

    it('reads every stream from a global position in order, in pages', async () => {
      const all = await allRows();
      const paged: RecordedEvent[] = [];
      let after = 0;
      for (;;) {
        const page = await events.readAll(after, 4);
        if (page.length === 0) break;
        paged.push(...page);
        after = page.at(-1)!.position;
      }
      expect(paged.map((e) => e.position)).toEqual(all.map((r) => Number(r.position)));
      expect(await events.headPosition()).toBe(Number(all.at(-1)!.position));
      expect((await events.readStreams(['tt', 'none', 's-1'])).map((s) => s.length)).toEqual([4, 0, 4]);
    });

    it('projects from a stored checkpoint once per event, across restarts and concurrent catch-ups', async () => {
      const runner = newRunner();
      const total = (await allRows()).length;
      const applied = await Promise.all([runner.catchUp(), runner.catchUp(), runner.catchUp()]);
      // Three callers shared one pass: every event applied once.
      expect(applied).toEqual([total, total, total]);
      expect(await runner.catchUp()).toBe(0);
      const head = await events.headPosition();
      expect(await runner.checkpoints()).toEqual({ stream_counts: head });
      const byStream = Object.fromEntries((await dump()).map((r) => [r.stream_id, Number(r.events)]));
      expect(byStream).toMatchObject({ 's-1': 4, race: 21, tt: 4 });

      // A restarted process (a new runner) continues from the checkpoint.
      await events.append('s-2', [{ type: 'Opened', data: {} }], { expectedVersion: 0 });
      const restarted = newRunner();
      expect(await restarted.catchUp()).toBe(1);
      // Two runners racing (two replicas) still apply each event once.
      await Promise.all(
        Array.from({ length: 15 }, (_, i) => events.append(`many-${i % 3}`, [{ type: 'X', data: {} }], { expectedVersion: 'any' })),
      );
      const [a, b] = await Promise.all([runner.catchUp(), restarted.catchUp()]);
      expect(a + b).toBe(15);
      expect((await dump()).filter((r) => r.stream_id.startsWith('many-')).map((r) => Number(r.events))).toEqual([5, 5, 5]);
    });

    it('a failing projection moves no checkpoint and applies nothing of its batch', async () => {
      const before = await dump();
      await events.append('s-3', [{ type: 'Opened', data: {} }], { expectedVersion: 0 });
      let fail = true;
      const flaky: Projection = {
        name: 'stream_counts',
        apply: (trx, e) => (fail ? Promise.reject(new Error('projection bug')) : counts.apply(trx, e)),
        reset: counts.reset,
      };
      const runner = new ProjectionRunner({ store: store as Store<unknown>, events, projections: [flaky] });
      const checkpoint = (await runner.checkpoints()).stream_counts;
      await expect(runner.catchUp()).rejects.toThrow('projection bug');
      expect(await runner.checkpoints()).toEqual({ stream_counts: checkpoint });
      expect(await dump()).toEqual(before);
      fail = false;
      expect(await runner.catchUp()).toBe(1);
    });

    it('rebuilds from position zero to exactly the live read model, leaving the events untouched', async () => {
      const runner = newRunner();
      await runner.catchUp();
      const live = await dump();
      const rows = await allRows();
      const report = await runner.rebuild();
      expect(report).toMatchObject({ events: rows.length, position: Number(rows.at(-1)!.position) });
      expect(await dump()).toEqual(live);
      expect(await allRows()).toEqual(rows);
      expect(await runner.checkpoints()).toEqual({ stream_counts: report.position });
      // Projection rows tampered with are put right by a rebuild.
      await store.db.updateTable('stream_counts').set({ events: 999 }).execute();
      await runner.rebuild();
      expect(await dump()).toEqual(live);
    });
  });
}
