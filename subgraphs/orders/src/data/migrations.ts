import { eventStoreMigrations } from '@shop/eventstore';
import type { Kysely, Migration } from '@shop/store';

/** The columns both order read models share: the order's state, flattened. */
function orderStateTable(db: Kysely<unknown>, name: string) {
  return (
    db.schema
      .createTable(name)
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('customer_id', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      // JSON: [{ productId, quantity, unitPrice }] in the order first added.
      .addColumn('lines', 'text', (c) => c.notNull())
      .addColumn('line_count', 'integer', (c) => c.notNull())
      .addColumn('total', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('placed_at', 'text')
      .addColumn('cancelled_at', 'text')
      .addColumn('cancel_reason', 'text')
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
  );
}

/**
 * orders' schema history. Append new migrations; never edit one that has shipped. The event store
 * (es_events, es_checkpoints) comes from @shop/eventstore; the outbox and inbox from @shop/events.
 */
export const migrations: Record<string, Migration> = {
  ...eventStoreMigrations,
  '0001_order_view': {
    async up(db: Kysely<unknown>) {
      // Query.order and Order entities: one row per order, by id.
      await orderStateTable(db, 'order_view').execute();
    },
  },
  '0002_customer_orders': {
    async up(db: Kysely<unknown>) {
      // User.orders: the order summaries of a customer, newest first.
      await orderStateTable(db, 'customer_orders').execute();
      await db.schema.createIndex('customer_orders_newest').on('customer_orders').columns(['customer_id', 'created_at', 'id']).execute();
    },
  },
  '0003_product_prices': {
    async up(db: Kysely<unknown>) {
      // The catalogue's prices as orders knows them, from products' events: a line's unitPrice
      // is captured from here, never by calling products.
      await db.schema
        .createTable('product_prices')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('price', 'integer', (c) => c.notNull())
        .addColumn('discontinued', 'integer', (c) => c.notNull().defaultTo(0))
        // products' aggregate version of the last event applied: older or repeated events are no-ops.
        .addColumn('source_version', 'integer', (c) => c.notNull())
        .execute();
    },
  },
  '0004_customers': {
    async up(db: Kysely<unknown>) {
      // The users orders knows of, from accounts' UserCreated: an order is refused for a customer
      // accounts never created, without calling accounts.
      await db.schema
        .createTable('customers')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .execute();
    },
  },
};
