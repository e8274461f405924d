import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { type ConfirmChannel, connect } from 'amqplib';
import { requireService, services, startProxy, testTelemetry } from '@shop/testing';
import { type AmqpBusOptions, EVENTS_EXCHANGE, connectAmqpBus, deadLetterQueue, groupQueue } from '../src/bus-amqp';
import type { EventEnvelope } from '../src/types';
import { busContract, testEvent, waitFor } from './bus-suite';

const run = promisify(execFile);
const suffix = () => randomBytes(4).toString('hex');

beforeAll(() => requireService('amqp'));

/** A short-lived admin connection, to play a foreign publisher or tidy up. */
async function withAdmin<T>(op: (channel: ConfirmChannel) => Promise<T>): Promise<T> {
  const conn = await connect(services.amqp);
  conn.on('error', () => undefined);
  try {
    const channel = await conn.createConfirmChannel();
    channel.on('error', () => undefined);
    return await op(channel);
  } finally {
    await conn.close();
  }
}

async function deleteGroups(groups: string[]): Promise<void> {
  if (groups.length === 0) return;
  await withAdmin(async (channel) => {
    for (const g of groups) {
      await channel.deleteQueue(groupQueue(g));
      await channel.deleteQueue(deadLetterQueue(g));
    }
  });
}

busContract(
  'amqp',
  (service, telemetry) => connectAmqpBus({ url: services.amqp, service, telemetry, connectionName: `bus-contract-${service}` }),
  {
    publishRaw: (type, body) =>
      withAdmin(async (channel) => {
        await channel.assertExchange(EVENTS_EXCHANGE, 'topic', { durable: true });
        await new Promise<void>((resolve, reject) => {
          channel.publish(EVENTS_EXCHANGE, type, Buffer.from(body), { persistent: true }, (err: unknown) =>
            err ? reject(err instanceof Error ? err : new Error('the broker refused the message', { cause: err })) : resolve(),
          );
        });
      }),
    cleanup: deleteGroups,
  },
);

/** Force-closes, on the broker, the connections whose connection_name starts with `prefix`; returns how many. */
async function closeConnectionsNamed(prefix: string): Promise<number> {
  const { stdout } = await run('rabbitmqctl', ['list_connections', '-q', '--no-table-headers', 'pid', 'client_properties'], {
    timeout: 30_000,
  });
  const pids = stdout
    .split('\n')
    .filter((line) => line.includes(`{"connection_name","${prefix}`))
    .map((line) => line.split('\t')[0] as string);
  await Promise.all(pids.map((pid) => run('rabbitmqctl', ['close_connection', '-q', pid, 'bus fault test'], { timeout: 30_000 })));
  return pids.length;
}

