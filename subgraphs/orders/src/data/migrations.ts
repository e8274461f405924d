import { eventStoreMigrations, slotOf } from '@shop/eventstore';
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
 * The slot map's tables: in the first shard's store (every shard has them; only the map's is
 * used), or alone in a store of their own (`ORDERS_SLOT_MAP`).
 */
export const slotMapMigrations: Record<string, Migration> = {
  '0007_slot_map': {
    async up(db: Kysely<unknown>) {
      // The shards, which shard owns each slot, the map's version, and the moves.
      await db.schema
        .createTable('orders_shards')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('location', 'text', (c) => c.notNull())
        .addColumn('added_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('orders_slot_map')
        .addColumn('slot', 'integer', (c) => c.primaryKey())
        .addColumn('shard', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('orders_map_version')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('orders_slot_moves')
        .addColumn('id', 'text', (c) => c.primaryKey())
        // Comma-separated slot numbers.
        .addColumn('slots', 'text', (c) => c.notNull())
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('target', 'text', (c) => c.notNull())
        // planned, copying, fenced, flipped, done, aborted
        .addColumn('step', 'text', (c) => c.notNull())
        // The source's es_events position copied up to.
        .addColumn('copied_position', 'bigint', (c) => c.notNull())
        .addColumn('events_copied', 'integer', (c) => c.notNull())
        .addColumn('fenced_at', 'text')
        .addColumn('fence_ms', 'integer')
        .addColumn('started_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
    },
  },
};

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
  '0005_checkouts': {
    async up(db: Kysely<unknown>) {
      // The order's latest checkout and why it was rejected, in both order read models.
      for (const table of ['order_view', 'customer_orders']) {
        await db.schema.alterTable(table).addColumn('checkout_id', 'text').execute();
        await db.schema.alterTable(table).addColumn('rejection_reason', 'text').execute();
      }
      // Order.checkout: each checkout's state, kept from its events (checkout/projection.ts).
      await db.schema
        .createTable('checkout_view')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('order_id', 'text', (c) => c.notNull())
        .addColumn('customer_id', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('reason', 'text')
        // JSON: the short lines of an OUT_OF_STOCK rejection, and every step run.
        .addColumn('out_of_stock', 'text')
        .addColumn('steps', 'text', (c) => c.notNull())
        .addColumn('idempotency_key', 'text', (c) => c.notNull())
        .addColumn('amount', 'integer', (c) => c.notNull())
        .addColumn('deadline', 'text')
        .addColumn('started_at', 'text', (c) => c.notNull())
        .addColumn('ended_at', 'text')
        .addColumn('version', 'integer', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('checkout_view_by_order').on('checkout_view').columns(['order_id', 'started_at']).execute();
      // The same key from the same customer is the same checkout: written with CheckoutStarted.
      await db.schema
        .createTable('checkout_keys')
        .addColumn('customer_id', 'text', (c) => c.notNull())
        .addColumn('idempotency_key', 'text', (c) => c.notNull())
        .addColumn('checkout_id', 'text', (c) => c.notNull())
        .addColumn('order_id', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('checkout_keys_pk', ['customer_id', 'idempotency_key'])
        .execute();
      // When each open checkout's current step times out: the durable deadlines the sweeper reads.
      await db.schema
        .createTable('checkout_timers')
        .addColumn('checkout_id', 'text', (c) => c.primaryKey())
        .addColumn('due_at', 'text', (c) => c.notNull())
        .addColumn('step', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('checkout_timers_due').on('checkout_timers').columns(['due_at']).execute();
    },
  },
  '0006_sharding': {
    async up(db: Kysely<unknown>) {
      // The slot of each row, so a shard lists only the slots it owns and hands a slot's rows on
      // (sharding/mover.ts). Read models are rebuilt from events, so the column is filled by the
      // projections from here on; existing rows are filled now.
      for (const table of ['order_view', 'customer_orders', 'checkout_view', 'checkout_keys']) {
        await db.schema.alterTable(table).addColumn('slot', 'integer').execute();
        const t = db as unknown as Kysely<Record<string, { customer_id: string; slot: number | null }>>;
        const customers = await t.selectFrom(table).select('customer_id').distinct().execute();
        for (const { customer_id } of customers) {
          await t
            .updateTable(table)
            .set({ slot: slotOf(customer_id) })
            .where('customer_id', '=', customer_id)
            .execute();
        }
      }
      await db.schema.alterTable('checkout_timers').addColumn('slot', 'integer').execute();
      await db.schema.createIndex('order_view_by_slot').on('order_view').columns(['slot', 'created_at', 'id']).execute();
      await db.schema.createIndex('order_view_by_status').on('order_view').columns(['status', 'created_at', 'id']).execute();
      // The slots this shard owns, and in what state: 'owned' (writes go on), 'fenced' (a move is
      // copying its last rows away: writes wait), 'incoming' (a move is copying it here: writes
      // refuse). Every append checks its slot here, in its own transaction (sharding/ownership.ts).
      await db.schema
        .createTable('orders_slots')
        .addColumn('slot', 'integer', (c) => c.primaryKey())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
    },
  },
  ...slotMapMigrations,
};
