import { type Projection, type RecordedEvent, slotOf } from '@shop/eventstore';
import type { Kysely } from '@shop/store';
import { type Order, type RecordedOrderEvent, evolve, isOrderEventType, toOrderEvent } from '../domain';

/** An order's state as a row (order_view and customer_orders share the shape). */
export interface OrderRow {
  id: string;
  customer_id: string;
  status: string;
  lines: string;
  line_count: number;
  total: number;
  created_at: string;
  placed_at: string | null;
  cancelled_at: string | null;
  cancel_reason: string | null;
  checkout_id: string | null;
  rejection_reason: string | null;
  version: number;
  updated_at: string;
  /** The customer's slot (sharding): what a shard lists by and a slot move deletes by. */
  slot: number | null;
}

export interface OrderReadModels {
  order_view: OrderRow;
  customer_orders: OrderRow;
}

export const toRow = (o: Order): OrderRow => ({
  id: o.id,
  customer_id: o.customerId,
  status: o.status,
  lines: JSON.stringify(o.lines),
  line_count: o.lines.length,
  total: o.total,
  created_at: o.createdAt,
  placed_at: o.placedAt,
  cancelled_at: o.cancelledAt,
  cancel_reason: o.cancelReason,
  checkout_id: o.checkoutId,
  rejection_reason: o.rejectionReason,
  version: o.version,
  updated_at: o.updatedAt,
  slot: slotOf(o.customerId),
});

export const fromRow = (r: OrderRow): Order => ({
  id: r.id,
  customerId: r.customer_id,
  status: r.status as Order['status'],
  lines: JSON.parse(r.lines) as Order['lines'],
  total: Number(r.total),
  createdAt: r.created_at,
  placedAt: r.placed_at,
  cancelledAt: r.cancelled_at,
  cancelReason: r.cancel_reason,
  checkoutId: r.checkout_id ?? null,
  rejectionReason: r.rejection_reason ?? null,
  version: Number(r.version),
  updatedAt: r.updated_at,
});

/** A stored event as the domain sees it. */
export const toDomainEvent = (e: RecordedEvent): RecordedOrderEvent => ({
  ...toOrderEvent(e.type, e.data),
  version: e.version,
  recordedAt: e.recordedAt,
});

/**
 * A read model holding each order's state, kept by the domain's own `evolve`, so the projection,
 * time travel and the write side can never disagree about what an event means. Idempotent: an
 * event at or below the row's version is a no-op. Deterministic: times come from the events.
 */
function orderStateProjection(name: string, table: keyof OrderReadModels): Projection {
  // Both tables have the same columns; one code path serves either.
  const on = (trx: Kysely<never>) => trx as unknown as Kysely<Pick<OrderReadModels, 'order_view'>>;
  const t = table as 'order_view';
  return {
    name,
    async apply(trx, event) {
      // The store also holds checkout streams (checkout/projection.ts reads those).
      if (!isOrderEventType(event.type)) return;
      const db = on(trx);
      const row = await db.selectFrom(t).selectAll().where('id', '=', event.streamId).executeTakeFirst();
      if (row && Number(row.version) >= event.version) return;
      const next = toRow(evolve(row ? fromRow(row) : null, toDomainEvent(event)));
      const { id: _id, ...changes } = next;
      await db
        .insertInto(t)
        .values(next)
        .onConflict((oc) => oc.column('id').doUpdateSet(changes))
        .execute();
    },
    async reset(trx) {
      await on(trx).deleteFrom(t).execute();
    },
  };
}

/** The order view (Query.order, Order entities) and the per-customer summaries (User.orders). */
export const orderProjections: Projection[] = [
  orderStateProjection('order_view', 'order_view'),
  orderStateProjection('customer_orders', 'customer_orders'),
];
