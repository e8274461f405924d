import { chunks, type SeedSizes, seedStock } from '@shop/seed';
import type { Kysely, Store } from '@shop/store';

/** inventory's tables, as the query builder sees them. */
export interface InventoryDB {
  stock: { product_id: string; quantity: number; updated_at: string };
}

export interface StockRow {
  productId: string;
  /** Units on hand, never negative. */
  quantity: number;
  /** When the quantity was last set, ISO 8601. */
  updatedAt: string;
}

type StockRecord = InventoryDB['stock'];

const toStock = (r: StockRecord): StockRow => ({ productId: r.product_id, quantity: r.quantity, updatedAt: r.updated_at });

/** The only code that reads or writes inventory's store. */
export class StockRepository {
  constructor(private readonly store: Store<InventoryDB>) {}

  /** One round trip for any number of product ids; the result follows `ids`, null where there is no record. */
  async byProductIds(ids: readonly string[]): Promise<(StockRow | null)[]> {
    if (ids.length === 0) return [];
    const rows = await this.store.db
      .selectFrom('stock')
      .selectAll()
      .where('product_id', 'in', [...new Set(ids)])
      .execute();
    const found = new Map(rows.map((r) => [r.product_id, toStock(r)]));
    return ids.map((id) => found.get(id) ?? null);
  }

  /**
   * Sets a product's quantity, creating the record when there is none: one round trip, and
   * idempotent (setting the same quantity twice leaves the same state).
   */
  async set(productId: string, quantity: number): Promise<StockRow> {
    const row: StockRecord = { product_id: productId, quantity, updated_at: new Date().toISOString() };
    await this.store.db
      .insertInto('stock')
      .values(row)
      .onConflict((oc) => oc.column('product_id').doUpdateSet({ quantity: row.quantity, updated_at: row.updated_at }))
      .execute();
    return toStock(row);
  }

  /** A new product gets a stock record with nothing on hand (an existing record is kept). */
  static async ensureRecord(trx: Kysely<InventoryDB>, productId: string): Promise<void> {
    await trx
      .insertInto('stock')
      .values({ product_id: productId, quantity: 0, updated_at: new Date().toISOString() })
      .onConflict((oc) => oc.column('product_id').doNothing())
      .execute();
  }

  async count(): Promise<number> {
    const row = await this.store.db
      .selectFrom('stock')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** Inserts the deterministic seed stock when the table is empty, in one transaction. */
  async seed(sizes: SeedSizes): Promise<number> {
    if ((await this.count()) > 0) return 0;
    const updatedAt = new Date().toISOString();
    let n = 0;
    await this.store.db.transaction().execute(async (trx) => {
      for (const batch of chunks(seedStock(sizes), 500)) {
        await trx
          .insertInto('stock')
          .values(batch.map((s) => ({ product_id: s.productId, quantity: s.quantity, updated_at: updatedAt })))
          .execute();
        n += batch.length;
      }
    });
    return n;
  }
}
