import { randomUUID } from 'node:crypto';
import { chunks, type SeedSizes, seedProducts } from '@shop/seed';
import { notFound } from '@shop/server';
import type { Store } from '@shop/store';

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
  };
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

const toProduct = (r: ProductRecord): ProductRow => ({
  id: r.id,
  name: r.name,
  description: r.description,
  price: r.price,
  weight: r.weight,
  category: r.category,
  createdAt: r.created_at,
});

/** The only code that reads or writes products' store. */
export class ProductsRepository {
  constructor(private readonly store: Store<ProductsDB>) {}

  /** One round trip for any number of ids; the result follows `ids`, null where missing. */
  async byIds(ids: readonly string[]): Promise<(ProductRow | null)[]> {
    if (ids.length === 0) return [];
    const rows = await this.store.db.selectFrom('products').selectAll().where('id', 'in', [...new Set(ids)]).execute();
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
    };
    await this.store.db.insertInto('products').values(row).execute();
    return toProduct(row);
  }

  async update(id: string, patch: ProductPatch): Promise<ProductRow> {
    const values: Partial<ProductRecord> = {};
    if (patch.name !== undefined) values.name = patch.name;
    if (patch.description !== undefined) values.description = patch.description;
    if (patch.price !== undefined) values.price = patch.price;
    if (patch.weight !== undefined) values.weight = patch.weight;
    if (patch.category !== undefined) values.category = patch.category;
    if (Object.keys(values).length > 0) {
      const result = await this.store.db.updateTable('products').set(values).where('id', '=', id).executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) throw notFound('Product', id);
    }
    const [product] = await this.byIds([id]);
    if (!product) throw notFound('Product', id);
    return product;
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
            })),
          )
          .execute();
        n += batch.length;
      }
    });
    return n;
  }
}
