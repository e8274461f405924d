import { DomainError } from '@shop/server';

/**
 * A Product as inventory sees it: the reference the gateway sent. `price` and `weight` are
 * present only when the query asked for a field that @requires them (shippingEstimate), or absent
 * when inventory itself returned the product (setStock).
 */
export interface ProductRef {
  id: string;
  /** Integer cents, owned by products. */
  price?: number | null;
  /** Grams, owned by products. */
  weight?: number | null;
  /** The levels a StockChanged event carried (`stockChanged`): the fields answer these, not the store's. */
  stock?: StockLevels;
}

/** Orders at or above this price (integer cents) ship free. */
export const FREE_SHIPPING_FROM = 100_000;
/** The flat part of a paid shipment, in cents. */
export const BASE_SHIPPING = 500;
/** What each started kilogram adds, in cents. */
export const PER_KILOGRAM = 50;

/**
 * Shipping cost in integer cents: free from FREE_SHIPPING_FROM, otherwise BASE_SHIPPING plus
 * PER_KILOGRAM for every started kilogram. Pure: it needs only the fields products owns, so
 * resolving it costs inventory no store access.
 */
export function shippingEstimate(price: number, weight: number): number {
  if (price >= FREE_SHIPPING_FROM) return 0;
  return BASE_SHIPPING + PER_KILOGRAM * Math.max(0, Math.ceil(weight / 1000));
}

// ---------------------------------------------------------------------------------------------
// Stock: on hand, reserved, available
// ---------------------------------------------------------------------------------------------

/** A product's stock as the warehouse counts it. The store keeps 0 <= reserved <= onHand (a CHECK). */
export interface StockLevels {
  /** Units in the warehouse, committed orders' units gone. */
  onHand: number;
  /** Units held for checkouts that have not finished: on hand, but promised. */
  reserved: number;
}

/** What can still be reserved: on hand less reserved. A product with no stock record has none. */
export function availableOf(stock: StockLevels | null | undefined): number {
  return stock ? stock.onHand - stock.reserved : 0;
}

/**
 * setStock's rule: on hand may not go below what checkouts hold (their units would vanish under
 * them); lower it after they commit or release. Throws BAD_USER_INPUT on `quantity`.
 */