describe('AmqpBus faults', () => {
  const cleanups: Array<() => Promise<void>> = [];
  const groups: string[] = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await deleteGroups(groups.splice(0));
  });

  const open = async (options: Partial<AmqpBusOptions> & { service: string }) => {
    const bus = await connectAmqpBus({
      url: services.amqp,
      telemetry: testTelemetry(options.service),
      reconnectDelayMs: () => 50,
      ...options,
    });
    cleanups.push(() => bus.close());
    return bus;
  };
  const group = (label: string) => {
    const g = `fault-${label}-${suffix()}`;
    groups.push(g);
    return g;
  };
  const recordInto = (seen: EventEnvelope[]) => async (e: EventEnvelope) => void seen.push(e);

  it('rejects publish at once during an outage, then reconnects and resumes consuming', async () => {
    const proxy = await startProxy(services.amqp);
    cleanups.push(() => proxy.close());
    const bus = await open({ service: 'fault-proxied', url: proxy.url });
    const direct = await open({ service: 'fault-direct' });
    const g = group('outage');
    const type = `Outage_${suffix()}`;
    const seen: EventEnvelope[] = [];
    await bus.subscribe({ group: g, types: [type], handler: recordInto(seen) });
    const before = [1, 2, 3].map((v) => testEvent(type, 'a1', v));
    await bus.publish(before);
    await waitFor(() => seen.length === 3, 'the events before the outage');

    proxy.cut();
    await waitFor(async () => !(await bus.ready()), 'ready() to turn false');
    const started = Date.now();
    await expect(bus.publish([testEvent(type, 'a1', 99)])).rejects.toThrow(/not connected/);
    expect(Date.now() - started).toBeLessThan(500);
    // Published elsewhere meanwhile: the durable queue keeps them for the cut-off consumer.
    const during = [4, 5, 6].map((v) => testEvent(type, 'a1', v));
    await direct.publish(during);
    await waitFor(() => proxy.refused > 0, 'a reconnect attempt refused during the outage');

    proxy.restore();
    await waitFor(() => bus.ready(), 'ready() after the outage');
    const after = [7, 8, 9].map((v) => testEvent(type, 'a1', v));
    await bus.publish(after);
    await waitFor(() => seen.length >= 9, 'every event published before, during and after');

    expect(seen.map((e) => e.id)).toEqual([...before, ...during, ...after].map((e) => e.id));
    expect(bus.connectCount).toBe(2);
    expect(direct.connectCount).toBe(1);
  });

  it('bounds publish when the broker stops answering, and carries on once it answers again', async () => {
    const proxy = await startProxy(services.amqp);
    cleanups.push(() => proxy.close());
    const bus = await open({ service: 'fault-stalled', url: proxy.url, publishTimeoutMs: 300 });
    const direct = await open({ service: 'fault-direct' });
    const g = group('stall');
    const type = `Stall_${suffix()}`;
    const seen: EventEnvelope[] = [];
    await direct.subscribe({ group: g, types: [type], handler: recordInto(seen) });

    proxy.stall();
    const started = Date.now();
    const unconfirmed = testEvent(type, 'b1', 1);
    await expect(bus.publish([unconfirmed])).rejects.toThrow(/did not confirm 1 event\(s\) within 300 ms/);
    expect(Date.now() - started).toBeLessThan(1500);

    proxy.restore();
    const confirmed = testEvent(type, 'b1', 2);
    await bus.publish([confirmed]);
    // Honest about the timeout: the unconfirmed event may still have arrived (the outbox's retry
    // would then be a duplicate, which inboxes absorb); the confirmed one certainly did.
    await waitFor(() => seen.some((e) => e.id === confirmed.id), 'the confirmed event');
    expect(seen.map((e) => e.id)).toEqual([unconfirmed.id, confirmed.id]);
    expect(bus.connectCount).toBe(1);
  });

  it('survives connections force-closed by the broker: nothing confirmed is lost', async () => {
    const tag = `bus-fault-${suffix()}`;
    const consumer = await open({ service: 'fault-consumer', connectionName: `${tag}-consumer` });
    const publisher = await open({ service: 'fault-publisher', connectionName: `${tag}-publisher`, publishTimeoutMs: 2000 });
    const g = group('forced');
    const type = `Forced_${suffix()}`;
    const seen = new Set<string>();
    await consumer.subscribe({ group: g, types: [type], handler: async (e) => void seen.add(e.id) });
    const confirmedIds: string[] = [];
    const rejectedIds: string[] = [];
    let version = 0;
    const publishOne = async () => {
      const e = testEvent(type, 'c1', ++version);
      try {
        await publisher.publish([e]);
        confirmedIds.push(e.id);
      } catch {
        rejectedIds.push(e.id);
      }
    };
    for (let i = 0; i < 5; i++) await publishOne();
    await waitFor(() => seen.size === 5, 'the events before the forced close');

    // Keep publishing while the broker closes both connections: each publish confirms or rejects.
    let publishing = true;
    const loop = (async () => {
      while (publishing) {
        await publishOne();
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    expect(await closeConnectionsNamed(tag)).toBe(2);
    await waitFor(() => consumer.connectCount === 2 && publisher.connectCount === 2, 'both buses to reconnect');
    const mark = confirmedIds.length;
    await waitFor(() => confirmedIds.length >= mark + 5, 'publishes confirmed after the reconnect');
    publishing = false;
    await loop;

    await waitFor(() => confirmedIds.every((id) => seen.has(id)), 'every confirmed event to be handled', 15_000);
    const published = new Set([...confirmedIds, ...rejectedIds]);
    expect([...seen].every((id) => published.has(id))).toBe(true);
    expect(await consumer.ready()).toBe(true);
  });

  it('re-declares a queue deleted under a live consumer and keeps consuming', async () => {
    const bus = await open({ service: 'fault-deleted' });
    const g = group('deleted');
    const type = `Deleted_${suffix()}`;
    const seen: EventEnvelope[] = [];
    await bus.subscribe({ group: g, types: [type], handler: recordInto(seen) });
    await withAdmin((channel) => channel.deleteQueue(groupQueue(g)));
    await waitFor(() => bus.connectCount === 2, 'the bus to recycle its connection');
    const event = testEvent(type, 'd1', 1);
    await bus.publish([event]);
    await waitFor(() => seen.length === 1, 'the event on the re-declared queue');
    expect(seen.map((e) => e.id)).toEqual([event.id]);
  });

  it('fails start-up within the bound when the broker is unreachable, leaving nothing running', async () => {
    const proxy = await startProxy(services.amqp);
    cleanups.push(() => proxy.close());
    proxy.cut();
    const started = Date.now();
    await expect(
      connectAmqpBus({
        url: proxy.url,
        service: 'fault-unreachable',
        telemetry: testTelemetry('fault-unreachable'),
        connectTimeoutMs: 400,
        reconnectDelayMs: () => 50,
      }),
    ).rejects.toThrow(/could not connect to amqp:\/\/guest:\*\*\*@127\.0\.0\.1:\d+.* within 400 ms/);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(proxy.refused).toBeGreaterThan(1);
  });
});
