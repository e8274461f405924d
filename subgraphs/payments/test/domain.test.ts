import {
  type Operation,
  type Payment,
  type PaymentStatus,
  PAYMENT_STATUSES,
  afterCall,
  afterResolve,
  giveUp,
  idempotencyKey,
  paymentIdFor,
  plan,
  retryDelayMs,
  stateReply,
} from '../src/domain';
import { chance } from '../src/provider/simulator';

const payment = (status: PaymentStatus, extra: Partial<Payment> = {}): Payment => ({
  id: 'pay_1',
  checkoutId: 'c1',
  orderId: 'o1',
  amount: 1234,
  currency: 'EUR',
  status,
  reason: status === 'DECLINED' ? 'CARD_DECLINED' : status === 'FAILED' ? 'PROVIDER_UNAVAILABLE' : null,
  authorization: status === 'PENDING' || status === 'DECLINED' || status === 'FAILED' ? null : 'auth_1',
  unresolved: false,
  ...extra,
});
const ids = { checkoutId: 'c1', orderId: 'o1', paymentId: 'pay_1' };

describe('the payment state machine (plan: which call a command needs in each state)', () => {
  // Given a payment in a state, when an operation comes, then this call, or this answer without one.
  const table: Record<Operation, Record<PaymentStatus, string>> = {
    authorize: {
      PENDING: 'call authorize',
      AUTHORIZED: 'PaymentAuthorized',
      CAPTURED: 'PaymentCaptured',
      VOIDED: 'PaymentVoided',
      REFUNDED: 'PaymentRefunded',
      DECLINED: 'PaymentDeclined',
      FAILED: 'PaymentUnavailable',
    },
    capture: {
      PENDING: 'wait',
      AUTHORIZED: 'call capture',
      CAPTURED: 'PaymentCaptured',
      VOIDED: 'PaymentVoided',
      REFUNDED: 'PaymentRefunded',
      DECLINED: 'PaymentDeclined',
      FAILED: 'PaymentUnavailable',
    },
    void: {
      PENDING: 'wait',
      AUTHORIZED: 'call void',
      // A void never undoes a capture: the saga hears it was captured, and must refund.
      CAPTURED: 'PaymentCaptured',
      VOIDED: 'PaymentVoided',
      REFUNDED: 'PaymentRefunded',
      // Nothing is held: voided, as far as the saga is concerned.
      DECLINED: 'PaymentVoided',
      FAILED: 'PaymentVoided',
    },
    refund: {
      PENDING: 'wait',
      // Never captured: releasing the hold is the refund.
      AUTHORIZED: 'call void',
      CAPTURED: 'call refund',
      VOIDED: 'PaymentVoided',
      REFUNDED: 'PaymentRefunded',
      DECLINED: 'PaymentDeclined',
      FAILED: 'PaymentUnavailable',
    },
    reconcile: {
      PENDING: 'nothing',
      AUTHORIZED: 'nothing',
      CAPTURED: 'nothing',
      VOIDED: 'nothing',
      REFUNDED: 'nothing',
      DECLINED: 'nothing',
      FAILED: 'nothing',
    },
  };
  const describePlan = (operation: Operation, p: Payment): string => {
    const step = plan(operation, p);
    if (step.kind === 'call') return `call ${step.call}`;
    if (step.kind === 'answer') return step.reply?.type ?? 'nothing';
    return step.kind;
  };

  it.each(Object.keys(table) as Operation[])('%s in every state', (operation) => {
    for (const status of PAYMENT_STATUSES)
      expect([status, describePlan(operation, payment(status))]).toEqual([status, table[operation][status]]);
  });

  it('a FAILED payment whose outcome is unknown is resolved (by status, never another authorize) before a void answers', () => {
    const unresolved = payment('FAILED', { unresolved: true });
    expect(plan('void', unresolved)).toEqual({ kind: 'resolve' });
    expect(plan('reconcile', unresolved)).toEqual({ kind: 'resolve' });
    expect(plan('authorize', unresolved)).toEqual({
      kind: 'answer',
      reply: { type: 'PaymentUnavailable', payload: { ...ids, reason: 'PROVIDER_UNAVAILABLE' } },
    });
    expect(plan('capture', unresolved).kind).toBe('answer');
  });
});

