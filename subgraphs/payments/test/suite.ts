import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PaymentsProviderConfig } from '@shop/config';
import {
  AUTHORIZE_PAYMENT,
  CAPTURE_PAYMENT,
  CHECKOUT_REPLIES,
  type CheckoutMessages,
  type EventEnvelope,
  MemoryBroker,
  MemoryBus,
  REFUND_PAYMENT,
  eventMigrations,
  VOID_PAYMENT,
} from '@shop/events';
import { type Identity, gatewayHeaders } from '@shop/server';
import { type Kysely, openStore } from '@shop/store';
import { type Telemetry, metricValue } from '@shop/telemetry';
import { type Backend, type StoreLocation, eventually, graphqlClient, testTelemetry } from '@shop/testing';
import type { Counter } from 'prom-client';
import { migrations } from '../src/data/migrations';
import { type PaymentsDB, PaymentsRepository, operationId } from '../src/data/repository';
import { idempotencyKey } from '../src/domain';
import { chance } from '../src/provider/simulator';
import { type PaymentsSubgraph, createPayments } from '../src/server';

/** The key the suite's requests are signed with, as the gateway signs them. */
const SECRET = randomBytes(32).toString('hex');
const customer = (sub: string): Identity => ({ sub, roles: ['customer'], scopes: [] });
/** Support staff: every customer's orders and payments. */
const STAFF: Identity = { sub: 'staff', roles: ['customer'], scopes: ['orders:admin'] };
/** The worker at a test's pace: short polls and backoff. */
const FAST = { pollMs: 50, retryBaseMs: 10, retryMaxMs: 100 };

type Reply = { type: string; payload: Record<string, unknown> };

