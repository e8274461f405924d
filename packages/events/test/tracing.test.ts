// The trace of a write through the outbox, the relay and a consumer, at the level of this package
// (SQLite, the in-process bus): the row keeps the writer's W3C context, the relay's publish span
// sits under it, and the consumer's span under the publish. test/tracing.e2e.test.ts runs the same
// over HTTP in both modes; this one pins the pieces and the hostile cases.
import { type Kysely, type Store, openStore } from '@shop/store';
import { eventually, testTelemetry } from '@shop/testing';
import { memorySpans, shutdownTracing, startTracing, tracer, tracingEnabled } from '@shop/tracing';
import { MemoryBroker, MemoryBus, OutboxRelay, appendEvents, eventMigrations, eventTables } from '../src';
import { parseEnvelope } from '../src/bus-memory';

interface ItemsDB {
  items: { id: string };
}

describe('trace context through the outbox and the bus', () => {
  const telemetry = testTelemetry('items');
  let store: Store<ItemsDB>;
  const write = (id: string) =>
    store.db.transaction().execute(async (trx) => {
      await trx.insertInto('items').values({ id }).execute();
      await appendEvents(trx as unknown as Kysely<never>, 'items', [{ type: 'ItemSaved', aggregateId: id, payload: {} }]);
    });
  const traceContextOf = async (id: string) =>
    (
      await eventTables(store.db as Kysely<unknown>)
        .selectFrom('outbox')
        .select('trace_context')
        .where('aggregate_id', '=', id)
        .executeTakeFirstOrThrow()
    ).trace_context;

  beforeAll(async () => {
    store = await openStore<ItemsDB>({ service: 'items', telemetry, sqlitePath: ':memory:' });
    await store.migrate({
      ...eventMigrations,
      '0001_items': {
        up: async (db) =>
          void (await db.schema
            .createTable('items')
            .addColumn('id', 'text', (c) => c.primaryKey())
            .execute()),
      },
    });
  });
  afterAll(async () => {
    await shutdownTracing();
    await store?.close();
  });

  it('keeps no trace context with tracing off', async () => {
    expect(tracingEnabled()).toBe(false);
    await write('off');
    expect(await traceContextOf('off')).toBeNull();
  });

  it('carries the writing request trace to the consumer: append, then publish, then process', async () => {
    const memory = memorySpans();
    startTracing({ service: 'items', spanProcessors: memory.spanProcessors });
    const broker = new MemoryBroker();
    const bus = new MemoryBus({ service: 'items', telemetry, broker });
    const seen: string[] = [];
    const subscription = await bus.subscribe({
      group: 'watchers',
      types: ['ItemSaved'],
      handler: async (event) => {
        if (event.aggregateId !== 'on') return;
        seen.push(tracer.startSpan('probe').spanContext().traceId);
      },
    });
    const relay = new OutboxRelay({ store: store as Store<unknown>, bus, telemetry });
    let requestTrace = '';
    await tracer.startActiveSpan('request', async (span) => {
      requestTrace = span.spanContext().traceId;
      await write('on');
      span.end();
    });
    expect(JSON.parse((await traceContextOf('on')) ?? '{}')).toEqual({ traceparent: expect.stringContaining(requestTrace) });
    while ((await relay.runOnce()) > 0);
    await eventually(
      async () => seen.length,
      (n) => n > 0,
    );
    await subscription.close();
    await bus.close();

    expect(seen).toEqual([requestTrace]);
    const spans = memory.finished().filter((s) => s.traceId === requestTrace);
    const named = (name: string) => spans.filter((s) => s.name === name);
    const [request] = named('request');
    const [append] = named('items outbox append');
    const [publish] = named('items publish ItemSaved');
    const [handled] = named('watchers process ItemSaved');
    expect([request, append, publish, handled].every(Boolean)).toBe(true);
    expect(append!.parentSpanId).toBe(request!.spanId);
    expect(publish!.parentSpanId).toBe(append!.spanId);
    expect(publish!.kind).toBe('producer');
    expect(handled!.parentSpanId).toBe(publish!.spanId);
    expect(handled!.kind).toBe('consumer');
    // SQLite has no maintained instrumentation: the store's own spans, under the append.
    const inserts = spans.filter((s) => s.parentSpanId === append!.spanId && s.attributes['db.system.name'] === 'sqlite');
    expect(inserts.map((s) => s.name)).toContain('INSERT items');
  });

  it('drops a trace context that is not one, and still delivers the event', () => {
    const envelope = {
      id: 'e1',
      type: 'ItemSaved',
      source: 'items',
      aggregateId: 'x',
      aggregateVersion: 1,
      occurredAt: new Date().toISOString(),
      schemaVersion: 1,
      payload: {},
    };
    for (const traceContext of [
      'traceparent',
      [1, 2],
      { traceparent: 5 },
      { traceparent: 'x'.repeat(10_000) },
      Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, 'v'])),
    ]) {
      const parsed = parseEnvelope(JSON.stringify({ ...envelope, traceContext }));
      expect(parsed.ok).toBe(true);
      if (parsed.ok) expect(parsed.event.traceContext).toBeUndefined();
    }
    const kept = parseEnvelope(
      JSON.stringify({ ...envelope, traceContext: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } }),
    );
    expect(kept.ok && kept.event.traceContext).toEqual({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
  });
});
