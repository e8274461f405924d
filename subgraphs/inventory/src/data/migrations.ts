import { type Kysely, type Migration, sql } from '@shop/store';

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
};