/** payments' behaviour over its own store, run over SQLite (payments.test.ts) and PostgreSQL (payments.int.test.ts). */
export function paymentsSuite(backend: Backend): void {
  describe(`payments on ${backend.name}`, () => {
    const cleanups: Array<() => Promise<void> | void> = [];
    afterAll(async () => {
      for (const cleanup of cleanups.reverse()) await cleanup();
      await backend.cleanup();
    });

    /**
     * One scenario's world: an in-process broker, payments on a store of its own (`location` to
     * share one across a restart), and the saga's side: commands out, replies in.
     */
    async function world(options: { location?: StoreLocation; broker?: MemoryBroker } = {}) {
      const broker = options.broker ?? new MemoryBroker();
      const location = options.location ?? (await backend.location());
      const orders = new MemoryBus({ service: 'orders', telemetry: testTelemetry('orders'), broker });
      const replies: EventEnvelope[] = [];
      const subscription = await orders.subscribe({
        group: 'orders',
        types: [...CHECKOUT_REPLIES],
        handler: async (event) => {
          replies.push(event);
        },
      });
      const versions = new Map<string, number>();
      const started = new Set<PaymentsSubgraph>();
      cleanups.push(async () => {
        for (const p of started) await p.stop();
        await subscription.close();
        await orders.close();
      });
      /** Starts payments on the world's store with these PSP settings. */
      const start = async (psp: Partial<PaymentsProviderConfig> = {}) => {
        const telemetry = testTelemetry('payments');
        const bus = new MemoryBus({ service: 'payments', telemetry, broker });
        const payments = await createPayments({ telemetry, store: location, bus, psp: { latencyMs: 1, ...psp }, worker: FAST });
        started.add(payments);
        cleanups.push(() => bus.close());
        return Object.assign(payments, { telemetry });
      };
      /** Stops one payments process (gracefully: its in-flight calls are cut short and recorded as unknown). */
      const stop = async (payments: PaymentsSubgraph) => {
        started.delete(payments);
        await payments.stop();
      };
      /** Publishes a command as orders' relay would, under a new event id unless one is given (a redelivery). */
      const send = async <T extends keyof CheckoutMessages>(type: T, payload: CheckoutMessages[T], id: string = randomUUID()) => {
        const checkoutId = payload.checkoutId;
        const version = (versions.get(checkoutId) ?? 0) + 1;
        versions.set(checkoutId, version);
        const event: EventEnvelope = {
          id,
          type,
          source: 'orders',
          aggregateId: checkoutId,
          aggregateVersion: version,
          occurredAt: new Date().toISOString(),
          schemaVersion: 1,
          payload: payload,
        };
        await orders.publish([event]);
        return event;
      };
      const repliesOf = (checkoutId: string): Reply[] =>
        replies.filter((r) => r.aggregateId === checkoutId).map((r) => ({ type: r.type, payload: r.payload }));
      /** Waits for the checkout's n-th reply and returns them all. */
      const awaitReplies = async (checkoutId: string, n: number, ms = 10_000) => {
        const seen = await eventually(
          async () => repliesOf(checkoutId),
          (list) => list.length >= n,
          ms,
        );
        expect(seen.length).toBeGreaterThanOrEqual(n);
        return seen;
      };
      return { broker, location, start, stop, send, repliesOf, awaitReplies };
    }

    const authorize = (checkoutId: string, extra: Partial<CheckoutMessages[typeof AUTHORIZE_PAYMENT]> = {}) => ({
      checkoutId,
      orderId: `o-${checkoutId}`,
      customerId: 'u00001',
      amount: 4200,
      currency: 'EUR',
      idempotencyKey: `key-${checkoutId}`,
      ...extra,
    });
    const ids = (checkoutId: string) => ({ checkoutId, orderId: `o-${checkoutId}` });
    const unique = (name: string) => `${name}-${randomUUID().slice(0, 8)}`;
    const calls = (p: { telemetry: { registry: { getSingleMetric(name: string): unknown } } }, labels: Record<string, string>) =>
      metricValue(p.telemetry.registry.getSingleMetric('payments_provider_calls_total') as Counter<string>, labels);

    it('authorizes, captures and refunds on the saga’s commands, one provider call each', async () => {
      const w = await world();
      const payments = await w.start();
      const c = unique('life');
      await w.send(AUTHORIZE_PAYMENT, authorize(c));
      const [authorized] = await w.awaitReplies(c, 1);
      const paymentId = (await payments.payments.paymentOfCheckout(c))!.id;
      expect(authorized).toEqual({ type: 'PaymentAuthorized', payload: { ...ids(c), paymentId, amount: 4200 } });

      await w.send(CAPTURE_PAYMENT, ids(c));
      expect((await w.awaitReplies(c, 2))[1]).toEqual({ type: 'PaymentCaptured', payload: { ...ids(c), paymentId, amount: 4200 } });
      await w.send(REFUND_PAYMENT, ids(c));
      expect((await w.awaitReplies(c, 3))[2]).toEqual({ type: 'PaymentRefunded', payload: { ...ids(c), paymentId, amount: 4200 } });

      expect(await payments.payments.paymentOfCheckout(c)).toMatchObject({ status: 'REFUNDED', attempts: 3, customerId: 'u00001' });
      // The provider did each once, under the checkout's key for each call.
      const ledger = await payments.ledger.entries(`${c}:`);
      expect(ledger.map((e) => [e.idempotencyKey, e.call, e.outcome, e.calls])).toEqual([
        [idempotencyKey(c, 'authorize'), 'authorize', 'approved', 1],
        [idempotencyKey(c, 'capture'), 'capture', 'approved', 1],
        [idempotencyKey(c, 'refund'), 'refund', 'approved', 1],
      ]);
      expect(await calls(payments, { operation: 'authorize', outcome: 'approved' })).toBe(1);
      expect(await calls(payments, { operation: 'capture', outcome: 'approved' })).toBe(1);
      const duration = await (
        payments.telemetry.registry.getSingleMetric('payments_provider_call_duration_seconds') as Counter<string>
      ).get();
      expect(duration.values.some((v) => v.labels.operation === 'refund')).toBe(true);

      // A void after the refund calls nothing: the saga hears where the money is.
      await w.send(VOID_PAYMENT, ids(c));
      expect((await w.awaitReplies(c, 4))[3]?.type).toBe('PaymentRefunded');
      expect((await payments.payments.paymentOfCheckout(c))!.attempts).toBe(3);
    });

    it('answers a duplicated command with the recorded outcome: one charge, identical replies; a redelivery is a no-op', async () => {
      const w = await world();
      // Slow enough that a second command arrives while the first is with the provider.
      const payments = await w.start({ latencyMs: 200 });
      const c = unique('dup');
      const first = await w.send(AUTHORIZE_PAYMENT, authorize(c));
      await w.send(AUTHORIZE_PAYMENT, authorize(c));
      // Asked twice while pending: the one outcome answers both.
      await w.awaitReplies(c, 1);
      await new Promise((r) => setTimeout(r, 300));
      expect(w.repliesOf(c)).toHaveLength(1);
      // The saga retrying its step after the answer: the recorded outcome again.
      await w.send(AUTHORIZE_PAYMENT, authorize(c));
      const [a, b] = await w.awaitReplies(c, 2);
      expect(b).toEqual(a);
      // The bus delivering the first command again: the inbox has it, nothing happens.
      await w.send(AUTHORIZE_PAYMENT, authorize(c), first.id);
      await w.send(CAPTURE_PAYMENT, ids(c));
      await w.awaitReplies(c, 3);
      await w.send(CAPTURE_PAYMENT, ids(c));
      const all = await w.awaitReplies(c, 4);
      await new Promise((r) => setTimeout(r, 200));
      expect(w.repliesOf(c).map((r) => r.type)).toEqual(['PaymentAuthorized', 'PaymentAuthorized', 'PaymentCaptured', 'PaymentCaptured']);
      expect(all[3]).toEqual(all[2]);
      // One call of each at the provider, one charge.
      const ledger = await payments.ledger.entries(`${c}:`);
      expect(ledger.filter((e) => e.call === 'authorize' && e.outcome === 'approved')).toHaveLength(1);
      expect(ledger.map((e) => [e.call, e.calls])).toEqual([
        ['authorize', 1],
        ['capture', 1],
      ]);
      expect((await payments.payments.paymentOfCheckout(c))!.attempts).toBe(2);
    });

    it('voids an authorization; a capture after it charges nothing; a void for an unknown checkout is voided at once', async () => {
      const w = await world();
      const payments = await w.start();
      const c = unique('void');
      await w.send(AUTHORIZE_PAYMENT, authorize(c));
      await w.send(VOID_PAYMENT, ids(c));
      await w.send(CAPTURE_PAYMENT, ids(c));
      const replies = await w.awaitReplies(c, 3);
      expect(replies.map((r) => r.type)).toEqual(['PaymentAuthorized', 'PaymentVoided', 'PaymentVoided']);
      expect(await payments.payments.paymentOfCheckout(c)).toMatchObject({ status: 'VOIDED', attempts: 2 });
      expect((await payments.ledger.entries(`${c}:`)).map((e) => e.call)).toEqual(['authorize', 'void']);

      // A compensation for a checkout whose authorize never came: nothing held, and nothing will be.
      const never = unique('never');
      await w.send(VOID_PAYMENT, ids(never));
      expect((await w.awaitReplies(never, 1))[0]?.type).toBe('PaymentVoided');
      await w.send(AUTHORIZE_PAYMENT, authorize(never));
      expect((await w.awaitReplies(never, 2))[1]?.type).toBe('PaymentVoided');
      expect(await payments.ledger.entries(`${never}:`)).toEqual([]);
    });

    it('declines by the seed, deterministically; a capture of a declined payment is PaymentDeclined again, a void PaymentVoided', async () => {
      const w = await world();
      const seed = 'declines';
      const payments = await w.start({ declineRate: 0.5, seed });
      const checkouts = Array.from({ length: 16 }, (_, i) => `decl-${seed}-${i}`);
      // Decided by the seed and the key alone: computed here before anything runs.
      const declines = new Set(checkouts.filter((c) => chance(seed, idempotencyKey(c, 'authorize'), 'decline') < 0.5));
      expect(declines.size).toBeGreaterThan(0);
      expect(declines.size).toBeLessThan(checkouts.length);
      // Sent in reverse: the order does not matter.
      for (const c of [...checkouts].reverse()) await w.send(AUTHORIZE_PAYMENT, authorize(c));
      for (const c of checkouts) {
        const [reply] = await w.awaitReplies(c, 1);
        expect([c, reply?.type]).toEqual([c, declines.has(c) ? 'PaymentDeclined' : 'PaymentAuthorized']);
        if (declines.has(c)) expect(reply?.payload.reason).toEqual(expect.stringMatching(/^[A-Z_]+$/));
      }
      const declined = [...declines][0]!;
      await w.send(CAPTURE_PAYMENT, ids(declined));
      await w.send(VOID_PAYMENT, ids(declined));
      const replies = await w.awaitReplies(declined, 3);
      expect(replies.map((r) => r.type)).toEqual(['PaymentDeclined', 'PaymentDeclined', 'PaymentVoided']);
      expect(replies[1]).toEqual(replies[0]);
      expect(await payments.payments.paymentOfCheckout(declined)).toMatchObject({ status: 'DECLINED', attempts: 1 });
    });

    it('resolves a timeout by asking the provider: charged during the timeout, it is not charged again', async () => {
      const w = await world();
      const seed = 'timeouts';
      const rate = 0.5;
      const payments = await w.start({ seed, timeoutRate: rate, timeoutChargedRate: 1, callTimeoutMs: 100, maxAttempts: 5 });
      // Checkouts whose first authorize times out after charging and whose first status query answers.
      const key = (c: string) => idempotencyKey(c, 'authorize');
      const candidates = Array.from({ length: 200 }, (_, i) => `to-${seed}-${i}`);
      const charged = candidates.find(
        (c) =>
          // The first call times out (and, at a charged rate of 1, charged); the first status query answers.
          chance(seed, key(c), 1, 'timeout') < rate && chance(seed, key(c), 'status', 1, 'timeout') >= rate,
      )!;
      await w.send(AUTHORIZE_PAYMENT, authorize(charged));
      const [reply] = await w.awaitReplies(charged, 1);
      expect(reply?.type).toBe('PaymentAuthorized');
      const entry = (await payments.ledger.entries(`${charged}:`))[0]!;
      // One authorize call, one status query; one charge.
      expect(entry).toMatchObject({ call: 'authorize', outcome: 'approved', calls: 1, statusCalls: 1 });
      expect(await payments.payments.paymentOfCheckout(charged)).toMatchObject({
        status: 'AUTHORIZED',
        attempts: 2,
        authorization: entry.reference,
      });
      expect(await calls(payments, { operation: 'authorize', outcome: 'timeout' })).toBe(1);
      expect(await calls(payments, { operation: 'status', outcome: 'found' })).toBe(1);
    });

    it('replies PaymentUnavailable after PSP_MAX_ATTEMPTS calls without an answer; nothing charged', async () => {
      const w = await world();
      const payments = await w.start({ timeoutRate: 1, callTimeoutMs: 30, maxAttempts: 3 });
      const c = unique('down');
      await w.send(AUTHORIZE_PAYMENT, authorize(c));
      const [reply] = await w.awaitReplies(c, 1);
      expect(reply).toEqual({
        type: 'PaymentUnavailable',
        payload: { ...ids(c), paymentId: expect.any(String), reason: 'PROVIDER_UNAVAILABLE' },
      });
      // One authorize, then status queries (never a second authorize), three calls in all.
      const payment = await payments.payments.paymentOfCheckout(c);
      expect(payment).toMatchObject({ status: 'FAILED', unresolved: true });
      expect(payment!.attempts).toBeGreaterThanOrEqual(3);
      const entry = (await payments.ledger.entries(`${c}:`))[0]!;
      expect(entry).toMatchObject({ call: 'authorize', calls: 1, outcome: null });
      expect(entry.statusCalls).toBeGreaterThanOrEqual(2);
      // A capture of it is PaymentUnavailable, at once.
      await w.send(CAPTURE_PAYMENT, ids(c));
      expect((await w.awaitReplies(c, 2))[1]).toEqual(reply);
      await w.stop(payments);
    });

    it('after a restart, voids what the provider had charged for a payment reported unavailable', async () => {
      const location = await shared();
      const w = await world({ location });
      const down = await w.start({ timeoutRate: 1, timeoutChargedRate: 1, callTimeoutMs: 30, maxAttempts: 2 });
      const c = unique('charged-down');
      await w.send(AUTHORIZE_PAYMENT, authorize(c));
      expect((await w.awaitReplies(c, 1))[0]?.type).toBe('PaymentUnavailable');
      // The provider did charge, during the first (timed out) call.
      expect((await down.ledger.entries(`${c}:`))[0]).toMatchObject({ call: 'authorize', outcome: 'approved', calls: 1 });
      await w.stop(down);

      // The provider answers again; a new payments process on the same store finds the open reconciliation.
      const up = await w.start();
      const resolved = await eventually(
        () => up.payments.paymentOfCheckout(c),
        (p) => p?.unresolved === false,
      );
      expect(resolved).toMatchObject({ status: 'FAILED', unresolved: false });
      const ledger = await up.ledger.entries(`${c}:`);
      expect(ledger.map((e) => [e.call, e.outcome])).toEqual([
        ['authorize', 'approved'],
        ['void', 'approved'],
      ]);
      expect(ledger[1]?.authorization).toBe(ledger[0]?.reference);
      // The saga's compensation: PaymentVoided, and no second void at the provider.
      await w.send(VOID_PAYMENT, ids(c));
      expect((await w.awaitReplies(c, 2))[1]?.type).toBe('PaymentVoided');
      expect((await up.ledger.entries(`${c}:`)).find((e) => e.call === 'void')?.calls).toBe(1);
    });

    it('resumes a pending operation after a restart, asking the provider before calling again', async () => {
      const location = await shared();
      const w = await world({ location });
      // A provider slow enough that the stop comes while the call is in flight.
      const slow = await w.start({ latencyMs: 5000, callTimeoutMs: 10_000 });
      const c = unique('resume');
      await w.send(AUTHORIZE_PAYMENT, authorize(c));
      await eventually(
        () => slow.payments.operations(c),
        (ops) => ops.length === 1,
      );
      await new Promise((r) => setTimeout(r, 150));
      await w.stop(slow);
      // Stopped mid-call: the attempt is recorded with its outcome unknown, no reply yet.
      expect(w.repliesOf(c)).toEqual([]);
      expect((await readStore(location, (payments) => payments.operations(c)))[0]).toMatchObject({
        state: 'PENDING',
        uncertain: true,
        attempts: 1,
      });

      const next = await w.start();
      expect((await w.awaitReplies(c, 1))[0]?.type).toBe('PaymentAuthorized');
      // Status first (nothing was done), then the authorize: one charge.
      const entry = (await next.ledger.entries(`${c}:`))[0]!;
      expect(entry).toMatchObject({ outcome: 'approved', calls: 1, statusCalls: 1 });
      expect(await next.payments.paymentOfCheckout(c)).toMatchObject({ status: 'AUTHORIZED', attempts: 3 });
    });

    it("takes over an operation whose worker died, once that worker's lease runs out", async () => {
      const location = await shared();
      const c = unique('orphan');
      // A process that recorded the command, claimed the operation and died (SIGKILL): its lease stands.
      const store = await openStore<PaymentsDB>({ service: 'payments', telemetry: testTelemetry('payments'), ...location });
      try {
        await store.migrate({ ...eventMigrations, ...migrations });
        const repository = new PaymentsRepository(store, { source: 'payments', committed: () => {} });
        await store.db
          .transaction()
          .execute((trx) => repository.authorizeRequested(trx as unknown as Kysely<never>, authorize(c), randomUUID()));
        const now = Date.now();
        expect(
          await repository.claim(
            operationId(c, 'authorize'),
            'dead-worker',
            new Date(now).toISOString(),
            new Date(now + 1500).toISOString(),
          ),
        ).toBe(true);
      } finally {
        await store.close();
      }
      const w = await world({ location });
      const next = await w.start();
      await new Promise((r) => setTimeout(r, 700));
      // Still the dead worker's: nothing called, nothing answered.
      expect(w.repliesOf(c)).toEqual([]);
      expect(await next.ledger.entries(`${c}:`)).toEqual([]);
      // Its lease over, the polling worker takes the operation.
      expect((await w.awaitReplies(c, 1))[0]?.type).toBe('PaymentAuthorized');
      expect((await next.ledger.entries(`${c}:`))[0]).toMatchObject({ outcome: 'approved', calls: 1 });
    });

    describe('Order.payment and Payment, as the gateway asks for them', () => {
      let payments: PaymentsSubgraph & { telemetry: Telemetry };
      let url: string;
      const as = (identity?: Identity) =>
        graphqlClient(url, { sign: (body) => gatewayHeaders(SECRET, url, body, identity ? { identity } : {}) });
      const ORDER =
        'query($r: [_Any!]!) { _entities(representations: $r) { ... on Order { id payment { id amount currency status attempts createdAt order { id } } } } }';
      type Entities = { _entities: Array<{ id: string; payment: Record<string, unknown> | null } | null> };
      const checkouts = ['auth-a', 'auth-b', 'auth-c'].map((c) => `${c}-${randomUUID().slice(0, 8)}`);

      beforeAll(async () => {
        const w = await world();
        payments = await w.start();
        for (const [i, c] of checkouts.entries())
          await w.send(AUTHORIZE_PAYMENT, authorize(c, { customerId: 'u00001', amount: 100 * (i + 1) }));
        for (const c of checkouts) await w.awaitReplies(c, 1);
        url = `${(await payments.listen(0, '127.0.0.1', { gatewaySecret: SECRET })).url}/graphql`;
      });

      const representations = (...cs: string[]) => ({ r: cs.map((c) => ({ __typename: 'Order', id: `o-${c}` })) });

      it("is the order's customer's: the payment, private; three orders' payments in one store round trip", async () => {
        const before = await metricValue(payments.telemetry.metrics.storeQueries, { service: 'payments' });
        const res = await as(customer('u00001')).query<Entities>(ORDER, representations(...checkouts));
        expect(res.errors).toBeUndefined();
        expect((await metricValue(payments.telemetry.metrics.storeQueries, { service: 'payments' })) - before).toBe(1);
        expect(res.data!._entities.map((o) => o?.payment)).toEqual(
          checkouts.map((c, i) => ({
            id: expect.stringMatching(/^pay_/),
            amount: 100 * (i + 1),
            currency: 'EUR',
            status: 'AUTHORIZED',
            attempts: 1,
            createdAt: expect.any(String),
            order: { id: `o-${c}` },
          })),
        );
        // Never in a shared cache.
        expect(res.headers.get('cache-control') ?? 'no-store').not.toMatch(/public/);
        const none = await as(customer('u00001')).query<Entities>(ORDER, { r: [{ __typename: 'Order', id: 'o-without-payment' }] });
        expect(none.data!._entities[0]?.payment).toBeNull();
      });

      it('is null with UNAUTHORIZED_FIELD_OR_TYPE for another customer and for an anonymous caller; orders:admin reads it', async () => {
        for (const caller of [customer('u00002'), undefined]) {
          const res = await as(caller).query<Entities>(ORDER, representations(checkouts[0]!));
          expect(res.data!._entities[0]).toEqual({ id: `o-${checkouts[0]}`, payment: null });
          expect(res.errors?.map((e) => [e.extensions?.code, e.path])).toEqual([
            ['UNAUTHORIZED_FIELD_OR_TYPE', ['_entities', 0, 'payment']],
          ]);
        }
        const staff = await as(STAFF).query<Entities>(ORDER, representations(checkouts[0]!));
        expect(staff.errors).toBeUndefined();
        expect(staff.data!._entities[0]?.payment).toMatchObject({ amount: 100, status: 'AUTHORIZED' });
      });

      it('checks a Payment reached by its key the same way', async () => {
        const id = (await payments.payments.paymentOfCheckout(checkouts[1]!))!.id;
        const q = 'query($r: [_Any!]!) { _entities(representations: $r) { ... on Payment { id status } } }';
        const r = { r: [{ __typename: 'Payment', id }] };
        expect((await as(customer('u00001')).query(q, r)).data).toEqual({ _entities: [{ id, status: 'AUTHORIZED' }] });
        expect((await as(STAFF).query(q, r)).data).toEqual({ _entities: [{ id, status: 'AUTHORIZED' }] });
        const stranger = await as(customer('u00002')).query(q, r);
        expect(stranger.data).toEqual({ _entities: [null] });
        expect(stranger.errors?.[0]?.extensions?.code).toBe('UNAUTHORIZED_FIELD_OR_TYPE');
      });
    });

    /** Reads payments' store with no payments process running. */
    async function readStore<T>(location: StoreLocation, read: (payments: PaymentsRepository) => Promise<T>): Promise<T> {
      const store = await openStore<PaymentsDB>({ service: 'payments', telemetry: testTelemetry('payments'), ...location });
      try {
        return await read(new PaymentsRepository(store, { source: 'payments', committed: () => {} }));
      } finally {
        await store.close();
      }
    }

    /** A store two payments processes can share in turn: a file for SQLite (memory dies with the first). */
    async function shared(): Promise<StoreLocation> {
      if (backend.name === 'postgres') return backend.location();
      const dir = mkdtempSync(join(tmpdir(), 'payments-'));
      cleanups.unshift(() => rmSync(dir, { recursive: true, force: true }));
      return { sqlitePath: join(dir, 'payments.sqlite') };
    }
  });
}
