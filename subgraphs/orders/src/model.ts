import type { Order, OrderLine } from './domain';

/** An order as resolvers see it: the domain state, and the instant it was read as of, if any. */
export interface OrderModel extends Order {
  /** Set for a time-travel read: the state as recorded up to this instant. */
  asOf?: string;
}

export type OrderLineModel = OrderLine;

/** One event of an order's stream, as `Order.history` lists it. */
export interface HistoryEntryModel {
  version: number;
  type: string;
  recordedAt: string;
  position: number;
  correlationId: string | null;
  causationId: string | null;
}

/** A reference to an entity another service owns: orders stores only its id. */
export interface EntityRef {
  id: string;
}
