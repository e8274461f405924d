// The checkout saga's messages (#15): commands orders' orchestrator sends to inventory and
// payments, and their replies. They travel as ordinary events, through each service's outbox,
// the bus and the receiver's inbox, so a message is neither lost (outbox, same transaction as the
// state change) nor applied twice (inbox). Every command carries the checkout's id; a receiver
// handles a command it has seen before by answering again with the outcome it recorded, never by
// doing the work twice. `aggregateId` of every message is the checkout id, so a group receives
// one checkout's messages in the order they were sent.
//
// One schema per message, in zod, shared by the sender and the receiver: a payload that does not
// parse is a PermanentError (dead letters), not a retry loop.
import { z } from 'zod';
import { type EventEnvelope, PermanentError } from './types';

/** Commands: orders → inventory. */
export const RESERVE_STOCK = 'ReserveStockRequested';
export const COMMIT_STOCK = 'CommitStockRequested';
export const RELEASE_STOCK = 'ReleaseStockRequested';
/** After a confirmed order is cancelled: put the committed units back on hand. */
export const RESTOCK = 'RestockRequested';

/** Replies: inventory → orders. */
export const STOCK_RESERVED = 'StockReserved';
export const STOCK_RESERVATION_FAILED = 'StockReservationFailed';
export const STOCK_COMMITTED = 'StockCommitted';
/** The reservation was gone (expired and swept, or released) when the commit came. */
export const STOCK_COMMIT_FAILED = 'StockCommitFailed';
export const STOCK_RELEASED = 'StockReleased';
export const STOCK_RESTOCKED = 'StockRestocked';

/** Commands: orders → payments. */
export const AUTHORIZE_PAYMENT = 'AuthorizePaymentRequested';
export const CAPTURE_PAYMENT = 'CapturePaymentRequested';
export const VOID_PAYMENT = 'VoidPaymentRequested';
export const REFUND_PAYMENT = 'RefundPaymentRequested';

/** Replies: payments → orders. */
export const PAYMENT_AUTHORIZED = 'PaymentAuthorized';
export const PAYMENT_DECLINED = 'PaymentDeclined';
/** The provider could not be reached (or kept timing out) within payments' own retries. */
export const PAYMENT_UNAVAILABLE = 'PaymentUnavailable';
export const PAYMENT_CAPTURED = 'PaymentCaptured';
export const PAYMENT_VOIDED = 'PaymentVoided';
export const PAYMENT_REFUNDED = 'PaymentRefunded';

const id = z.string().min(1).max(200);
const cents = z.number().int().min(0);
const line = z.object({ productId: id, quantity: z.number().int().min(1) });
const base = { checkoutId: id, orderId: id };
const payment = { ...base, paymentId: id };

/** Payloads, by message type, as zod schemas: the receiver parses what the sender wrote. Amounts are integer cents. */
export const checkoutSchemas = {
  [RESERVE_STOCK]: z.object({ ...base, lines: z.array(line).min(1), expiresAt: z.string() }),
  [COMMIT_STOCK]: z.object(base),
  [RELEASE_STOCK]: z.object(base),
  [RESTOCK]: z.object(base),

  [STOCK_RESERVED]: z.object({ ...base, expiresAt: z.string() }),
  [STOCK_RESERVATION_FAILED]: z.object({
    ...base,
    reason: z.literal('OUT_OF_STOCK'),
    /** The lines that could not be had: what was asked and what was available then. */
    lines: z.array(z.object({ productId: id, requested: z.number().int(), available: z.number().int() })),
  }),
  [STOCK_COMMITTED]: z.object(base),
  [STOCK_COMMIT_FAILED]: z.object({ ...base, reason: z.enum(['RESERVATION_EXPIRED', 'RESERVATION_RELEASED', 'NO_RESERVATION']) }),
  /** `expired`: the sweeper released it (also sent unasked, so the saga learns of it). */
  [STOCK_RELEASED]: z.object({ ...base, expired: z.boolean() }),
  [STOCK_RESTOCKED]: z.object(base),

  [AUTHORIZE_PAYMENT]: z.object({
    ...base,
    customerId: id,
    amount: cents,
    currency: z.string().length(3),
    /** The client's idempotency key of the checkout, for the record; the provider's keys derive from the checkout id. */
    idempotencyKey: id,
  }),
  [CAPTURE_PAYMENT]: z.object(base),
  [VOID_PAYMENT]: z.object(base),
  [REFUND_PAYMENT]: z.object(base),

  [PAYMENT_AUTHORIZED]: z.object({ ...payment, amount: cents }),
  [PAYMENT_DECLINED]: z.object({ ...payment, reason: z.string() }),
  [PAYMENT_UNAVAILABLE]: z.object({ ...payment, reason: z.string() }),
  [PAYMENT_CAPTURED]: z.object({ ...payment, amount: cents }),
  [PAYMENT_VOIDED]: z.object(payment),
  [PAYMENT_REFUNDED]: z.object({ ...payment, amount: cents }),
} as const;

export type CheckoutMessages = { [K in keyof typeof checkoutSchemas]: z.infer<(typeof checkoutSchemas)[K]> };

export type CheckoutMessageType = keyof CheckoutMessages;

/** The commands each receiver handles, and the replies orders' orchestrator handles. */
export const INVENTORY_COMMANDS = [RESERVE_STOCK, COMMIT_STOCK, RELEASE_STOCK, RESTOCK] as const;
export const PAYMENT_COMMANDS = [AUTHORIZE_PAYMENT, CAPTURE_PAYMENT, VOID_PAYMENT, REFUND_PAYMENT] as const;
export const CHECKOUT_REPLIES = [
  STOCK_RESERVED,
  STOCK_RESERVATION_FAILED,
  STOCK_COMMITTED,
  STOCK_COMMIT_FAILED,
  STOCK_RELEASED,
  STOCK_RESTOCKED,
  PAYMENT_AUTHORIZED,
  PAYMENT_DECLINED,
  PAYMENT_UNAVAILABLE,
  PAYMENT_CAPTURED,
  PAYMENT_VOIDED,
  PAYMENT_REFUNDED,
] as const;

/** A message to append to the outbox (`appendEvents`): its aggregate is the checkout. */
export function checkoutMessage<T extends CheckoutMessageType>(
  type: T,
  payload: CheckoutMessages[T],
): { type: T; aggregateId: string; payload: CheckoutMessages[T] & Record<string, unknown> } {
  return { type, aggregateId: payload.checkoutId, payload: payload };
}

/** The payload of a received checkout message, parsed; one that does not parse can never succeed (dead letters). */
export function parseCheckoutMessage<T extends CheckoutMessageType>(type: T, event: EventEnvelope): CheckoutMessages[T] {
  const result = checkoutSchemas[type].safeParse(event.payload);
  if (!result.success)
    throw new PermanentError(`${type} ${event.id}: ${result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return result.data as CheckoutMessages[T];
}