export function checkOnHand(productId: string, quantity: number, reserved: number): void {
  if (quantity < reserved) {
    throw new DomainError(
      'BAD_USER_INPUT',
      `quantity: ${quantity} is below the ${reserved} unit(s) of ${productId} reserved by checkouts in progress`,
      'quantity',
      { details: { reserved } },
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Reservations: the checkout saga's stock step (#15)
// ---------------------------------------------------------------------------------------------

/**
 * A reservation's life, keyed by the checkout id:
 *
 * ```
 *  (none) ──Reserve, all lines available──▶ HELD ──Commit──▶ COMMITTED ──Restock──▶ RESTOCKED
 *     │                                      │ │
 *     └──Reserve, a line short──▶ REJECTED   │ └──Release (or Restock)──▶ RELEASED
 *                                            └──expires_at passed (sweeper, or a late Commit)──▶ EXPIRED
 * ```
 *
 * Every status but HELD is final for the stock; REJECTED records a failed Reserve, so that the
 * same command seen again gets the same answer rather than a second try.
 */
export const RESERVATION_STATUSES = ['HELD', 'COMMITTED', 'RELEASED', 'EXPIRED', 'RESTOCKED', 'REJECTED'] as const;
export type ReservationStatus = (typeof RESERVATION_STATUSES)[number];

export interface ReservationLine {
  productId: string;
  /** Units, at least 1. */
  quantity: number;
}

/** A line a Reserve could not have: what was asked and what was available then. */
export interface Shortage {
  productId: string;
  requested: number;
  available: number;
}

export interface Reservation {
  checkoutId: string;
  orderId: string;
  status: ReservationStatus;
  /** One per product, in product-id order (see {@link mergeLines}). */
  lines: ReservationLine[];
  /** REJECTED: the short lines; empty otherwise. */
  shortages: Shortage[];
  /** ISO 8601: HELD past this is released by the sweeper (EXPIRED). */
  expiresAt: string;
}

/**
 * What a reservation's lines do to their products' stock when it moves: `reserve` holds units
 * (reserved += q), `commit` ships them (on hand -= q, reserved -= q), `release` gives them back
 * (reserved -= q), `restock` puts shipped units back on the shelf (on hand += q).
 */
export type StockEffect = 'reserve' | 'commit' | 'release' | 'restock';

/** The effect of one line on a product's stock. */
export function applyEffect(levels: StockLevels, effect: StockEffect, quantity: number): StockLevels {
  switch (effect) {
    case 'reserve':
      return { onHand: levels.onHand, reserved: levels.reserved + quantity };
    case 'commit':
      return { onHand: levels.onHand - quantity, reserved: levels.reserved - quantity };
    case 'release':
      return { onHand: levels.onHand, reserved: levels.reserved - quantity };
    case 'restock':
      return { onHand: levels.onHand + quantity, reserved: levels.reserved };
  }
}

/** A reply to orders, before the checkout's ids are added (see @shop/events' checkout contract). */
export type Reply =
  | { type: 'StockReserved'; expiresAt: string }
  | { type: 'StockReservationFailed'; lines: Shortage[] }
  | { type: 'StockCommitted' }
  | { type: 'StockCommitFailed'; reason: 'RESERVATION_EXPIRED' | 'RESERVATION_RELEASED' | 'NO_RESERVATION' }
  | { type: 'StockReleased'; expired: boolean }
  | { type: 'StockRestocked' };

/** What `inventory_reservations_total` counts: a reservation created or moved. */
export type ReservationOutcome = 'reserved' | 'out_of_stock' | 'committed' | 'released' | 'expired' | 'restocked';

/**
 * What handling a command (or a sweep) decides: the reservation's move, if any, with its stock
 * effect, and the replies. A command seen before decides no move and answers with the outcome
 * recorded the first time: a command is never applied twice.
 */
export interface Decision {
  /** The status it moves to; absent: nothing changes. */
  to?: ReservationStatus;
  /** What the move does to the lines' stock. */
  effect?: StockEffect;
  replies: Reply[];
  /** For the metric; absent when nothing changed. */
  outcome?: ReservationOutcome;
}

/** One line per product (a product listed twice asks for the sum), in product-id order: the order rows are locked in. */
export function mergeLines(lines: readonly ReservationLine[]): ReservationLine[] {
  const sums = new Map<string, number>();
  for (const line of lines) sums.set(line.productId, (sums.get(line.productId) ?? 0) + line.quantity);
  return [...sums.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([productId, quantity]) => ({ productId, quantity }));
}

const expired = (r: Reservation, now: number): boolean => Date.parse(r.expiresAt) <= now;

/**
 * A new Reserve: every line or none. `stock` holds the current levels of the lines' products
 * (locked by the caller); a product missing from it has no record and so nothing available.
 */
export function decideReserve(lines: readonly ReservationLine[], stock: ReadonlyMap<string, StockLevels>, expiresAt: string): Decision {
  const shortages = lines
    .map((l) => ({ productId: l.productId, requested: l.quantity, available: availableOf(stock.get(l.productId)) }))
    .filter((s) => s.available < s.requested);
  if (shortages.length > 0) {
    return { to: 'REJECTED', replies: [{ type: 'StockReservationFailed', lines: shortages }], outcome: 'out_of_stock' };
  }
  return { to: 'HELD', effect: 'reserve', replies: [{ type: 'StockReserved', expiresAt }], outcome: 'reserved' };
}

/** A Reserve for a checkout that has a reservation already: the answer the first one got, nothing more. */
export function answerReserveAgain(r: Reservation): Decision {
  if (r.status === 'REJECTED') return { replies: [{ type: 'StockReservationFailed', lines: r.shortages }] };
  return { replies: [{ type: 'StockReserved', expiresAt: r.expiresAt }] };
}

/**
 * Commit: HELD → COMMITTED, the units leave the shelf. A hold past its expiry is not committed,
 * even when the sweeper has not come by yet: it expires here (and says so, as the sweeper would)
 * and the commit fails, so that "held until expiresAt" means exactly that.
 */
export function decideCommit(r: Reservation | undefined, now: number): Decision {
  if (!r || r.status === 'REJECTED') return { replies: [{ type: 'StockCommitFailed', reason: 'NO_RESERVATION' }] };
  switch (r.status) {
    case 'HELD':
      if (expired(r, now)) {
        return {
          to: 'EXPIRED',
          effect: 'release',
          replies: [
            { type: 'StockReleased', expired: true },
            { type: 'StockCommitFailed', reason: 'RESERVATION_EXPIRED' },
          ],
          outcome: 'expired',
        };
      }
      return { to: 'COMMITTED', effect: 'commit', replies: [{ type: 'StockCommitted' }], outcome: 'committed' };
    case 'COMMITTED':
    case 'RESTOCKED':
      // Committed once; a restock since does not undo that answer.
      return { replies: [{ type: 'StockCommitted' }] };
    case 'RELEASED':
      return { replies: [{ type: 'StockCommitFailed', reason: 'RESERVATION_RELEASED' }] };
    case 'EXPIRED':
      return { replies: [{ type: 'StockCommitFailed', reason: 'RESERVATION_EXPIRED' }] };
  }
}

/**
 * Release: HELD → RELEASED, the units become available again. Nothing held (no reservation, a
 * rejected one, one released or expired before) is released already: StockReleased again. A
 * COMMITTED reservation is not released: its units have shipped, and the saga releases only
 * before it commits; the answer is StockCommitted, which tells a saga that gave up on its commit
 * too late that the units are gone and a Restock undoes them (StockRestocked once that is done).
 */
export function decideRelease(r: Reservation | undefined): Decision {
  if (!r) return { replies: [{ type: 'StockReleased', expired: false }] };
  switch (r.status) {
    case 'HELD':
      return { to: 'RELEASED', effect: 'release', replies: [{ type: 'StockReleased', expired: false }], outcome: 'released' };
    case 'REJECTED':
    case 'RELEASED':
      return { replies: [{ type: 'StockReleased', expired: false }] };
    case 'EXPIRED':
      return { replies: [{ type: 'StockReleased', expired: true }] };
    case 'COMMITTED':
      return { replies: [{ type: 'StockCommitted' }] };
    case 'RESTOCKED':
      return { replies: [{ type: 'StockRestocked' }] };
  }
}

/**
 * Restock (the reverse saga, after a confirmed order is cancelled): COMMITTED → RESTOCKED, the
 * shipped units are back on hand. It answers StockRestocked whenever the checkout holds nothing
 * afterwards: done before, or never committed (nothing to put back; a HELD one is released, which
 * is what undoing it means).
 */
export function decideRestock(r: Reservation | undefined): Decision {
  if (r?.status === 'COMMITTED') return { to: 'RESTOCKED', effect: 'restock', replies: [{ type: 'StockRestocked' }], outcome: 'restocked' };
  if (r?.status === 'HELD') return { to: 'RELEASED', effect: 'release', replies: [{ type: 'StockRestocked' }], outcome: 'released' };
  return { replies: [{ type: 'StockRestocked' }] };
}

/** The sweeper: a HELD reservation past its expiry → EXPIRED, units back, and orders is told (unasked). */
export function decideExpiry(r: Reservation | undefined, now: number): Decision {
  if (r?.status !== 'HELD' || !expired(r, now)) return { replies: [] };
  return { to: 'EXPIRED', effect: 'release', replies: [{ type: 'StockReleased', expired: true }], outcome: 'expired' };
}
