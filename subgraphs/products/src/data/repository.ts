import { randomUUID } from 'node:crypto';
import { appendEvents } from '@shop/events';
import { chunks, type SeedSizes, seedProducts, seedReviews } from '@shop/seed';
import { type EventSink, notFound } from '@shop/server';
import type { Kysely, Store } from '@shop/store';

/** products' tables, as the query builder sees them. */
export interface ProductsDB {
  products: {
    id: string;
    name: string;
    description: string;
    price: number;
    weight: number;
    category: string;
    created_at: string;
    /** 0 or 1: a discontinued product stays readable but takes no new reviews. */
    discontinued: number;
  };
  product_ratings: { product_id: string; review_count: number; rating_sum: number };
}

/** What products knows of a product's reviews, kept from ReviewAdded events. */
export interface Rating {
  productId: string;
  reviewCount: number;
  ratingSum: number;
}

export interface ProductRow {
  id: string;
  name: string;
  description: string;
  /** Integer cents. */
  price: number;
  /** Grams. */
  weight: number;
  category: string;
  createdAt: string;
  discontinued: boolean;
}

export interface NewProduct {
  name: string;
  description: string;
  price: number;
  weight: number;
  category: string;
}

export type ProductPatch = { [K in keyof NewProduct]?: NewProduct[K] | undefined };

type ProductRecord = ProductsDB['products'];

/** The event payload: the product as it now is (consumers keep their own projection of it). */
const snapshot = (p: ProductRow) => ({
  id: p.id,
  name: p.name,
  price: p.price,
  weight: p.weight,
  category: p.category,
  discontinued: p.discontinued,
});

const toProduct = (r: ProductRecord): ProductRow => ({
  id: r.id,
  name: r.name,
  description: r.description,
  price: r.price,
  weight: r.weight,
  category: r.category,
  createdAt: r.created_at,
  discontinued: Number(r.discontinued) === 1,
});

/** The only code that reads or writes products' store. */
export class ProductsRepository {
  constructor(
    private readonly store: Store<ProductsDB>,
    private readonly events: EventSink,
  ) {}

  /** One round trip for any number of ids; the result follows `ids`, null where missing. */
  async byIds(ids: readonly string[]): Promise<(ProductRow | null)[]> {
    if (ids.length === 0) return [];
    const rows = await this.store.db
      .selectFrom('products')
      .selectAll()
      .where('id', 'in', [...new Set(ids)])
      .execute();
    const found = new Map(rows.map((r) => [r.id, toProduct(r)]));
    return ids.map((id) => found.get(id) ?? null);
  }

  /** Up to `limit` products with id greater than `after`, in id order; only `category` when given. */
  async list(limit: number, after?: string, category?: string): Promise<ProductRow[]> {
    let q = this.store.db.selectFrom('products').selectAll().orderBy('id').limit(limit);
    if (after !== undefined) q = q.where('id', '>', after);
    if (category !== undefined) q = q.where('category', '=', category);
    return (await q.execute()).map(toProduct);
  }

