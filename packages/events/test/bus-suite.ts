import { randomBytes, randomUUID } from 'node:crypto';
import { type Telemetry, metricValue } from '@shop/telemetry';
import { testTelemetry } from '@shop/testing';
import { type Bus, type EventEnvelope, PermanentError, type Subscription } from '../src/types';
import type { BusDeadLetter } from '../src/bus-memory';

/** What a bus implementation gives the contract suite. */
export interface BusContractHooks {
  /** Sends a body that is not an EventEnvelope, routed as `type`, as a broken publisher would. */
  publishRaw?: (type: string, body: string) => Promise<void>;
  /** Removes what one test's groups left on the broker (queues, dead letters). */
  cleanup?: (groups: string[]) => Promise<void>;
}

/**
 * A new bus on the broker the whole suite shares, as one more process (or replica) would open
 * it. `service` names the publisher; the telemetry is the test's, to read metrics back.
 */
export type MakeBus = (service: string, telemetry: Telemetry) => Promise<Bus>;

const suffix = () => randomBytes(4).toString('hex');

export function testEvent(
  type: string,
  aggregateId: string,
  aggregateVersion: number,
  payload: Record<string, unknown> = {},
): EventEnvelope {
  return {
    id: randomUUID(),
    type,
    source: 'contract',
    aggregateId,
    aggregateVersion,
    occurredAt: new Date().toISOString(),
    schemaVersion: 1,
    payload,
  };
}

/** Bounded polling: the condition is checked every 10 ms until it holds or the time is up. */
export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A handler that records what it received, in order. */
function recorder() {
  const seen: EventEnvelope[] = [];
  return { seen, ids: () => seen.map((e) => e.id), handler: async (e: EventEnvelope) => void seen.push(e) };
}

const versionsOf = (events: EventEnvelope[], aggregateId: string) =>
  events.filter((e) => e.aggregateId === aggregateId).map((e) => e.aggregateVersion);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/**
 * The delivery semantics every Bus keeps (see types.ts), run over each implementation. Groups
 * and event types carry a random suffix so runs (and other suites on the same broker) never
 * see each other's messages. After a message, a "barrier" event of the same group (handled
 * after everything published before it, since a group's messages are handled in order) makes
 * exact counts safe to assert without waiting an arbitrary time.
 */
