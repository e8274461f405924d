import { testTelemetry } from '@shop/testing';
import { MemoryBroker, MemoryBus, defaultRetryDelayMs, isPermanentError, parseEnvelope } from '../src/bus-memory';
import { PermanentError } from '../src/types';
import { busContract, testEvent, waitFor } from './bus-suite';

// One broker for the suite, as the embedded mode shares one between its services: every bus
// made here is another "process" on it.
const broker = new MemoryBroker();

busContract('memory', async (service, telemetry) => new MemoryBus({ service, telemetry, broker }), {
  publishRaw: async (type, body) => void broker.publishRaw(type, body),
});

describe('MemoryBus', () => {
  it('keeps each bus to a broker of its own unless one is shared', async () => {
    const telemetry = testTelemetry('memory-own');
    const a = new MemoryBus({ service: 'a', telemetry });
    const b = new MemoryBus({ service: 'b', telemetry });
    const seen: string[] = [];
    await b.subscribe({ group: 'own-b', types: ['Own'], handler: async (e) => void seen.push(e.id) });
    await a.publish([testEvent('Own', 'x', 1)]);
    const mine = testEvent('Own', 'x', 2);
    await b.publish([mine]);
    await waitFor(() => seen.length === 1, 'the event published on the same broker');
    expect(seen).toEqual([mine.id]);
    await Promise.all([a.close(), b.close()]);
  });

  it("hands the handler a copy, never the publisher's object", async () => {
    const bus = new MemoryBus({ service: 'copy', telemetry: testTelemetry('copy') });
    const received: unknown[] = [];
    await bus.subscribe({ group: 'copy', types: ['Copied'], handler: async (e) => void received.push(e.payload) });
    const event = testEvent('Copied', 'x', 1, { n: 1 });
    await bus.publish([event]);
    event.payload.n = 2;
    await waitFor(() => received.length === 1, 'the event');
    expect(received).toEqual([{ n: 1 }]);
    await bus.close();
  });
});

describe('delivery helpers', () => {
  it('backs off 50 ms doubling per attempt, at most 2 s', () => {
    expect(range(1, 8).map(defaultRetryDelayMs)).toEqual([50, 100, 200, 400, 800, 1600, 2000, 2000]);
  });

  it('tells a PermanentError by class or by name', () => {
    expect(isPermanentError(new PermanentError('x'))).toBe(true);
    expect(isPermanentError(Object.assign(new Error('x'), { name: 'PermanentError' }))).toBe(true);
    expect(isPermanentError({ name: 'PermanentError', message: 'plain object' })).toBe(true);
    expect(isPermanentError(new Error('x'))).toBe(false);
    expect(isPermanentError('PermanentError')).toBe(false);
    expect(isPermanentError(null)).toBe(false);
  });

  it('reads an envelope, and says why a body is not one', () => {
    const event = testEvent('T', 'a', 1, { k: 'v' });
    expect(parseEnvelope(JSON.stringify(event))).toEqual({ ok: true, event });
    expect(parseEnvelope('[]', 'T')).toMatchObject({
      ok: false,
      error: 'malformed message: not an EventEnvelope object',
      partial: { type: 'T' },
    });
    expect(parseEnvelope('null')).toMatchObject({ ok: false });
    expect(parseEnvelope(JSON.stringify({ ...event, aggregateVersion: 1.5 }))).toMatchObject({
      ok: false,
      error: 'malformed message: aggregateVersion must be an integer >= 1',
    });
    expect(parseEnvelope(JSON.stringify({ ...event, schemaVersion: '1' }))).toMatchObject({
      ok: false,
      error: 'malformed message: schemaVersion must be an integer >= 1',
    });
    expect(parseEnvelope(JSON.stringify({ ...event, id: '' }))).toMatchObject({
      ok: false,
      partial: { id: '', aggregateId: 'a', payload: { k: 'v' } },
    });
  });
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