describe('outcomes', () => {
  it('an approved authorization records the provider id and replies PaymentAuthorized with the amount', () => {
    const next = afterCall(payment('PENDING'), 'authorize', { outcome: 'approved', reference: 'auth_9' });
    expect(next.payment).toMatchObject({ status: 'AUTHORIZED', authorization: 'auth_9' });
    expect(next.reply).toEqual({ type: 'PaymentAuthorized', payload: { ...ids, amount: 1234 } });
  });

  it('a declined authorization is DECLINED with the reason', () => {
    const next = afterCall(payment('PENDING'), 'authorize', { outcome: 'declined', reason: 'INSUFFICIENT_FUNDS' });
    expect(next.payment).toMatchObject({ status: 'DECLINED', reason: 'INSUFFICIENT_FUNDS' });
    expect(next.reply).toEqual({ type: 'PaymentDeclined', payload: { ...ids, reason: 'INSUFFICIENT_FUNDS' } });
  });

  it('capture, void and refund move the payment on and say so', () => {
    const approved = { outcome: 'approved', reference: 'x' } as const;
    expect(afterCall(payment('AUTHORIZED'), 'capture', approved).reply).toEqual({
      type: 'PaymentCaptured',
      payload: { ...ids, amount: 1234 },
    });
    expect(afterCall(payment('AUTHORIZED'), 'void', approved).reply).toEqual({ type: 'PaymentVoided', payload: ids });
    expect(afterCall(payment('CAPTURED'), 'refund', approved).reply).toEqual({
      type: 'PaymentRefunded',
      payload: { ...ids, amount: 1234 },
    });
    // The authorization's id is kept: it is what the provider knows the payment by.
    expect(afterCall(payment('AUTHORIZED'), 'capture', approved).payment.authorization).toBe('auth_1');
  });

  it('giving up is FAILED and PaymentUnavailable; unresolved only when a call may have reached the provider', () => {
    expect(giveUp(payment('PENDING'), true)).toEqual({
      payment: expect.objectContaining({ status: 'FAILED', unresolved: true }),
      reply: { type: 'PaymentUnavailable', payload: { ...ids, reason: 'PROVIDER_UNAVAILABLE' } },
    });
    expect(giveUp(payment('PENDING'), false).payment.unresolved).toBe(false);
  });

  it('resolving keeps FAILED (what the saga was told), notes a voided authorization, and answers a void', () => {
    const failed = payment('FAILED', { unresolved: true });
    const found = afterResolve(failed, 'reconcile', { authorization: 'auth_7', voided: true });
    expect(found.payment).toMatchObject({ status: 'FAILED', unresolved: false, authorization: 'auth_7' });
    expect(found.payment.reason).toMatch(/voided/);
    expect(found.reply).toBeNull();
    expect(afterResolve(failed, 'void', null).reply).toEqual({ type: 'PaymentVoided', payload: ids });
    expect(stateReply(payment('PENDING'))).toBeNull();
  });
});

describe('keys and pacing', () => {
  it('derives the provider key from the checkout and the call, never the attempt', () => {
    expect(idempotencyKey('c1', 'authorize')).toBe('c1:authorize');
    expect(idempotencyKey('c1', 'capture')).not.toBe(idempotencyKey('c1', 'authorize'));
    expect(paymentIdFor('c1')).toBe(paymentIdFor('c1'));
    expect(paymentIdFor('c1')).not.toBe(paymentIdFor('c2'));
    expect(paymentIdFor('c1')).toMatch(/^pay_[0-9a-f]{24}$/);
  });

  it('backs off exponentially with jitter, within the cap', () => {
    expect([1, 2, 3, 4].map((n) => retryDelayMs(n, 0, 100, 5000))).toEqual([50, 100, 200, 400]);
    expect([1, 2, 3, 4].map((n) => retryDelayMs(n, 0.999, 100, 5000))).toEqual([100, 200, 400, 800]);
    expect(retryDelayMs(30, 0.5, 100, 5000)).toBeLessThanOrEqual(5000);
    expect(retryDelayMs(30, 0, 100, 5000)).toBe(2500);
  });

  it("the simulator's dice are a function of the seed and the parts only", () => {
    expect(chance('s', 'c1:authorize', 'decline')).toBe(chance('s', 'c1:authorize', 'decline'));
    expect(chance('s', 'c1:authorize', 'decline')).not.toBe(chance('t', 'c1:authorize', 'decline'));
    const rolls = Array.from({ length: 2000 }, (_, i) => chance('s', `k${i}`));
    expect(Math.min(...rolls)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...rolls)).toBeLessThan(1);
    // Roughly uniform: a 30% rate declines about 30%.
    expect(rolls.filter((r) => r < 0.3).length / rolls.length).toBeGreaterThan(0.25);
    expect(rolls.filter((r) => r < 0.3).length / rolls.length).toBeLessThan(0.35);
  });
});