  async count(): Promise<number> {
    const row = await this.store.db
      .selectFrom('products')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async create(input: NewProduct): Promise<ProductRow> {
    const row: ProductRecord = {
      id: randomUUID(),
      name: input.name,
      description: input.description,
      price: input.price,
      weight: input.weight,
      category: input.category,
      created_at: new Date().toISOString(),
      discontinued: 0,
    };
    const product = toProduct(row);
    await this.store.db.transaction().execute(async (trx) => {
      await trx.insertInto('products').values(row).execute();
      await appendEvents(trx as unknown as Kysely<never>, this.events.source, [
        { type: 'ProductCreated', aggregateId: row.id, payload: snapshot(product) },
      ]);
    });
    this.events.committed();
    return product;
  }

  async update(id: string, patch: ProductPatch): Promise<ProductRow> {
    const values: Partial<ProductRecord> = {};
    if (patch.name !== undefined) values.name = patch.name;
    if (patch.description !== undefined) values.description = patch.description;
    if (patch.price !== undefined) values.price = patch.price;
    if (patch.weight !== undefined) values.weight = patch.weight;
    if (patch.category !== undefined) values.category = patch.category;
    return this.change(id, values, 'ProductUpdated');
  }

  /** Marks a product discontinued (idempotent: discontinuing twice publishes once). */
  async discontinue(id: string): Promise<ProductRow> {
    return this.change(id, { discontinued: 1 }, 'ProductDiscontinued');
  }

  /** Updates a product and appends the event in the same transaction; a no-op change publishes nothing. */
  private async change(id: string, values: Partial<ProductRecord>, type: string): Promise<ProductRow> {
    const product = await this.store.db.transaction().execute(async (trx) => {
      const before = await trx.selectFrom('products').selectAll().where('id', '=', id).executeTakeFirst();
      if (!before) throw notFound('Product', id);
      const changed = Object.entries(values).some(([k, v]) => before[k as keyof ProductRecord] !== v);
      if (!changed) return toProduct(before);
      await trx.updateTable('products').set(values).where('id', '=', id).execute();
      const after = toProduct({ ...before, ...values });
      await appendEvents(trx as unknown as Kysely<never>, this.events.source, [{ type, aggregateId: id, payload: snapshot(after) }]);
      return after;
    });
    this.events.committed();
    return product;
  }

  /** Ratings by product id in one round trip; a product nobody reviewed has none. */
  async ratings(ids: readonly string[]): Promise<(Rating | null)[]> {
    if (ids.length === 0) return [];
    const rows = await this.store.db
      .selectFrom('product_ratings')
      .selectAll()
      .where('product_id', 'in', [...new Set(ids)])
      .execute();
    const found = new Map(
      rows.map((r) => [r.product_id, { productId: r.product_id, reviewCount: Number(r.review_count), ratingSum: Number(r.rating_sum) }]),
    );
    return ids.map((id) => found.get(id) ?? null);
  }

  /** Applies a ReviewAdded event to the ratings read model, inside the consumer's transaction. */
  static async applyReview(trx: Kysely<ProductsDB>, productId: string, rating: number): Promise<void> {
    await trx
      .insertInto('product_ratings')
      .values({ product_id: productId, review_count: 1, rating_sum: rating })
      .onConflict((oc) =>
        oc.column('product_id').doUpdateSet((eb) => ({
          review_count: eb('product_ratings.review_count', '+', 1),
          rating_sum: eb('product_ratings.rating_sum', '+', rating),
        })),
      )
      .execute();
  }

  /** Inserts the deterministic seed products when the table is empty, in one transaction. */
  async seed(sizes: SeedSizes): Promise<number> {
    if ((await this.count()) > 0) return 0;
    let n = 0;
    await this.store.db.transaction().execute(async (trx) => {
      for (const batch of chunks(seedProducts(sizes), 500)) {
        await trx
          .insertInto('products')
          .values(
            batch.map((p) => ({
              id: p.id,
              name: p.name,
              description: p.description,
              price: p.price,
              weight: p.weight,
              category: p.category,
              created_at: p.createdAt,
              discontinued: 0,
            })),
          )
          .execute();
        n += batch.length;
      }
      // The ratings read model starts from the seed reviews (the same deterministic generator
      // reviews seeds from); from then on ReviewAdded events keep it current.
      const ratings = new Map<string, { count: number; sum: number }>();
      for (const r of seedReviews(sizes)) {
        const x = ratings.get(r.productId) ?? { count: 0, sum: 0 };
        ratings.set(r.productId, { count: x.count + 1, sum: x.sum + r.rating });
      }
      for (const batch of chunks(ratings, 500)) {
        await trx
          .insertInto('product_ratings')
          .values(batch.map(([productId, x]) => ({ product_id: productId, review_count: x.count, rating_sum: x.sum })))
          .execute();
      }
    });
    return n;
  }
}
