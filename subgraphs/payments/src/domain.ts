// payments' rules, pure: which provider call (if any) a command needs in the payment's current
// state, what the provider's answer makes of the payment, and what the checkout saga is told.
//
// The state machine (the provider's calls in brackets):
//
//   PENDING --[authorize: approved]--> AUTHORIZED --[capture]--> CAPTURED --[refund]--> REFUNDED
//      |                                  |
//      |--[authorize: declined]--> DECLINED   `--[void]--> VOIDED
//      `--(no answer after PSP_MAX_ATTEMPTS calls)--> FAILED (PaymentUnavailable)
//
// A command that does not apply in the payment's state calls nothing and is answered with the
// message of the state the payment is in (a capture of a DECLINED payment: PaymentDeclined; of a
// FAILED one: PaymentUnavailable; a void after a capture: PaymentCaptured, for the saga must refund
// instead), so the saga always learns where the money stands. Two exceptions say what the saga
// wants to know: a void of a payment that holds nothing (DECLINED, FAILED) is PaymentVoided, and a
// refund of a payment that was authorized but never captured releases the hold (a void) and is
// PaymentVoided.
//
// FAILED with an unknown outcome (the last calls timed out, so the provider may have authorized
// after all) is `unresolved`: payments keeps asking the provider for the authorization's status
// (a reconcile operation, never another authorize) and voids what it finds authorized. A void of
// such a payment does the same before it answers PaymentVoided, so "voided" is never said of money
// that is still held.
import { createHash } from 'node:crypto';
import {
  type CheckoutMessages,
  PAYMENT_AUTHORIZED,
  PAYMENT_CAPTURED,
  PAYMENT_DECLINED,
  PAYMENT_REFUNDED,
  PAYMENT_UNAVAILABLE,
  PAYMENT_VOIDED,
} from '@shop/events';

export const PAYMENT_STATUSES = ['PENDING', 'AUTHORIZED', 'CAPTURED', 'VOIDED', 'REFUNDED', 'DECLINED', 'FAILED'] as const;
export type PaymentStatus = (typeof PAYMENT_STATUSES)[number];

/** The calls payments makes to the provider, each under its own idempotency key. */
export type ProviderCall = 'authorize' | 'capture' | 'void' | 'refund';

/**
 * What payments was asked to do (one per checkout and kind: a second command of a kind is a
 * duplicate), plus `reconcile`, which payments gives itself after a FAILED authorization whose
 * outcome is unknown.
 */
export type Operation = ProviderCall | 'reconcile';

/** A payment as the rules see it. */
export interface Payment {
  id: string;
  checkoutId: string;
  orderId: string;
  amount: number;
  currency: string;
  status: PaymentStatus;
  /** Why it was DECLINED or FAILED. */
  reason: string | null;
  /** The provider's id of the authorization (what capture, void and refund act on). */
  authorization: string | null;
  /** FAILED while the provider may have authorized after all: not yet asked successfully. */
  unresolved: boolean;
}

/** The replies payments sends to the checkout saga. */
export type PaymentReplyType =
  | typeof PAYMENT_AUTHORIZED
  | typeof PAYMENT_DECLINED
  | typeof PAYMENT_UNAVAILABLE
  | typeof PAYMENT_CAPTURED
  | typeof PAYMENT_VOIDED
  | typeof PAYMENT_REFUNDED;

/** One reply, its type and payload paired. */
export type PaymentReply = { [T in PaymentReplyType]: { type: T; payload: CheckoutMessages[T] } }[PaymentReplyType];

/** What the provider answered to a call that it did process. */
export type ProviderResult = { outcome: 'approved'; reference: string } | { outcome: 'declined'; reason: string };

/** The reason a FAILED payment gives: the provider did not answer in time. */
export const PROVIDER_UNAVAILABLE = 'PROVIDER_UNAVAILABLE';
/** The reason an authorize gets for a checkout that was voided before it asked. */
export const VOIDED_BEFORE_AUTHORIZATION = 'VOIDED_BEFORE_AUTHORIZATION';

/** A payment's id, from its checkout's: a redelivered authorize finds the same payment. */
export function paymentIdFor(checkoutId: string): string {
  return `pay_${createHash('sha256').update(checkoutId).digest('hex').slice(0, 24)}`;
}

/**
 * The provider's idempotency key for a call: the checkout and the call, never the attempt. Asking
 * again under the same key returns the provider's recorded answer; it never charges twice.
 */
export function idempotencyKey(checkoutId: string, call: ProviderCall): string {
  return `${checkoutId}:${call}`;
}

const ids = (p: Payment) => ({ checkoutId: p.checkoutId, orderId: p.orderId, paymentId: p.id });

/** The message that says where the payment stands; null while its authorization is pending. */
export function stateReply(p: Payment): PaymentReply | null {
  switch (p.status) {
    case 'PENDING':
      return null;
    case 'AUTHORIZED':
      return { type: PAYMENT_AUTHORIZED, payload: { ...ids(p), amount: p.amount } };
    case 'CAPTURED':
      return { type: PAYMENT_CAPTURED, payload: { ...ids(p), amount: p.amount } };
    case 'VOIDED':
      return voidedReply(p);
    case 'REFUNDED':
      return { type: PAYMENT_REFUNDED, payload: { ...ids(p), amount: p.amount } };
    case 'DECLINED':
      return { type: PAYMENT_DECLINED, payload: { ...ids(p), reason: p.reason ?? 'DECLINED' } };
    case 'FAILED':
      return { type: PAYMENT_UNAVAILABLE, payload: { ...ids(p), reason: p.reason ?? PROVIDER_UNAVAILABLE } };
  }
}

