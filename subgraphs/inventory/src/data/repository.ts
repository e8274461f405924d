import { type CheckoutMessages, type NewEvent, appendEvents } from '@shop/events';
import { chunks, type SeedSizes, seedStock } from '@shop/seed';
import type { EventSink } from '@shop/server';
import { type Kysely, type Store, type StoreDialect, inBackground, sql } from '@shop/store';
import {
  type Decision,
  type Reservation,
  type ReservationLine,
  type ReservationStatus,
  type Shortage,
  type StockEffect,
  type StockLevels,
  answerReserveAgain,
  checkOnHand,
  decideCommit,
  decideExpiry,
  decideRelease,
  decideReserve,
  decideRestock,
  mergeLines,
} from '../domain';
import { replyMessage, stockChanged } from '../events';

/** inventory's tables, as the query builder sees them. */
export interface InventoryDB {
  /** `quantity` is on hand; `reserved` is held for checkouts (0 <= reserved <= quantity, a CHECK). */
  stock: { product_id: string; quantity: number; reserved: number; updated_at: string };
  reservations: {
    checkout_id: string;
    order_id: string;
    status: string;
    /** JSON: ReservationLine[], one per product, in product-id order. */
    lines: string;
    /** JSON: Shortage[] (REJECTED only). */
    shortages: string;
    expires_at: string;
    created_at: string;
    updated_at: string;
  };
}

/** A product's stock record. */
export interface StockRow extends StockLevels {
  productId: string;
  /** When it last changed, ISO 8601. */
  updatedAt: string;
}

type StockRecord = InventoryDB['stock'];
type ReservationRecord = InventoryDB['reservations'];
/** A transaction over inventory's store: a consumer's (inbox) transaction, or one of the repository's own. */
export type InventoryTrx = Kysely<InventoryDB>;

const toStock = (r: Pick<StockRecord, 'product_id' | 'quantity' | 'reserved' | 'updated_at'>): StockRow => ({
  productId: r.product_id,
  onHand: Number(r.quantity),
  reserved: Number(r.reserved),
  updatedAt: r.updated_at,
});

const toReservation = (r: ReservationRecord): Reservation => ({
  checkoutId: r.checkout_id,
  orderId: r.order_id,
  status: r.status as ReservationStatus,
  lines: JSON.parse(r.lines) as ReservationLine[],
  shortages: JSON.parse(r.shortages) as Shortage[],
  expiresAt: r.expires_at,
});

/** A change the store refused under the rules a lock should have kept: the transaction rolls back and the command is retried. */
export class StockInvariantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StockInvariantError';
  }
}

/** The only code that reads or writes inventory's store. */
export class StockRepository {
  constructor(
    private readonly store: Store<InventoryDB>,
    private readonly events: EventSink = { source: 'inventory', committed: () => {} },
  ) {}

  get dialect(): StoreDialect {
    return this.store.dialect;
  }

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
   * Sets a product's units on hand, creating the record when there is none, and announces the
   * change (StockChanged) in the same transaction. Refused (BAD_USER_INPUT) below what checkouts
   * hold: the upsert changes the row only when `reserved <= quantity`, under the row's lock, so a
   * reservation racing it is either counted or comes after.
   */
  async set(productId: string, quantity: number): Promise<StockRow> {
    const updatedAt = new Date().toISOString();
    const row = await this.store.db.transaction().execute(async (trx) => {
      const written = await trx
        .insertInto('stock')
        .values({ product_id: productId, quantity, reserved: 0, updated_at: updatedAt })
        .onConflict((oc) =>
          oc.column('product_id').doUpdateSet({ quantity, updated_at: updatedAt }).where('stock.reserved', '<=', quantity),
        )
        .returning(['product_id', 'quantity', 'reserved', 'updated_at'])
        .executeTakeFirst();
      if (!written) {
        // Only the refused update returns nothing: say what is held.
        const held = await trx.selectFrom('stock').select('reserved').where('product_id', '=', productId).executeTakeFirstOrThrow();
        checkOnHand(productId, quantity, Number(held.reserved));
        throw new StockInvariantError(`setStock ${productId}: the upsert wrote nothing, yet ${quantity} >= reserved ${held.reserved}`);
      }
      const stock = toStock(written);
      await appendEvents(trx as unknown as Kysely<never>, this.events.source, [stockChanged(productId, stock)]);
      return stock;
    });
    this.events.committed();
    return row;
  }

