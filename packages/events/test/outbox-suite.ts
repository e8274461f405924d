import { type Backend, testTelemetry } from '@shop/testing';
import { metricValue } from '@shop/telemetry';
import { type Kysely, type Store, openStore } from '@shop/store';
import { type Bus, type EventEnvelope, OutboxRelay, appendEvents, eventMigrations, eventTables, idempotentConsumer } from '../src';

/** A bus that records what it was asked to publish; `fail` makes publish reject, `slowMs` delays it. */
function recordingBus() {
  const published: EventEnvelope[] = [];
  const control = { fail: false, slowMs: 0 };
  const bus: Bus = {
    kind: 'memory',
    async publish(events) {
      if (control.slowMs) await new Promise((r) => setTimeout(r, control.slowMs));
      if (control.fail) throw new Error('broker unreachable');
      published.push(...events);
    },
    subscribe: async () => ({ close: async () => {} }),
    deadLetters: async () => [],
    redrive: async () => 0,
    ready: async () => !control.fail,
    close: async () => {},
  };
  return { bus, published, control };
}

interface ItemsDB {
  items: { id: string; name: string };
}

/** The outbox and inbox contract, the same on SQLite and PostgreSQL. */
export function outboxContract(backend: Backend): void {
  describe(`outbox and inbox on ${backend.name}`, () => {
    const telemetry = testTelemetry('orders');
    let store: Store<ItemsDB>;
    const write = (id: string, name: string, fail = false) =>
      store.db.transaction().execute(async (trx) => {
        await trx
          .insertInto('items')
          .values({ id, name })
          .onConflict((oc) => oc.column('id').doUpdateSet({ name }))
          .execute();
        await appendEvents(trx as unknown as Kysely<never>, 'orders', [{ type: 'ItemSaved', aggregateId: id, payload: { name } }]);
        if (fail) throw new Error('rolled back on purpose');
      });

    beforeAll(async () => {
      store = await openStore<ItemsDB>({ service: 'orders', telemetry, ...(await backend.location()) });
      await store.migrate({
        ...eventMigrations,
        '0001_items': {
          up: async (db) =>
            void (await db.schema
              .createTable('items')
              .addColumn('id', 'text', (c) => c.primaryKey())
              .addColumn('name', 'text')
              .execute()),
        },
      });
    });
    afterAll(async () => {
      await store?.close();
      await backend.cleanup();
    });

    it('commits events with the state change, or neither, versioning each aggregate', async () => {
      await write('a', 'one');
      await write('a', 'two');
      await write('b', 'one');
      await expect(write('a', 'three', true)).rejects.toThrow('rolled back');
      const rows = await eventTables(store.db as Kysely<unknown>)
        .selectFrom('outbox')
        .selectAll()
        .orderBy('position')
        .execute();
      expect(rows.map((r) => [r.aggregate_id, Number(r.aggregate_version), (JSON.parse(r.payload) as { name: string }).name])).toEqual([
        ['a', 1, 'one'],
        ['a', 2, 'two'],
        ['b', 1, 'one'],
      ]);
    });

    it('relays pending rows in order, marks them only once confirmed, and keeps them while the broker is down', async () => {
      const { bus, published, control } = recordingBus();
      const relay = new OutboxRelay({ store: store as Store<unknown>, bus, telemetry, batchSize: 2 });
      control.fail = true;
      await expect(relay.runOnce()).rejects.toThrow('broker unreachable');
      expect(published).toHaveLength(0);
      control.fail = false;
      while ((await relay.runOnce()) > 0);
      expect(published.map((e) => `${e.aggregateId}${e.aggregateVersion}`)).toEqual(['a1', 'a2', 'b1']);
      expect(await metricValue(telemetry.metrics.outboxPending, { service: 'orders' })).toBe(0);
      expect(await relay.runOnce()).toBe(0);
      expect(published).toHaveLength(3);
      // Relay polling is background work, not what a request costs.
      expect(await metricValue(telemetry.metrics.storeBackgroundQueries, { service: 'orders' })).toBeGreaterThan(0);
    });

    it('never publishes a row twice when relays run at once', async () => {
      for (let i = 0; i < 30; i++) await write(`c${i % 3}`, `n${i}`);
      const { bus, published, control } = recordingBus();
      control.slowMs = 20;
      const relays = [1, 2, 3].map(() => new OutboxRelay({ store: store as Store<unknown>, bus, telemetry, batchSize: 10 }));
      for (let round = 0; round < 10; round++) await Promise.all(relays.map((r) => r.runOnce().catch(() => 0)));
      expect(published).toHaveLength(30);
      expect(new Set(published.map((e) => e.id)).size).toBe(30);
      for (const id of ['c0', 'c1', 'c2']) {
        const versions = published.filter((e) => e.aggregateId === id).map((e) => e.aggregateVersion);
        expect(versions).toEqual([...versions].sort((x, y) => x - y));
      }
    });

    it('applies an event once, whatever the redeliveries, and rejects unknown versions permanently', async () => {
      const applied: string[] = [];
      const consume = idempotentConsumer({
        store: store as Store<unknown>,
        telemetry,
        handlers: {
          ItemSaved: {
            versions: [1],
            handle: async (trx, event) => {
              applied.push(event.id);
              await (trx as unknown as Kysely<ItemsDB>)
                .insertInto('items')
                .values({ id: `copy-${event.aggregateId}`, name: String(event.payload.name) })
                .onConflict((oc) => oc.column('id').doUpdateSet({ name: String(event.payload.name) }))
                .execute();
            },
          },
        },
      });
      const event: EventEnvelope = {
        id: `e-${Date.now()}`,
        type: 'ItemSaved',
        source: 'orders',
        aggregateId: 'z',
        aggregateVersion: 1,
        occurredAt: new Date().toISOString(),
        schemaVersion: 1,
        payload: { name: 'zed' },
      };
      await consume(event);
      await consume(event);
      await consume({ ...event });
      expect(applied).toEqual([event.id]);
      await expect(consume({ ...event, id: 'v2', schemaVersion: 2 })).rejects.toMatchObject({ name: 'PermanentError' });
      await expect(consume({ ...event, id: 'unknown-type', type: 'Nope' })).rejects.toMatchObject({ name: 'PermanentError' });
    });

    it('applies a batch in one transaction: new events once (a repeat inside the batch too), known ones skipped, all or nothing', async () => {
      const applied: string[] = [];
      let failOn: string | undefined;
      const consume = idempotentConsumer({
        store: store as Store<unknown>,
        telemetry,
        handlers: {
          ItemSaved: {
            versions: [1],
            handle: async (trx, event) => {
              if (event.id === failOn) throw new Error('transient in a batch');
              applied.push(event.id);
              await (trx as unknown as Kysely<ItemsDB>)
                .insertInto('items')
                .values({ id: `batch-${event.id}`, name: String(event.payload.name) })
                .execute();
            },
          },
        },
      });
      const stamp = Date.now();
      const ev = (n: number): EventEnvelope => ({
        id: `b-${stamp}-${n}`,
        type: 'ItemSaved',
        source: 'orders',
        aggregateId: 'bb',
        aggregateVersion: n,
        occurredAt: new Date().toISOString(),
        schemaVersion: 1,
        payload: { name: `n${n}` },
      });
      await consume(ev(1));
      await consume.batch([ev(1), ev(2), ev(3), ev(2), ev(4)]);
      expect(applied).toEqual([ev(1).id, ev(2).id, ev(3).id, ev(4).id]);
      const copies = await store.db.selectFrom('items').select('id').where('id', 'like', `batch-b-${stamp}-%`).orderBy('id').execute();
      expect(copies.map((r) => r.id)).toEqual([1, 2, 3, 4].map((n) => `batch-${ev(n).id}`));

      // A failure rolls back the whole batch, inbox rows included: a retry applies every event.
      failOn = ev(6).id;
      await expect(consume.batch([ev(5), ev(6), ev(7)])).rejects.toThrow('transient in a batch');
      const inbox = () =>
        eventTables(store.db as Kysely<unknown>)
          .selectFrom('inbox')
          .select('event_id')
          .where('event_id', 'like', `b-${stamp}-%`)
          .execute();
      expect(await inbox()).toHaveLength(4);
      failOn = undefined;
      applied.length = 0;
      await consume.batch([ev(5), ev(6), ev(7)]);
      expect(applied).toEqual([ev(5).id, ev(6).id, ev(7).id]);
      expect(await inbox()).toHaveLength(7);
      // An unreadable event makes the batch a PermanentError before anything is written.
      await expect(consume.batch([ev(8), { ...ev(9), schemaVersion: 3 }])).rejects.toMatchObject({ name: 'PermanentError' });
      expect(await inbox()).toHaveLength(7);
    });

    it('rolls the inbox back with a failed handler, so a retry applies it', async () => {
      let attempts = 0;
      const consume = idempotentConsumer({
        store: store as Store<unknown>,
        telemetry,
        handlers: {
          ItemSaved: {
            versions: [1],
            handle: async () => {
              attempts++;
              if (attempts === 1) throw new Error('transient');
            },
          },
        },
      });
      const event: EventEnvelope = {
        id: `f-${Date.now()}`,
        type: 'ItemSaved',
        source: 'orders',
        aggregateId: 'y',
        aggregateVersion: 1,
        occurredAt: new Date().toISOString(),
        schemaVersion: 1,
        payload: {},
      };
      await expect(consume(event)).rejects.toThrow('transient');
      await consume(event);
      await consume(event);
      expect(attempts).toBe(2);
    });
  });
}
