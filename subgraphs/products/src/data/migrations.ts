import type { Kysely, Migration } from '@shop/store';

/** products' schema history. Append new migrations; never edit one that has shipped. */
export const migrations: Record<string, Migration> = {
  '0001_products': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('products')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('price', 'integer', (c) => c.notNull())
        .addColumn('weight', 'integer', (c) => c.notNull())
        .addColumn('category', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      // (category, id) serves `WHERE category = ? AND id > ? ORDER BY id LIMIT n` from the index alone.
      await db.schema.createIndex('products_category_id_idx').on('products').columns(['category', 'id']).execute();
    },
  },
  '0002_discontinued_and_ratings': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .alterTable('products')
        .addColumn('discontinued', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      // A local read model of reviews, fed by ReviewAdded events: rating fields never call reviews.
      await db.schema
        .createTable('product_ratings')
        .addColumn('product_id', 'text', (c) => c.primaryKey())
        .addColumn('review_count', 'integer', (c) => c.notNull())
        .addColumn('rating_sum', 'integer', (c) => c.notNull())
        .execute();
    },
  },
};