  /** A new product gets a stock record with nothing on hand (an existing record is kept). Nothing available changes: no event. */
  static async ensureRecord(trx: InventoryTrx, productId: string): Promise<void> {
    await trx
      .insertInto('stock')
      .values({ product_id: productId, quantity: 0, reserved: 0, updated_at: new Date().toISOString() })
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
          .values(batch.map((s) => ({ product_id: s.productId, quantity: s.quantity, reserved: 0, updated_at: updatedAt })))
          .execute();
        n += batch.length;
      }
    });
    return n;
  }

  // -------------------------------------------------------------------------------------------
  // Reservations (#15). The command handlers run inside the consumer's inbox transaction: the
  // reservation's move, the stock it changes, StockChanged and the reply all commit with the
  // inbox row, or none of them does. Locks are taken in one order everywhere: a reservation row
  // first (when there is one), then stock rows in product-id order, so transactions on different
  // checkouts sharing products wait for each other and never deadlock.
  // -------------------------------------------------------------------------------------------

  /** A checkout's reservation, or undefined (tests, tools). */
  async reservation(checkoutId: string): Promise<Reservation | undefined> {
    const row = await this.store.db.selectFrom('reservations').selectAll().where('checkout_id', '=', checkoutId).executeTakeFirst();
    return row ? toReservation(row) : undefined;
  }

  /**
   * ReserveStockRequested: every line or none. The lines' stock rows are locked (PostgreSQL
   * `FOR UPDATE`, in product-id order; SQLite has one writer), then the levels decide: a
   * reservation HELD with each line's units added to `reserved`, or REJECTED with the short
   * lines. A checkout that has a reservation already gets the answer recorded then.
   */
  async reserve(trx: InventoryTrx, command: CheckoutMessages['ReserveStockRequested'], now = Date.now()): Promise<Decision> {
    const expiresAt = new Date(Date.parse(command.expiresAt)).toISOString();
    const lines = mergeLines(command.lines);
    // Stock first, then the reservation: a duplicate of this command in another transaction waits
    // on the same stock rows and, once it has them, sees the reservation this one made. The
    // reservation is read, not locked: its answer to a Reserve never changes (REJECTED is final,
    // anything else was reserved), and a Reserve that held stock rows while waiting for a
    // reservation row would wait in the opposite order to a commit, which locks the reservation
    // and then the stock.
    const stock = await this.lockStock(
      trx,
      lines.map((l) => l.productId),
    );
    const existing = await this.readReservation(trx, command.checkoutId, false);
    if (existing) return this.settle(trx, existing, answerReserveAgain(existing), now);
    const decision = decideReserve(lines, stock, expiresAt);
    const shortages = decision.replies.flatMap((r) => (r.type === 'StockReservationFailed' ? r.lines : []));
    const at = new Date(now).toISOString();
    // A second transaction inserting the same checkout (possible only when no stock row was there
    // to lock) fails on the primary key and is retried; it then finds this one.
    await trx
      .insertInto('reservations')
      .values({
        checkout_id: command.checkoutId,
        order_id: command.orderId,
        status: decision.to ?? 'REJECTED',
        lines: JSON.stringify(lines),
        shortages: JSON.stringify(shortages),
        expires_at: expiresAt,
        created_at: at,
        updated_at: at,
      })
      .execute();
    const reservation: Reservation = {
      checkoutId: command.checkoutId,
      orderId: command.orderId,
      status: decision.to ?? 'REJECTED',
      lines,
      shortages,
      expiresAt,
    };
    // The row is written with its status: only the stock effect and the messages remain.
    return this.settle(trx, reservation, { ...decision, to: undefined }, now, decision);
  }

  /** CommitStockRequested: HELD → COMMITTED (on hand and reserved both down); see decideCommit. */
  async commit(trx: InventoryTrx, command: CheckoutMessages['CommitStockRequested'], now = Date.now()): Promise<Decision> {
    const r = await this.lockReservation(trx, command.checkoutId);
    return this.settle(trx, r ?? command, decideCommit(r, now), now);
  }

  /** ReleaseStockRequested: HELD → RELEASED (reserved down); see decideRelease. */
  async release(trx: InventoryTrx, command: CheckoutMessages['ReleaseStockRequested'], now = Date.now()): Promise<Decision> {
    const r = await this.lockReservation(trx, command.checkoutId);
    return this.settle(trx, r ?? command, decideRelease(r), now);
  }

  /** RestockRequested: COMMITTED → RESTOCKED (on hand back up); see decideRestock. */
  async restock(trx: InventoryTrx, command: CheckoutMessages['RestockRequested'], now = Date.now()): Promise<Decision> {
    const r = await this.lockReservation(trx, command.checkoutId);
    return this.settle(trx, r ?? command, decideRestock(r), now);
  }

  /**
   * The sweeper's pass: HELD reservations whose expiry has passed become EXPIRED, their units
   * available again, with StockReleased { expired: true } to orders, each in its own transaction
   * (a reservation locked, then its stock rows in order, as every other path does). Safe beside
   * other replicas' sweepers and a racing commit: the move is conditional on the status still
   * being HELD. Background work: its round trips are not counted as requests'.
   */
  async sweepExpired(now = Date.now(), limit = 100): Promise<{ expired: Decision[]; more: boolean }> {
    return inBackground(async () => {
      const due = await this.store.db
        .selectFrom('reservations')
        .select('checkout_id')
        .where('status', '=', 'HELD')
        .where('expires_at', '<=', new Date(now).toISOString())
        .orderBy('expires_at')
        .limit(limit)
        .execute();
      const done: Decision[] = [];
      for (const { checkout_id } of due) {
        const decision = await this.store.db.transaction().execute(async (trx) => {
          const r = await this.lockReservation(trx, checkout_id);
          return r ? this.settle(trx, r, decideExpiry(r, now), now) : undefined;
        });
        if (decision?.to) done.push(decision);
      }
      if (done.length > 0) this.events.committed();
      // A full page: more may be due already.
      return { expired: done, more: due.length === limit };
    });
  }

  /** Reservations HELD now, across every replica (the sweeper's gauge). */
  async countHeld(): Promise<number> {
    return inBackground(async () => {
      const row = await this.store.db
        .selectFrom('reservations')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('status', '=', 'HELD')
        .executeTakeFirstOrThrow();
      return Number(row.n);
    });
  }

  /** The stock rows of `productIds`, locked in product-id order (PostgreSQL); missing ones are absent. */
  private async lockStock(trx: InventoryTrx, productIds: readonly string[]): Promise<Map<string, StockLevels>> {
    let q = trx
      .selectFrom('stock')
      .select(['product_id', 'quantity', 'reserved', 'updated_at'])
      .where('product_id', 'in', [...productIds])
      .orderBy('product_id');
    // PostgreSQL locks the rows as the sorted result passes (LockRows above Sort): in id order.
    if (this.store.dialect === 'postgres') q = q.forUpdate();
    const rows = await q.execute();
    return new Map(rows.map((r) => [r.product_id, toStock(r)]));
  }

  private lockReservation(trx: InventoryTrx, checkoutId: string): Promise<Reservation | undefined> {
    return this.readReservation(trx, checkoutId, true);
  }

  /** A checkout's reservation, locked (PostgreSQL `FOR UPDATE`) when it is about to move. */
  private async readReservation(trx: InventoryTrx, checkoutId: string, lock: boolean): Promise<Reservation | undefined> {
    let q = trx.selectFrom('reservations').selectAll().where('checkout_id', '=', checkoutId);
    if (lock && this.store.dialect === 'postgres') q = q.forUpdate();
    const row = await q.executeTakeFirst();
    return row ? toReservation(row) : undefined;
  }

  /**
   * Carries a decision out: the reservation's move (conditional on the status it was read with),
   * its lines' stock effect in product-id order, a StockChanged per product and the replies.
   * `reported` is what the caller reports (reserve writes the status itself).
   */
  private async settle(
    trx: InventoryTrx,
    r: Reservation | { checkoutId: string; orderId: string },
    decision: Decision,
    now: number,
    reported: Decision = decision,
  ): Promise<Decision> {
    const at = new Date(now).toISOString();
    const events: NewEvent[] = [];
    if (decision.to && 'status' in r) {
      const moved = await trx
        .updateTable('reservations')
        .set({ status: decision.to, updated_at: at })
        .where('checkout_id', '=', r.checkoutId)
        .where('status', '=', r.status)
        .executeTakeFirst();
      if (Number(moved.numUpdatedRows) !== 1) {
        throw new StockInvariantError(`reservation ${r.checkoutId} is no longer ${r.status}: another transaction moved it first`);
      }
    }
    if (decision.effect && 'lines' in r) {
      for (const line of r.lines) {
        const levels = await this.applyStockEffect(trx, line, decision.effect, at);
        events.push(stockChanged(line.productId, levels));
      }
    }
    events.push(...decision.replies.map((reply) => replyMessage(r, reply)));
    if (events.length > 0) await appendEvents(trx as unknown as Kysely<never>, this.events.source, events);
    return reported;
  }

  /**
   * One line's effect on its stock row, as a conditional update: it changes the row only when the
   * result keeps 0 <= reserved <= on hand. Under the locks it always does; if it ever did not,
   * nothing is written and the whole command rolls back (the store's CHECK would refuse it too).
   */
  private async applyStockEffect(trx: InventoryTrx, line: ReservationLine, effect: StockEffect, at: string): Promise<StockLevels> {
    const q = line.quantity;
    const base = trx.updateTable('stock').where('product_id', '=', line.productId);
    const update =
      effect === 'reserve'
        ? base.set({ reserved: sql`reserved + ${q}`, updated_at: at }).where(sql<boolean>`quantity - reserved >= ${q}`)
        : effect === 'commit'
          ? base.set({ quantity: sql`quantity - ${q}`, reserved: sql`reserved - ${q}`, updated_at: at }).where('reserved', '>=', q)
          : effect === 'release'
            ? base.set({ reserved: sql`reserved - ${q}`, updated_at: at }).where('reserved', '>=', q)
            : base.set({ quantity: sql`quantity + ${q}`, updated_at: at });
    const row = await update.returning(['product_id', 'quantity', 'reserved', 'updated_at']).executeTakeFirst();
    if (!row) throw new StockInvariantError(`${effect} ${q} of ${line.productId}: the stock row refused it or is missing`);
    return toStock(row);
  }
}
