import { randomUUID } from 'node:crypto';
import { type SeedSizes, chunks, seedProducts, seedReviews } from '@shop/seed';
import { appendEvents } from '@shop/events';
import { DomainError, type EventSink, quote } from '@shop/server';
import { type Kysely, type Store, newestPerParent } from '@shop/store';

/** reviews' tables, as the query builder sees them. */
export interface ReviewsDB {
  reviews: { id: string; author_id: string; product_id: string; body: string; rating: number; created_at: string };
  /** The catalogue as reviews knows it, from products' events. */
  product_view: { id: string; name: string; discontinued: number };
}

export interface ReviewRow {
  id: string;
  authorId: string;
  productId: string;
  body: string;
  rating: number;
  createdAt: string;
}

/** A reference to an entity another service owns: reviews stores only its id. */
export interface EntityRef {
  id: string;
}

type Row = ReviewsDB['reviews'];
const toReview = (r: Row): ReviewRow => ({
  id: r.id,
  authorId: r.author_id,
  productId: r.product_id,
  body: r.body,
  rating: Number(r.rating),
  createdAt: r.created_at,
});

/** The only code that reads or writes reviews' store. */
export class ReviewsRepository {
  constructor(
    private readonly store: Store<ReviewsDB>,
    private readonly events: EventSink,
  ) {}

  /** One round trip for any number of ids; the result follows `ids`, null where missing. */
  async byIds(ids: readonly string[]): Promise<(ReviewRow | null)[]> {
    if (ids.length === 0) return [];
    const rows = await this.store.db
      .selectFrom('reviews')
      .selectAll()
      .where('id', 'in', [...new Set(ids)])
      .execute();
    const found = new Map(rows.map((r) => [r.id, toReview(r)]));
    return ids.map((id) => found.get(id) ?? null);
  }

  /**
   * The newest `first` reviews of each of `parentIds` (products or authors) in ONE round trip,
   * bounded per parent (newestPerParent): a product with 900 reviews still reads only `first`
   * rows. Returns lists in `parentIds` order.
   */
  async newestPer(column: 'product_id' | 'author_id', parentIds: readonly string[], first: number): Promise<ReviewRow[][]> {
    const lists = await newestPerParent<ReviewsDB, Row>(this.store, 'reviews', column, parentIds, first);
    return lists.map((rows) => rows.map(toReview));
  }

  async count(): Promise<number> {
    const row = await this.store.db
      .selectFrom('reviews')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /**
   * Adds a review of a product reviews' projection knows and that is not discontinued. The
   * projection is eventually consistent: a product created a moment ago may not be known yet.
   */
  async add(input: { authorId: string; productId: string; body: string; rating: number }): Promise<ReviewRow> {
    const product = await this.store.db.selectFrom('product_view').selectAll().where('id', '=', input.productId).executeTakeFirst();
    if (!product)
      throw new DomainError(
        'NOT_FOUND',
        `product ${quote(input.productId)} is unknown to reviews (a new product can take a moment to arrive)`,
        'input.productId',
      );
    if (Number(product.discontinued) === 1)
      throw new DomainError('CONFLICT', `product ${quote(input.productId)} is discontinued and takes no new reviews`, 'input.productId');
    const row: Row = {
      id: randomUUID(),
      author_id: input.authorId,
      product_id: input.productId,
      body: input.body,
      rating: input.rating,
      created_at: new Date().toISOString(),
    };
    await this.store.db.transaction().execute(async (trx) => {
      await trx.insertInto('reviews').values(row).execute();
      await appendEvents(trx as unknown as Kysely<never>, this.events.source, [
        {
          type: 'ReviewAdded',
          aggregateId: row.id,
          // `affects` names the entities whose derived fields change, for caches to evict.
          payload: {
            id: row.id,
            productId: row.product_id,
            authorId: row.author_id,
            rating: row.rating,
            affects: [
              { __typename: 'Product', id: row.product_id },
              { __typename: 'User', id: row.author_id },
            ],
          },
        },
      ]);
    });
    this.events.committed();
    return toReview(row);
  }

  /** Applies a product event to the projection, inside the consumer's transaction. */
  static async applyProduct(trx: Kysely<ReviewsDB>, product: { id: string; name: string; discontinued: boolean }): Promise<void> {
    const row = { id: product.id, name: product.name, discontinued: product.discontinued ? 1 : 0 };
    await trx
      .insertInto('product_view')
      .values(row)
      .onConflict((oc) => oc.column('id').doUpdateSet({ name: row.name, discontinued: row.discontinued }))
      .execute();
  }

  /** Inserts the deterministic seed reviews when the table is empty. */
  async seed(sizes: SeedSizes): Promise<number> {
    // The projection starts from the seed catalogue (the generator products seeds from); from
    // then on products' events keep it current.
    const known = await this.store.db
      .selectFrom('product_view')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    if (Number(known.n) === 0) {
      await this.store.db.transaction().execute(async (trx) => {
        for (const batch of chunks(seedProducts(sizes), 500)) {
          await trx
            .insertInto('product_view')
            .values(batch.map((p) => ({ id: p.id, name: p.name, discontinued: 0 })))
            .execute();
        }
      });
    }
    if ((await this.count()) > 0) return 0;
    let n = 0;
    await this.store.db.transaction().execute(async (trx) => {
      for (const batch of chunks(seedReviews(sizes), 500)) {
        await trx
          .insertInto('reviews')
          .values(
            batch.map((r) => ({
              id: r.id,
              author_id: r.authorId,
              product_id: r.productId,
              body: r.body,
              rating: r.rating,
              created_at: r.createdAt,
            })),
          )
          .execute();
        n += batch.length;
      }
    });
    return n;
  }
}
