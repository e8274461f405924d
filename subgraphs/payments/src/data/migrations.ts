import { type Kysely, type Migration, sql } from '@shop/store';
import { pspLedgerMigrations } from './psp-ledger';

const isPostgres = async (db: Kysely<unknown>) => (await sql`select version() as v`.execute(db).catch(() => undefined)) !== undefined;

/** payments' schema history. Append new migrations; never edit one that has shipped. */
export const migrations: Record<string, Migration> = {
  '0001_payments': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('payments')
        .addColumn('id', 'text', (c) => c.primaryKey())
        // One payment per checkout: a redelivered or retried authorize finds it.
        .addColumn('checkout_id', 'text', (c) => c.notNull().unique())
        // No foreign keys: orders and customers live in other services' stores.
        .addColumn('order_id', 'text', (c) => c.notNull())
        .addColumn('customer_id', 'text')
        .addColumn('amount', 'integer', (c) => c.notNull())
        .addColumn('currency', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('reason', 'text')
        .addColumn('authorization_ref', 'text')
        .addColumn('unresolved', 'integer', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('client_key', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addCheckConstraint('payments_amount_not_negative', sql`amount >= 0`)
        .execute();
      await db.schema.createIndex('payments_order').on('payments').columns(['order_id', 'created_at']).execute();
    },
  },
  '0002_payment_operations': {
    async up(db: Kysely<unknown>) {
      const postgres = await isPostgres(db);
      await db.schema
        .createTable('payment_operations')
        // The order operations were asked in: a payment's run one at a time, in this order.
        .addColumn('seq', postgres ? 'bigserial' : 'integer', (c) => (postgres ? c.primaryKey() : c.primaryKey().autoIncrement()))
        // `<checkoutId>:<operation>`: a second command of the same kind is a duplicate.
        .addColumn('id', 'text', (c) => c.notNull().unique())
        .addColumn('payment_id', 'text', (c) => c.notNull())
        .addColumn('checkout_id', 'text', (c) => c.notNull())
        .addColumn('operation', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('uncertain', 'integer', (c) => c.notNull())
        .addColumn('next_attempt_at', 'text', (c) => c.notNull())
        .addColumn('lease_owner', 'text')
        .addColumn('lease_until', 'text')
        .addColumn('reply_type', 'text')
        .addColumn('reply_payload', 'text')
        .addColumn('last_error', 'text')
        .addColumn('command_id', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('done_at', 'text')
        .execute();
      await db.schema.createIndex('payment_operations_due').on('payment_operations').columns(['state', 'next_attempt_at']).execute();
      await db.schema.createIndex('payment_operations_payment').on('payment_operations').columns(['payment_id', 'state', 'seq']).execute();
    },
  },
  ...pspLedgerMigrations,
};
