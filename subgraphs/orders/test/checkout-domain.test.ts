// The checkout saga's decider on its own: every path through the plan, its compensations, its
// deadlines and the replies it must ignore. No store, no bus: events in, events out.
import {
  type CheckoutEvent,
  type CheckoutState,
  type Reply,
  type StepPolicy,
  decideReply,
  decideReverse,
  decideStart,
  decideTimeout,
  evolve,
} from '../src/checkout/domain';

const policy: StepPolicy = { stepTimeoutMs: 1000, maxStepTimeoutMs: 8000, maxAttempts: 3 };
const t0 = new Date('2026-01-01T00:00:00.000Z');
const later = (ms: number) => new Date(t0.getTime() + ms);

/** A checkout driven by a script of inputs; keeps the events and the state. */
class Saga {
  events: CheckoutEvent[] = [];
  state: CheckoutState = null;
  constructor() {
    this.apply(
      decideStart(
        {
          checkoutId: 'c1',
          orderId: 'o1',
          customerId: 'u1',
          idempotencyKey: 'k1',
          lines: [{ productId: 'p1', quantity: 2 }],
          amount: 500,
          currency: 'EUR',
        },
        t0,
        policy,
      ),
    );
  }
  apply(events: CheckoutEvent[]): CheckoutEvent[] {
    for (const e of events) {
      this.state = evolve(this.state, { ...e, version: (this.state?.version ?? 0) + 1 });
      this.events.push(e);
    }
    return events;
  }
  reply(reply: Reply, at = t0): CheckoutEvent[] {
    return this.apply(decideReply(this.state, reply, at, policy));
  }
  timeout(at: Date): CheckoutEvent[] {
    return this.apply(decideTimeout(this.state, at, policy));
  }
  /** The steps started, in order, with their attempts. */
  started(): string[] {
    return this.events.flatMap((e) => (e.type === 'CheckoutStepStarted' ? [`${e.data.step}#${e.data.attempt}`] : []));
  }
}

