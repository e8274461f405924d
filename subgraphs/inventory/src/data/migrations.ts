import { type Kysely, type Migration, sql } from '@shop/store';

/** True on PostgreSQL (SQLite has no `version()`): where the two need different DDL. */
async function isPostgres(db: Kysely<unknown>): Promise<boolean> {
  return (await sql<{ v: string }>`select version() as v`.execute(db).catch(() => undefined)) !== undefined;
}

/** inventory's schema history. Append new migrations; never edit one that has shipped. */
export const migrations: Record<string, Migration> = {
  '0001_stock': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('stock')
        // No foreign key: products live in another service's store; any product id may have stock.
        .addColumn('product_id', 'text', (c) => c.primaryKey())
        .addColumn('quantity', 'integer', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addCheckConstraint('stock_quantity_not_negative', sql`quantity >= 0`)
        .execute();
    },
  },
  // #15: stock is on hand (`quantity`, as before) and reserved; available = quantity - reserved.
  // An existing store upgrades in place: every record starts with nothing reserved. The CHECK is
  // the last line of defence against overselling: whatever a bug or a race did, the store refuses
  // a row with more reserved than on hand (available below 0) or a negative reservation.
  '0002_stock_reserved': {
    async up(db: Kysely<unknown>) {
      if (await isPostgres(db)) {
        await db.schema
          .alterTable('stock')
          .addColumn('reserved', 'integer', (c) => c.notNull().defaultTo(0))
          .execute();
        await db.schema
          .alterTable('stock')
          .addCheckConstraint('stock_reserved_within_on_hand', sql`reserved >= 0 and reserved <= quantity`)
          .execute();
      } else {
        // SQLite adds no table constraint to an existing table: the CHECK rides on the new column.
        await db.schema
          .alterTable('stock')
          .addColumn('reserved', 'integer', (c) =>
            c
              .notNull()
              .defaultTo(0)
              .check(sql`reserved >= 0 and reserved <= quantity`),
          )
          .execute();
      }
    },
  },
  // #15: one reservation per checkout (the saga's id), so a command seen again finds what the
  // first one did. `lines` is JSON ([{ productId, quantity }], one per product, in product-id
  // order); `shortages` is JSON for a REJECTED one ([{ productId, requested, available }]).
  '0003_reservations': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('reservations')
        .addColumn('checkout_id', 'text', (c) => c.primaryKey())
        .addColumn('order_id', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('lines', 'text', (c) => c.notNull())
        .addColumn('shortages', 'text', (c) => c.notNull().defaultTo('[]'))
        // ISO 8601 in UTC, as Date#toISOString writes it: compared as text by the sweeper.
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addCheckConstraint(
          'reservations_status_known',
          sql`status in ('HELD', 'COMMITTED', 'RELEASED', 'EXPIRED', 'RESTOCKED', 'REJECTED')`,
        )
        .execute();
      // The sweeper's question: which HELD ones have expired, oldest first.
      await db.schema.createIndex('reservations_status_expires').on('reservations').columns(['status', 'expires_at']).execute();
    },
  },
};
