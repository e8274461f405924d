import { isOwnerOr, unauthorizedField } from '@shop/server';
import type { Context } from './context';
import type { PaymentRow } from './data/repository';
import type { Resolvers } from './generated/graphql';

/** Reads every customer's payments (support staff; an admin's token carries it too). */
const ORDERS_ADMIN = 'orders:admin';

/**
 * A payment the caller may read, as it is; else null at its path with UNAUTHORIZED_FIELD_OR_TYPE.
 * Anonymous callers are refused before any lookup, as the gateway's `self` policy refuses them.
 */
async function visible(ctx: Context, what: string, load: () => Promise<PaymentRow | null>): Promise<PaymentRow | null> {
  if (!ctx.viewer) throw unauthorizedField(what);
  const payment = await load();
  // A payment recorded without a customer (a checkout voided before it asked for one) is staff's only.
  if (payment && !isOwnerOr(ctx.viewer, payment.customerId ?? '', ORDERS_ADMIN)) throw unauthorizedField(what);
  return payment;
}

export const resolvers: Resolvers = {
  // Payments are driven by the checkout saga's commands only: no Query fields, no mutations.
  Payment: {
    // Entity resolution is a way in too (`_entities`): the same check as Order.payment.
    __resolveReference: (ref, ctx) => visible(ctx, 'Payment', () => ctx.loaders.payment.load(ref.id)),
    // orders owns the order: answer with a reference, never a store read.
    order: (payment) => ({ id: payment.orderId }),
  },
  Order: {
    __resolveReference: (ref) => ({ id: ref.id }),
    payment: (order, _, ctx) => visible(ctx, 'Order.payment', () => ctx.loaders.paymentByOrder.load(order.id)),
  },
};
