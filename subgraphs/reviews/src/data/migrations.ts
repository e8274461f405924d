import type { Kysely, Migration } from '@shop/store';

/** reviews' schema history. Append new migrations; never edit one that has shipped. */
export const migrations: Record<string, Migration> = {
  '0001_reviews': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('reviews')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('author_id', 'text', (c) => c.notNull())
        .addColumn('product_id', 'text', (c) => c.notNull())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('rating', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      // Both relation lists read "newest N per parent": these indexes serve the window query.
      await db.schema.createIndex('reviews_by_product').on('reviews').columns(['product_id', 'created_at']).execute();
      await db.schema.createIndex('reviews_by_author').on('reviews').columns(['author_id', 'created_at']).execute();
    },
  },
  '0002_product_view': {
    async up(db: Kysely<unknown>) {
      // reviews' own projection of the catalogue, kept from products' events: a review can be
      // checked against it without calling products.
      await db.schema
        .createTable('product_view')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('discontinued', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
    },
  },
  '0003_newest_by_parent': {
    async up(db: Kysely<unknown>) {
      // The relation lists read "newest N of one parent" through these: with the id in the index,
      // the newest keys come from the index alone, in order, and only N rows are read per parent.
      await db.schema.createIndex('reviews_newest_by_product').on('reviews').columns(['product_id', 'created_at', 'id']).execute();
      await db.schema.createIndex('reviews_newest_by_author').on('reviews').columns(['author_id', 'created_at', 'id']).execute();
      await db.schema.dropIndex('reviews_by_product').execute();
      await db.schema.dropIndex('reviews_by_author').execute();
    },
  },
};