describe('the checkout decider', () => {
  it('goes reserve, authorize, commit, capture, then confirms', () => {
    const s = new Saga();
    s.reply({ kind: 'stockReserved' });
    s.reply({ kind: 'paymentAuthorized', paymentId: 'pay1' });
    s.reply({ kind: 'stockCommitted' });
    s.reply({ kind: 'paymentCaptured', paymentId: 'pay1' });
    expect(s.started()).toEqual(['reserveStock#1', 'authorizePayment#1', 'commitStock#1', 'capturePayment#1']);
    expect(s.state?.status).toBe('CONFIRMED');
    expect(s.state?.paymentId).toBe('pay1');
    expect(s.state?.steps.every((step) => step.status === 'DONE')).toBe(true);
    expect(s.state?.current).toBeNull();
  });

  it('rejects OUT_OF_STOCK with the short lines and has nothing to undo', () => {
    const s = new Saga();
    s.reply({ kind: 'stockReservationFailed', lines: [{ productId: 'p1', requested: 2, available: 1 }] });
    expect(s.state).toMatchObject({
      status: 'REJECTED',
      reason: 'OUT_OF_STOCK',
      outOfStock: [{ productId: 'p1', requested: 2, available: 1 }],
    });
    expect(s.started()).toEqual(['reserveStock#1']);
  });

  it('releases the stock after a decline, and voids as well when the provider was unavailable', () => {
    const declined = new Saga();
    declined.reply({ kind: 'stockReserved' });
    declined.reply({ kind: 'paymentDeclined', paymentId: 'pay1', reason: 'card declined' });
    expect(declined.started()).toEqual(['reserveStock#1', 'authorizePayment#1', 'releaseStock#1']);
    expect(declined.state?.status).toBe('COMPENSATING');
    declined.reply({ kind: 'stockReleased', expired: false });
    expect(declined.state).toMatchObject({ status: 'REJECTED', reason: 'PAYMENT_DECLINED' });

    const unavailable = new Saga();
    unavailable.reply({ kind: 'stockReserved' });
    unavailable.reply({ kind: 'paymentUnavailable', paymentId: 'pay1', reason: 'provider down' });
    unavailable.reply({ kind: 'paymentVoided', paymentId: 'pay1' });
    unavailable.reply({ kind: 'stockReleased', expired: false });
    expect(unavailable.started()).toEqual(['reserveStock#1', 'authorizePayment#1', 'voidPayment#1', 'releaseStock#1']);
    expect(unavailable.state).toMatchObject({ status: 'REJECTED', reason: 'PAYMENT_UNAVAILABLE' });
  });

  it('retries a step past its deadline with a doubled deadline, then fails it and compensates', () => {
    const s = new Saga();
    s.reply({ kind: 'stockReserved' });
    expect(s.timeout(later(500))).toEqual([]);
    s.timeout(later(1000));
    s.timeout(later(3000));
    expect(s.started()).toEqual(['reserveStock#1', 'authorizePayment#1', 'authorizePayment#2', 'authorizePayment#3']);
    // The third attempt's deadline: 3000 + 1000 * 2^2.
    expect(s.state?.deadline).toBe(later(7000).toISOString());
    s.timeout(later(7000));
    expect(s.state?.status).toBe('COMPENSATING');
    expect(s.state?.steps.find((step) => step.name === 'authorizePayment')).toMatchObject({ status: 'FAILED', attempts: 3 });
    expect(s.started().slice(-1)).toEqual(['voidPayment#1']);
  });

  it('retries the commit until inventory answers: a late commit must not take stock from a rejected order', () => {
    const s = new Saga();
    s.reply({ kind: 'stockReserved' });
    s.reply({ kind: 'paymentAuthorized', paymentId: 'pay1' });
    for (let i = 1; i <= 6; i++) s.timeout(later(100_000 * i));
    expect(s.state).toMatchObject({ status: 'RUNNING', current: 'commitStock' });
    // Inventory back after the hold: the reservation expired, the commit fails, the payment is voided.
    s.reply({ kind: 'stockCommitFailed', reason: 'RESERVATION_EXPIRED' });
    expect(s.state).toMatchObject({ status: 'COMPENSATING', reason: 'TIMED_OUT', current: 'voidPayment' });
  });

  it('retries compensations and capture without limit: they must happen', () => {
    const s = new Saga();
    s.reply({ kind: 'stockReserved' });
    s.reply({ kind: 'paymentAuthorized', paymentId: 'pay1' });
    s.reply({ kind: 'stockCommitted' });
    for (let i = 1; i <= 6; i++) s.timeout(later(100_000 * i));
    expect(s.state).toMatchObject({ status: 'RUNNING', current: 'capturePayment' });
    expect(s.state?.steps.at(-1)?.attempts).toBe(7);
  });

  it('fails with TIMED_OUT when the reservation expires while the payment is authorized, and voids', () => {
    const s = new Saga();
    s.reply({ kind: 'stockReserved' });
    s.reply({ kind: 'stockReleased', expired: true });
    expect(s.state).toMatchObject({ status: 'COMPENSATING', reason: 'TIMED_OUT', queue: [], current: 'voidPayment' });
    s.reply({ kind: 'paymentVoided', paymentId: 'pay1' });
    expect(s.state).toMatchObject({ status: 'REJECTED', reason: 'TIMED_OUT' });
  });

  it('voids the payment when the commit finds the reservation gone', () => {
    const s = new Saga();
    s.reply({ kind: 'stockReserved' });
    s.reply({ kind: 'paymentAuthorized', paymentId: 'pay1' });
    s.reply({ kind: 'stockCommitFailed', reason: 'RESERVATION_EXPIRED' });
    expect(s.started().slice(-1)).toEqual(['voidPayment#1']);
    s.reply({ kind: 'paymentVoided', paymentId: 'pay1' });
    expect(s.state).toMatchObject({ status: 'REJECTED', reason: 'TIMED_OUT' });
  });

  it('ignores replies that are late, repeated or for another step', () => {
    const s = new Saga();
    s.reply({ kind: 'stockReserved' });
    const version = s.state?.version;
    expect(s.reply({ kind: 'stockReserved' })).toEqual([]);
    expect(s.reply({ kind: 'paymentCaptured', paymentId: 'x' })).toEqual([]);
    expect(s.reply({ kind: 'stockReleased', expired: false })).toEqual([]);
    expect(s.state?.version).toBe(version);
    // After a timeout moved it to compensation, the authorization that finally arrives changes nothing.
    s.timeout(later(1000));
    s.timeout(later(3000));
    s.timeout(later(7000));
    expect(s.reply({ kind: 'paymentAuthorized', paymentId: 'pay1' })).toEqual([]);
    expect(s.state?.current).toBe('voidPayment');
  });

  it('reverses a confirmed checkout (refund, restock), and nothing else', () => {
    const s = new Saga();
    expect(decideReverse(s.state, t0, policy)).toEqual([]);
    s.reply({ kind: 'stockReserved' });
    s.reply({ kind: 'paymentAuthorized', paymentId: 'pay1' });
    s.reply({ kind: 'stockCommitted' });
    s.reply({ kind: 'paymentCaptured', paymentId: 'pay1' });
    s.apply(decideReverse(s.state, t0, policy));
    expect(s.state).toMatchObject({ status: 'REVERSING', current: 'refundPayment' });
    s.reply({ kind: 'paymentRefunded', paymentId: 'pay1' });
    s.reply({ kind: 'stockRestocked' });
    expect(s.state?.status).toBe('REVERSED');
    expect(s.started().slice(-2)).toEqual(['refundPayment#1', 'restock#1']);
  });
});
