// What inventory publishes and consumes.
//
// Consumes (each through its inbox, idempotently): ProductCreated from products (a stock record
// with nothing on hand), and the checkout saga's commands from orders (@shop/events' checkout
// contract): ReserveStockRequested, CommitStockRequested, ReleaseStockRequested, RestockRequested.
//
// Publishes (through its outbox, in the transaction that made the change): the replies to those
// commands (aggregate: the checkout), and StockChanged (aggregate: the product) whenever a
// product's on hand or reserved units change, for the gateway to evict its cached Product.
import {
  STOCK_COMMITTED,
  STOCK_COMMIT_FAILED,
  STOCK_RELEASED,
  STOCK_RESERVATION_FAILED,
  STOCK_RESERVED,
  STOCK_RESTOCKED,
  type NewEvent,
  checkoutMessage,
} from '@shop/events';
import { type Reply, type StockLevels, availableOf } from './domain';

/** A product's stock changed (setStock, a reservation made, committed, released, expired or restocked). */
export const STOCK_CHANGED = 'StockChanged';

/** StockChanged's payload (schema version 1). */
export interface StockChangedPayload extends Record<string, unknown> {
  productId: string;
  quantityOnHand: number;
  quantityReserved: number;
  quantityAvailable: number;
  /**
   * The entity whose cached fields changed, in the shape the gateway's evictions read: the event's
   * name alone would name a `Stock` type, and the fields live on `Product`.
   */
  affects: Array<{ __typename: 'Product'; id: string }>;
}

/** The StockChanged event for a product's new levels. */
export function stockChanged(productId: string, levels: StockLevels): NewEvent {
  const payload: StockChangedPayload = {
    productId,
    quantityOnHand: levels.onHand,
    quantityReserved: levels.reserved,
    quantityAvailable: availableOf(levels),
    affects: [{ __typename: 'Product', id: productId }],
  };
  return { type: STOCK_CHANGED, aggregateId: productId, payload };
}

/** A reply to orders as an outbox message of the checkout contract (its aggregate: the checkout). */
export function replyMessage(checkout: { checkoutId: string; orderId: string }, reply: Reply): NewEvent {
  const base = { checkoutId: checkout.checkoutId, orderId: checkout.orderId };
  switch (reply.type) {
    case 'StockReserved':
      return checkoutMessage(STOCK_RESERVED, { ...base, expiresAt: reply.expiresAt });
    case 'StockReservationFailed':
      return checkoutMessage(STOCK_RESERVATION_FAILED, { ...base, reason: 'OUT_OF_STOCK', lines: reply.lines });
    case 'StockCommitted':
      return checkoutMessage(STOCK_COMMITTED, base);
    case 'StockCommitFailed':
      return checkoutMessage(STOCK_COMMIT_FAILED, { ...base, reason: reply.reason });
    case 'StockReleased':
      return checkoutMessage(STOCK_RELEASED, { ...base, expired: reply.expired });
    case 'StockRestocked':
      return checkoutMessage(STOCK_RESTOCKED, base);
  }
}
