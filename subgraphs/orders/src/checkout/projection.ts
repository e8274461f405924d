import { type Projection, slotOf } from '@shop/eventstore';
import type { Kysely } from '@shop/store';
import { type Checkout, type ShortLine, type Step, evolve, isCheckoutEventType, toCheckoutEvent } from './domain';

/** A checkout's state as a row of `checkout_view`. */
export interface CheckoutRow {
  id: string;
  order_id: string;
  customer_id: string;
  status: string;
  reason: string | null;
  out_of_stock: string | null;
  steps: string;
  idempotency_key: string;
  amount: number;
  deadline: string | null;
  started_at: string;
  ended_at: string | null;
  version: number;
  /** The customer's slot (sharding): what a slot move deletes by. */
  slot: number | null;
}

export interface CheckoutTables {
  checkout_view: CheckoutRow;
  checkout_keys: { customer_id: string; idempotency_key: string; checkout_id: string; order_id: string; slot: number | null };
  checkout_timers: { checkout_id: string; due_at: string; step: string; slot: number | null };
}

/** What `Order.checkout` shows: the row, read back. */
export interface CheckoutView {
  id: string;
  orderId: string;
  customerId: string;
  status: Checkout['status'];
  reason: Checkout['reason'];
  outOfStock: ShortLine[] | null;
  steps: Step[];
  idempotencyKey: string;
  amount: number;
  deadline: string | null;
  startedAt: string;
  endedAt: string | null;
  version: number;
}

export const viewOf = (r: CheckoutRow): CheckoutView => ({
  id: r.id,
  orderId: r.order_id,
  customerId: r.customer_id,
  status: r.status as Checkout['status'],
  reason: r.reason as Checkout['reason'],
  outOfStock: r.out_of_stock ? (JSON.parse(r.out_of_stock) as ShortLine[]) : null,
  steps: JSON.parse(r.steps) as Step[],
  idempotencyKey: r.idempotency_key,
  amount: Number(r.amount),
  deadline: r.deadline,
  startedAt: r.started_at,
  endedAt: r.ended_at,
  version: Number(r.version),
});

const rowOf = (c: Checkout): CheckoutRow => ({
  id: c.id,
  order_id: c.orderId,
  customer_id: c.customerId,
  status: c.status,
  reason: c.reason,
  out_of_stock: c.outOfStock ? JSON.stringify(c.outOfStock) : null,
  steps: JSON.stringify(c.steps),
  idempotency_key: c.idempotencyKey,
  amount: c.amount,
  deadline: c.deadline,
  started_at: c.startedAt,
  ended_at: c.endedAt,
  version: c.version,
  slot: slotOf(c.customerId),
});

/** A checkout's state as `Order.checkout` shows it (what its row would read back as). */
export const checkoutViewOf = (c: Checkout): CheckoutView => viewOf(rowOf(c));

/** Reads a row back into the state the decider folds (for the projection's next event). */
function stateOf(r: CheckoutRow, lines: Checkout['lines']): Checkout {
  const v = viewOf(r);
  return {
    id: v.id,
    orderId: v.orderId,
    customerId: v.customerId,
    idempotencyKey: v.idempotencyKey,
    lines,
    amount: v.amount,
    currency: 'EUR',
    status: v.status,
    reason: v.reason,
    outOfStock: v.outOfStock,
    steps: v.steps,
    current: null,
    deadline: v.deadline,
    queue: [],
    paymentId: null,
    startedAt: v.startedAt,
    endedAt: v.endedAt,
    version: v.version,
  };
}

/**
 * `checkout_view`: each checkout as `Order.checkout` shows it, kept from the checkout streams by
 * the same `evolve` the orchestrator decides with. Only the shown columns are stored, so the
 * projection folds each event into the state rebuilt from the stream when the row cannot say
 * enough (the current step and the compensation queue are the orchestrator's, read from the
 * stream itself, never from here).
 */
export const checkoutProjection: Projection = {
  name: 'checkout_view',
  async apply(trx, event) {
    if (!isCheckoutEventType(event.type)) return;
    const db = trx as unknown as Kysely<CheckoutTables>;
    const checkoutId = event.streamId.slice('checkout:'.length);
    const row = await db.selectFrom('checkout_view').selectAll().where('id', '=', checkoutId).executeTakeFirst();
    if (row && Number(row.version) >= event.version) return;
    const next = rowOf(evolve(row ? stateOf(row, []) : null, toCheckoutEvent(event.type, event.data, event.version)));
    const { id: _id, ...changes } = next;
    await db
      .insertInto('checkout_view')
      .values(next)
      .onConflict((oc) => oc.column('id').doUpdateSet(changes))
      .execute();
  },
  async reset(trx) {
    await (trx as unknown as Kysely<CheckoutTables>).deleteFrom('checkout_view').execute();
  },
};