/** PaymentVoided: the payment holds nothing. */
export function voidedReply(p: Payment): PaymentReply {
  return { type: PAYMENT_VOIDED, payload: ids(p) };
}

/** What an operation needs, in the payment's current state. */
export type Plan =
  /** Call the provider, then {@link afterCall}. */
  | { kind: 'call'; call: ProviderCall }
  /** Ask the provider about the authorization of a FAILED payment and void it if it exists, then {@link afterResolve}. */
  | { kind: 'resolve' }
  /** Nothing to ask the provider: record the operation with this reply (none for `reconcile`). */
  | { kind: 'answer'; reply: PaymentReply | null }
  /** Not yet: the authorization is still pending (the worker runs a payment's operations in order, so this is a safeguard). */
  | { kind: 'wait' };

/** Which call, if any, `operation` needs while the payment is in its current state; see the state machine above. */
export function plan(operation: Operation, p: Payment): Plan {
  if (operation === 'authorize') return p.status === 'PENDING' ? { kind: 'call', call: 'authorize' } : answer(stateReply(p));
  if (operation === 'reconcile') return p.status === 'FAILED' && p.unresolved ? { kind: 'resolve' } : answer(null);
  if (p.status === 'PENDING') return { kind: 'wait' };
  switch (operation) {
    case 'capture':
      return p.status === 'AUTHORIZED' ? { kind: 'call', call: 'capture' } : answer(stateReply(p));
    case 'void':
      if (p.status === 'AUTHORIZED') return { kind: 'call', call: 'void' };
      if (p.status === 'FAILED' && p.unresolved) return { kind: 'resolve' };
      return answer(p.status === 'DECLINED' || p.status === 'FAILED' ? voidedReply(p) : stateReply(p));
    case 'refund':
      if (p.status === 'CAPTURED') return { kind: 'call', call: 'refund' };
      // Never captured: giving the money back is releasing the hold.
      if (p.status === 'AUTHORIZED') return { kind: 'call', call: 'void' };
      return answer(stateReply(p));
  }
}

const answer = (reply: PaymentReply | null): Plan => ({ kind: 'answer', reply });

/** The payment after the provider processed `call`, and the reply to the operation that made it. */
export function afterCall(p: Payment, call: ProviderCall, result: ProviderResult): { payment: Payment; reply: PaymentReply | null } {
  if (result.outcome === 'declined') {
    if (call === 'authorize') {
      const payment: Payment = { ...p, status: 'DECLINED', reason: result.reason };
      return { payment, reply: stateReply(payment) };
    }
    // A provider refusing a capture, void or refund leaves the money where it was; the saga hears why.
    return { payment: p, reply: { type: PAYMENT_DECLINED, payload: { ...ids(p), reason: result.reason } } };
  }
  const status: Record<ProviderCall, PaymentStatus> = { authorize: 'AUTHORIZED', capture: 'CAPTURED', void: 'VOIDED', refund: 'REFUNDED' };
  const payment: Payment = {
    ...p,
    status: status[call],
    authorization: call === 'authorize' ? result.reference : p.authorization,
  };
  return { payment, reply: stateReply(payment) };
}

/**
 * A FAILED payment once the provider said what became of its authorization: nothing (or a
 * decline), or an authorization that payments has now voided (`voided`). It stays FAILED, which is
 * what the checkout was told; nothing is held any more.
 */
export function afterResolve(
  p: Payment,
  operation: Operation,
  found: { authorization: string; voided: true } | null,
): { payment: Payment; reply: PaymentReply | null } {
  const payment: Payment = {
    ...p,
    unresolved: false,
    authorization: found?.authorization ?? p.authorization,
    reason: found ? `${p.reason ?? PROVIDER_UNAVAILABLE}; the provider had authorized after all: voided` : p.reason,
  };
  return { payment, reply: operation === 'void' ? voidedReply(payment) : null };
}

/**
 * An authorization that got no answer within its attempts: FAILED, and the checkout hears
 * PaymentUnavailable. `uncertain`: a call may have reached the provider, so the payment is
 * unresolved until the provider says what became of it.
 */
export function giveUp(p: Payment, uncertain: boolean): { payment: Payment; reply: PaymentReply | null } {
  const payment: Payment = { ...p, status: 'FAILED', reason: PROVIDER_UNAVAILABLE, unresolved: uncertain };
  return { payment, reply: stateReply(payment) };
}

/**
 * The pause before attempt `attempt + 1` of a provider call: exponential from `baseMs`, at most
 * `maxMs`, with "equal jitter" (half fixed, half random) so that many payments failing together
 * do not retry together. `random` is in [0, 1).
 */
export function retryDelayMs(attempt: number, random: number, baseMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (ceiling / 2) * random);
}