export function busContract(name: string, makeBus: MakeBus, hooks: BusContractHooks = {}): void {
  describe(`Bus contract: ${name}`, () => {
    const buses: Bus[] = [];
    const subscriptions: Subscription[] = [];
    const groups: string[] = [];

    const open = async (service: string) => {
      const telemetry = testTelemetry(service);
      const bus = await makeBus(service, telemetry);
      buses.push(bus);
      return { bus, telemetry };
    };
    const group = (label: string) => {
      const g = `contract-${label}-${suffix()}`;
      groups.push(g);
      return g;
    };
    const eventType = (label: string) => `${label}_${suffix()}`;
    const subscribe = async (bus: Bus, options: Parameters<Bus['subscribe']>[0]) => {
      const subscription = await bus.subscribe(options);
      subscriptions.push(subscription);
      return subscription;
    };

    afterEach(async () => {
      await Promise.all(subscriptions.splice(0).map((s) => s.close()));
      await Promise.all(buses.splice(0).map((b) => b.close()));
      await hooks.cleanup?.(groups.splice(0));
    });

    it('delivers every event once, one at a time, in publish order (so each aggregate in version order)', async () => {
      const { bus: publisher, telemetry: pubTelemetry } = await open('contract-publisher');
      const { bus: consumer, telemetry: conTelemetry } = await open('contract-consumer');
      const g = group('order');
      const type = eventType('ItemChanged');
      const seen: EventEnvelope[] = [];
      let running = 0;
      let maxRunning = 0;
      await subscribe(consumer, {
        group: g,
        types: [type],
        handler: async (e) => {
          running++;
          maxRunning = Math.max(maxRunning, running);
          await new Promise((resolve) => setImmediate(resolve));
          seen.push(e);
          running--;
        },
      });
      // 200 events, 5 aggregates interleaved (a1 v1, a2 v1, ... a5 v1, a1 v2 ...), in 4 publishes.
      const events = range(1, 40).flatMap((v) => range(1, 5).map((a) => testEvent(type, `agg-${a}`, v, { v })));
      for (let i = 0; i < events.length; i += 50) await publisher.publish(events.slice(i, i + 50));
      const barrier = testEvent(type, 'barrier', 1);
      await publisher.publish([barrier]);
      await waitFor(() => seen.some((e) => e.id === barrier.id), 'the barrier');

      expect(seen).toHaveLength(201);
      expect(seen.map((e) => e.id)).toEqual([...events, barrier].map((e) => e.id));
      for (const a of range(1, 5)) expect(versionsOf(seen, `agg-${a}`)).toEqual(range(1, 40));
      expect(seen[7]?.payload).toEqual({ v: 2 });
      expect(maxRunning).toBe(1);
      expect(await metricValue(pubTelemetry.metrics.eventsPublished, { service: 'contract-publisher', type })).toBe(201);
      expect(await metricValue(conTelemetry.metrics.eventsConsumed, { service: g, type })).toBe(201);
      expect(await consumer.deadLetters(g)).toEqual([]);
    });

    it('hands waiting events to a batchHandler in publish order, never two batches at once', async () => {
      const { bus, telemetry } = await open('contract-batch');
      const g = group('batch');
      const type = eventType('StockMoved');
      const batches: string[][] = [];
      const single: string[] = [];
      const order: string[] = [];
      let running = 0;
      let maxRunning = 0;
      let release: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => (release = resolve));
      await subscribe(bus, {
        group: g,
        types: [type],
        maxBatch: 25,
        handler: async (e) => {
          running++;
          maxRunning = Math.max(maxRunning, running);
          // The first event is alone (nothing else waits yet): hold it until the rest are queued.
          await gate;
          single.push(e.id);
          order.push(e.id);
          running--;
        },
        batchHandler: async (events) => {
          running++;
          maxRunning = Math.max(maxRunning, running);
          await new Promise((resolve) => setImmediate(resolve));
          batches.push(events.map((e) => e.id));
          order.push(...events.map((e) => e.id));
          running--;
        },
      });
      const first = testEvent(type, 'm0', 1);
      await bus.publish([first]);
      await waitFor(() => running === 1, 'the first event in hand');
      const rest = range(1, 60).map((v) => testEvent(type, `m${v % 3}`, v + 1));
      await bus.publish(rest);
      release();
      await waitFor(() => order.length === 61, 'every event');

      // What waited behind the held event came in batches (a message arriving alone goes to handler).
      expect(single[0]).toBe(first.id);
      expect(order).toEqual([first, ...rest].map((e) => e.id));
      expect(batches.every((b) => b.length >= 2 && b.length <= 25)).toBe(true);
      expect(batches.length).toBeGreaterThan(0);
      expect(batches.flat().length + single.length).toBe(61);
      expect(maxRunning).toBe(1);
      expect(await metricValue(telemetry.metrics.eventsConsumed, { service: g, type })).toBe(61);
    });

    it('falls back to one by one when a batch fails: the poison one is dead, the others handled in order', async () => {
      const { bus } = await open('contract-batch-poison');
      const g = group('batch-poison');
      const type = eventType('LabelPrinted');
      const handled: string[] = [];
      let batchCalls = 0;
      let holding = false;
      let release: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const events = range(1, 6).map((v) => testEvent(type, 'lp', v, { poison: v === 4 }));
      await subscribe(bus, {
        group: g,
        types: [type],
        maxAttempts: 2,
        retryDelayMs: () => 1,
        handler: async (e) => {
          if (e.id === events[0]?.id) {
            holding = true;
            await gate;
          }
          if (e.payload.poison) throw new Error('smudged');
          handled.push(e.id);
        },
        batchHandler: async (batch) => {
          batchCalls++;
          if (batch.some((e) => e.payload.poison)) throw new Error('smudged (batch)');
          handled.push(...batch.map((e) => e.id));
        },
      });
      await bus.publish(events.slice(0, 1));
      await waitFor(() => holding, 'the first event in hand');
      await bus.publish(events.slice(1));
      release();
      await waitFor(() => handled.length === 5, 'the five good events');

      expect(handled).toEqual(events.filter((e) => !e.payload.poison).map((e) => e.id));
      expect(batchCalls).toBeGreaterThanOrEqual(1);
      const dead = await bus.deadLetters(g);
      expect(dead.map((d) => [d.event.id, d.error, d.attempts])).toEqual([[events[3]?.id, 'smudged', 2]]);
    });

    it('gives every group every event', async () => {
      const { bus: publisher } = await open('contract-publisher');
      const { bus: a } = await open('contract-a');
      const { bus: b } = await open('contract-b');
      const type = eventType('PriceChanged');
      const ga = group('groups-a');
      const gb = group('groups-b');
      const ra = recorder();
      const rb = recorder();
      await subscribe(a, { group: ga, types: [type], handler: ra.handler });
      await subscribe(b, { group: gb, types: [type], handler: rb.handler });
      const events = range(1, 20).map((v) => testEvent(type, 'p1', v));
      await publisher.publish(events);
      const barrier = testEvent(type, 'barrier', 1);
      await publisher.publish([barrier]);
      await waitFor(() => ra.ids().includes(barrier.id) && rb.ids().includes(barrier.id), 'the barrier in both groups');

      const expected = [...events, barrier].map((e) => e.id);
      expect(ra.ids()).toEqual(expected);
      expect(rb.ids()).toEqual(expected);
    });

    it('splits a group between its replicas, each event handled once', async () => {
      const { bus: publisher } = await open('contract-publisher');
      const { bus: replica1 } = await open('contract-replica-1');
      const { bus: replica2 } = await open('contract-replica-2');
      const g = group('replicas');
      const type = eventType('StockChanged');
      // A handler that takes a few turns of the event loop, so both replicas are seen busy.
      const slow = (into: EventEnvelope[]) => async (e: EventEnvelope) => {
        await new Promise((resolve) => setTimeout(resolve, 2));
        into.push(e);
      };
      const seen1: EventEnvelope[] = [];
      const seen2: EventEnvelope[] = [];
      const s1 = await subscribe(replica1, { group: g, types: [type], handler: slow(seen1) });
      const s2 = await subscribe(replica2, { group: g, types: [type], handler: slow(seen2) });
      const events = range(1, 40).map((v) => testEvent(type, 'sku-1', v));
      await publisher.publish(events);
      await waitFor(() => seen1.length + seen2.length >= 40, '40 events across the replicas');
      // Closing lets any in-flight delivery finish, so the counts below are final.
      await Promise.all([s1.close(), s2.close()]);

      const all = [...seen1, ...seen2].map((e) => e.id);
      expect(all).toHaveLength(40);
      expect(new Set(all)).toEqual(new Set(events.map((e) => e.id)));
      expect(seen1.length).toBeGreaterThan(0);
      expect(seen2.length).toBeGreaterThan(0);
      // Each replica takes from one FIFO queue: what it sees is in order.
      for (const seen of [seen1, seen2]) {
        const versions = seen.map((e) => e.aggregateVersion);
        expect(versions).toEqual([...versions].sort((x, y) => x - y));
      }
    });

    it('retries a failing handler in place with the backoff, then goes on', async () => {
      const { bus } = await open('contract-retry');
      const g = group('retry');
      const type = eventType('OrderPlaced');
      const attempts = new Map<string, number>();
      const delaysAsked: number[] = [];
      const handled: string[] = [];
      await subscribe(bus, {
        group: g,
        types: [type],
        maxAttempts: 5,
        retryDelayMs: (attempt) => {
          delaysAsked.push(attempt);
          return 5;
        },
        handler: async (e) => {
          const n = (attempts.get(e.id) ?? 0) + 1;
          attempts.set(e.id, n);
          if (e.aggregateVersion === 1 && n < 3) throw new Error(`flaky ${n}`);
          handled.push(e.id);
        },
      });
      const flaky = testEvent(type, 'o1', 1);
      const next = testEvent(type, 'o1', 2);
      await bus.publish([flaky, next]);
      await waitFor(() => handled.includes(next.id), 'the event after the flaky one');

      expect(attempts.get(flaky.id)).toBe(3);
      expect(attempts.get(next.id)).toBe(1);
      expect(delaysAsked).toEqual([1, 2]);
      // In place: the flaky event was handled before the next one was even tried.
      expect(handled).toEqual([flaky.id, next.id]);
      expect(await bus.deadLetters(g)).toEqual([]);
    });

    it('dead-letters a poison message after maxAttempts while the rest keep flowing', async () => {
      const { bus, telemetry } = await open('contract-poison');
      const g = group('poison');
      const type = eventType('PaymentCaptured');
      let poisonCalls = 0;
      const handled: string[] = [];
      await subscribe(bus, {
        group: g,
        types: [type],
        maxAttempts: 3,
        retryDelayMs: () => 1,
        handler: async (e) => {
          if (e.payload.poison) {
            poisonCalls++;
            throw new Error('cannot digest this');
          }
          handled.push(e.id);
        },
      });
      const poison = testEvent(type, 'pay-1', 1, { poison: true });
      const followers = range(2, 4).map((v) => testEvent(type, 'pay-1', v));
      await bus.publish([poison, ...followers]);
      await waitFor(() => handled.length === 3, 'the three followers');

      expect(handled).toEqual(followers.map((e) => e.id));
      expect(poisonCalls).toBe(3);
      const dead = await bus.deadLetters(g);
      expect(dead).toHaveLength(1);
      expect(dead[0]).toMatchObject({ event: poison, error: 'cannot digest this', attempts: 3 });
      expect(Date.parse(dead[0]?.deadAt ?? '')).not.toBeNaN();
      // A peek: reading dead letters does not remove them.
      expect(await bus.deadLetters(g)).toEqual(dead);
      expect(await metricValue(telemetry.metrics.eventsConsumed, { service: g, type })).toBe(3);
      expect(await metricValue(telemetry.metrics.eventsDeadLettered, { service: g, type })).toBe(1);
    });

    it('dead-letters a PermanentError at once, also one from another realm (told by its name)', async () => {
      const { bus } = await open('contract-permanent');
      const g = group('permanent');
      const type = eventType('CouponApplied');
      const calls = new Map<string, number>();
      const handled: string[] = [];
      await subscribe(bus, {
        group: g,
        types: [type],
        maxAttempts: 5,
        retryDelayMs: () => 1,
        handler: async (e) => {
          calls.set(e.id, (calls.get(e.id) ?? 0) + 1);
          if (e.payload.kind === 'permanent') throw new PermanentError('unknown coupon');
          if (e.payload.kind === 'foreign') throw Object.assign(new Error('schema version 9 unknown'), { name: 'PermanentError' });
          handled.push(e.id);
        },
      });
      const permanent = testEvent(type, 'c1', 1, { kind: 'permanent' });
      const foreign = testEvent(type, 'c1', 2, { kind: 'foreign' });
      const fine = testEvent(type, 'c1', 3);
      await bus.publish([permanent, foreign, fine]);
      await waitFor(() => handled.includes(fine.id), 'the event after the permanent failures');

      expect(calls.get(permanent.id)).toBe(1);
      expect(calls.get(foreign.id)).toBe(1);
      const dead = await bus.deadLetters(g);
      expect(dead.map((d) => [d.event.id, d.error, d.attempts])).toEqual([
        [permanent.id, 'unknown coupon', 1],
        [foreign.id, 'schema version 9 unknown', 1],
      ]);
    });

    (hooks.publishRaw ? it : it.skip)('dead-letters a message that is not an EventEnvelope, without calling the handler', async () => {
      const publishRaw = hooks.publishRaw as NonNullable<BusContractHooks['publishRaw']>;
      const { bus, telemetry } = await open('contract-malformed');
      const g = group('malformed');
      const type = eventType('Garbage');
      const r = recorder();
      await subscribe(bus, { group: g, types: [type], handler: r.handler });
      await publishRaw(type, 'this is {not json');
      await publishRaw(type, JSON.stringify({ id: 'half-an-event', type, payload: [] }));
      const fine = testEvent(type, 'g1', 1);
      await bus.publish([fine]);
      await waitFor(() => r.ids().includes(fine.id), 'the valid event');

      expect(r.ids()).toEqual([fine.id]);
      const dead = (await bus.deadLetters(g)) as BusDeadLetter[];
      expect(dead).toHaveLength(2);
      expect(dead[0]).toMatchObject({ raw: 'this is {not json', attempts: 0, event: { type, id: '' } });
      expect(dead[0]?.error).toMatch(/^malformed message: not JSON/);
      expect(dead[1]).toMatchObject({ attempts: 0, event: { id: 'half-an-event', type, aggregateVersion: 0, payload: {} } });
      expect(dead[1]?.error).toMatch(/source must be a non-empty string.*payload must be an object/);
      // Counted like any other dead letter, under the routing key.
      expect(await metricValue(telemetry.metrics.eventsDeadLettered, { service: g, type })).toBe(2);
    });

    it('redrives only the dead letters whose ids are asked for; the others stay dead, in order', async () => {
      const { bus } = await open('contract-redrive-ids');
      const g = group('redrive-ids');
      const type = eventType('RefundIssued');
      const healed = new Set<string>();
      const handled: string[] = [];
      await subscribe(bus, {
        group: g,
        types: [type],
        maxAttempts: 1,
        handler: async (e) => {
          if (!healed.has(e.id)) throw new Error('ledger locked');
          handled.push(e.id);
        },
      });
      const events = range(1, 4).map((v) => testEvent(type, 'rf1', v));
      await bus.publish(events);
      await waitFor(async () => (await bus.deadLetters(g)).length === 4, 'four dead letters');
      const [a, b, c, d] = events.map((e) => e.id) as [string, string, string, string];
      healed.add(b);
      healed.add(d);
      expect(await bus.redrive(g, { ids: [d, b, 'no-such-id'] })).toBe(2);
      await waitFor(() => handled.length === 2, 'the two redriven events');
      expect(handled).toEqual([b, d]);
      expect((await bus.deadLetters(g)).map((x) => x.event.id)).toEqual([a, c]);
      expect(await bus.redrive(g, { ids: [] })).toBe(0);
      await expect(bus.redrive(g, { ids: 'abc' as unknown as string[] })).rejects.toThrow(/ids must be an array/);
      expect((await bus.deadLetters(g)).map((x) => x.event.id)).toEqual([a, c]);
    });

    it('redrives dead letters back to the group after a fix, with fresh attempts', async () => {
      const { bus } = await open('contract-redrive');
      const g = group('redrive');
      const type = eventType('ShipmentBooked');
      let fixed = false;
      const attempts = new Map<string, number>();
      const handled: string[] = [];
      await subscribe(bus, {
        group: g,
        types: [type],
        maxAttempts: 2,
        retryDelayMs: () => 1,
        handler: async (e) => {
          attempts.set(e.id, (attempts.get(e.id) ?? 0) + 1);
          if (!fixed) throw new Error('carrier down');
          handled.push(e.id);
        },
      });
      const events = [testEvent(type, 's1', 1), testEvent(type, 's2', 1)];
      await bus.publish(events);
      await waitFor(async () => (await bus.deadLetters(g)).length === 2, 'two dead letters');
      expect([...attempts.values()]).toEqual([2, 2]);

      fixed = true;
      expect(await bus.redrive(g)).toBe(2);
      await waitFor(() => handled.length === 2, 'the redriven events');
      expect(handled).toEqual(events.map((e) => e.id));
      // Fresh attempts: one more each, not a third strike against maxAttempts 2.
      expect([...attempts.values()]).toEqual([3, 3]);
      expect(await bus.deadLetters(g)).toEqual([]);
      expect(await bus.redrive(g)).toBe(0);
      const unknown = group('never-subscribed');
      expect(await bus.deadLetters(unknown)).toEqual([]);
      expect(await bus.redrive(unknown)).toBe(0);
    });

    it('drops events of types no group is bound to (topic semantics)', async () => {
      const { bus } = await open('contract-topic');
      const wanted = eventType('Wanted');
      const unwanted = eventType('Unwanted');
      const g = group('topic');
      const r = recorder();
      await subscribe(bus, { group: g, types: [wanted], handler: r.handler });
      const lost = testEvent(unwanted, 'x', 1);
      const kept = testEvent(wanted, 'x', 1);
      await bus.publish([lost, kept]);
      await waitFor(() => r.ids().includes(kept.id), 'the wanted event');
      expect(r.ids()).toEqual([kept.id]);

      // Subscribing to the other type later does not bring the dropped event back.
      const late = group('topic-late');
      const rl = recorder();
      await subscribe(bus, { group: late, types: [unwanted], handler: rl.handler });
      const barrier = testEvent(unwanted, 'barrier', 1);
      await bus.publish([barrier]);
      await waitFor(() => rl.ids().includes(barrier.id), 'the barrier');
      expect(rl.ids()).toEqual([barrier.id]);
    });

    it("keeps a group's events while none of its replicas runs (a durable queue)", async () => {
      const { bus: publisher } = await open('contract-publisher');
      const { bus: first } = await open('contract-first-run');
      const g = group('durable');
      const type = eventType('UserRenamed');
      const before = recorder();
      const subscription = await subscribe(first, { group: g, types: [type], handler: before.handler });
      await subscription.close();
      await first.close();
      const events = range(1, 5).map((v) => testEvent(type, 'u1', v));
      await publisher.publish(events);
      const { bus: restarted } = await open('contract-second-run');
      const after = recorder();
      await subscribe(restarted, { group: g, types: [type], handler: after.handler });
      await waitFor(() => after.seen.length === 5, 'the five events kept meanwhile');
      expect(after.ids()).toEqual(events.map((e) => e.id));
      expect(before.seen).toHaveLength(0);
    });

    it('runs handlers outside publish, which resolves without waiting for them', async () => {
      const { bus } = await open('contract-async');
      const g = group('async');
      const type = eventType('CartUpdated');
      let inPublish = false;
      let calledInsidePublish = 0;
      let release: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      const handled: string[] = [];
      await subscribe(bus, {
        group: g,
        types: [type],
        handler: async (e) => {
          if (inPublish) calledInsidePublish++;
          await gate;
          handled.push(e.id);
        },
      });
      const events = [testEvent(type, 'cart', 1), testEvent(type, 'cart', 2)];
      inPublish = true;
      const publishing = bus.publish(events);
      inPublish = false;
      await publishing;
      // The first handler may have started (and be parked at the gate); none has finished.
      expect(handled).toEqual([]);
      release();
      await waitFor(() => handled.length === 2, 'both events');
      expect(handled).toEqual(events.map((e) => e.id));
      expect(calledInsidePublish).toBe(0);
    });

    it('closing a subscription mid-backoff returns the message to the queue for the next consumer', async () => {
      const { bus } = await open('contract-close');
      const g = group('close');
      const type = eventType('InvoiceIssued');
      let failingCalls = 0;
      const failing = await bus.subscribe({
        group: g,
        types: [type],
        maxAttempts: 5,
        retryDelayMs: () => 30_000,
        handler: async () => {
          failingCalls++;
          throw new Error('not now');
        },
      });
      const event = testEvent(type, 'inv-1', 1);
      await bus.publish([event]);
      await waitFor(() => failingCalls === 1, 'the first attempt');
      const started = Date.now();
      await failing.close();
      // The 30 s backoff was cut short, not waited out.
      expect(Date.now() - started).toBeLessThan(5000);
      const r = recorder();
      await subscribe(bus, { group: g, types: [type], handler: r.handler });
      await waitFor(() => r.seen.length === 1, 'the returned message');
      expect(r.ids()).toEqual([event.id]);
      expect(failingCalls).toBe(1);
      expect(await bus.deadLetters(g)).toEqual([]);
    });

    it('gives every ephemeral subscriber every event (a shared group still shares), and keeps nothing for one that closed', async () => {
      const { bus: publisher } = await open('contract-fanout-publisher');
      const replicas = [await open('contract-fanout-1'), await open('contract-fanout-2')];
      const type = eventType('Fanned');
      const own = (label: string) => `contract-ephemeral-${label}-${suffix()}`;
      const seen = new Map<string, string[]>();
      const listen = (bus: Bus, g: string, ephemeral: boolean) => {
        seen.set(g, seen.get(g) ?? []);
        return subscribe(bus, {
          group: g,
          types: [type],
          ephemeral,
          handler: async (e) => {
            seen.get(g)?.push(e.aggregateId);
          },
        });
      };
      const [a, b] = [own('a'), own('b')];
      const shared = group('fanout-shared');
      const first = await listen(replicas[0]!.bus, a, true);
      await listen(replicas[1]!.bus, b, true);
      const sharedSeen: string[] = [];
      for (const { bus } of replicas) {
        await subscribe(bus, {
          group: shared,
          types: [type],
          handler: async (e) => {
            sharedSeen.push(e.aggregateId);
          },
        });
      }
      const events = range(1, 20).map((i) => testEvent(type, `e${i}`, 1));
      await publisher.publish([...events, testEvent(type, 'barrier-1', 1)]);
      const ids = [...events.map((e) => e.aggregateId), 'barrier-1'];
      await waitFor(() => [a, b].every((g) => seen.get(g)?.includes('barrier-1')) && sharedSeen.includes('barrier-1'), 'the first barrier');
      // Each ephemeral subscriber: all 21, in publish order. The shared group: each of the 21 once, over both replicas.
      expect(seen.get(a)).toEqual(ids);
      expect(seen.get(b)).toEqual(ids);
      await waitFor(() => sharedSeen.length >= ids.length, 'the shared group');
      expect([...sharedSeen].sort()).toEqual([...ids].sort());

      // Closed, its queue is gone: what is published meanwhile is for the others only, and a new
      // subscriber under the same name starts from what is published after it.
      await first.close();
      await publisher.publish([testEvent(type, 'while-closed', 1), testEvent(type, 'barrier-2', 1)]);
      await waitFor(() => seen.get(b)?.includes('barrier-2') ?? false, 'the second barrier');
      expect(seen.get(a)).toEqual(ids);
      await listen(replicas[0]!.bus, a, true);
      await publisher.publish([testEvent(type, 'barrier-3', 1)]);
      await waitFor(() => seen.get(a)?.includes('barrier-3') ?? false, 'the third barrier');
      expect(seen.get(a)).toEqual([...ids, 'barrier-3']);
      expect(seen.get(b)).toEqual([...ids, 'while-closed', 'barrier-2', 'barrier-3']);
    });

    it('reports readiness, accepts an empty publish, and refuses work once closed', async () => {
      const { bus } = await open('contract-lifecycle');
      expect(await bus.ready()).toBe(true);
      await expect(bus.publish([])).resolves.toBeUndefined();
      await bus.close();
      expect(await bus.ready()).toBe(false);
      await expect(bus.publish([testEvent('Anything', 'a', 1)])).rejects.toThrow(/closed/);
      await expect(bus.subscribe({ group: group('closed'), types: ['Anything'], handler: async () => undefined })).rejects.toThrow(
        /closed/,
      );
      await expect(bus.close()).resolves.toBeUndefined();
    });

    it('refuses a misuse, saying what it received', async () => {
      const { bus } = await open('contract-misuse');
      const handler = async () => undefined;
      await expect(bus.subscribe({ group: 'has space', types: ['A'], handler })).rejects.toThrow(/received "has space"/);
      await expect(bus.subscribe({ group: group('misuse'), types: [], handler })).rejects.toThrow(/received \[\]/);
      await expect(bus.subscribe({ group: group('misuse'), types: ['Order.*'], handler })).rejects.toThrow(/without \* or #/);
      await expect(bus.subscribe({ group: group('misuse'), types: ['A'], handler, maxAttempts: 0 })).rejects.toThrow(/received 0/);
      await expect(bus.subscribe({ group: group('misuse'), types: ['A'], handler, batchHandler: handler, maxBatch: 0 })).rejects.toThrow(
        /maxBatch .*received 0/,
      );
      const typeless = { ...testEvent('A', 'a', 1), type: undefined } as unknown as EventEnvelope;
      await expect(bus.publish([testEvent('A', 'a', 1), typeless])).rejects.toThrow(/received undefined/);
    });
  });
}
