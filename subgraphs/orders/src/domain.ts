// The order aggregate as a decider: `decide(command, state)` says what happened (events) or why
// not (a rejection); `evolve(state, event)` folds one event into the state. Both are pure: no
// clock, no I/O, no randomness. Times come from the event store (`recordedAt`), prices from the
// command (the handler looks them up in the price projection before deciding).

// Ids in rejection messages came from the client: `quote` (a pure function) shows a short prefix.
import { quote } from '@shop/server';

/**
 * DRAFT: being filled. PLACED: placed (by placeOrder, or by checkout while its saga runs).
 * CONFIRMED: its checkout reserved the stock, took the payment and committed both. REJECTED: its
 * checkout failed and was compensated. CANCELLED: cancelled (a confirmed order is refunded and
 * restocked by the reverse saga).
 */
export type OrderStatus = 'DRAFT' | 'PLACED' | 'CONFIRMED' | 'REJECTED' | 'CANCELLED';

export interface OrderLine {
  productId: string;
  quantity: number;
  /** The product's price in cents when it was first added to this order. */
  unitPrice: number;
}

/** An order as its events made it. */
export interface Order {
  id: string;
  customerId: string;
  status: OrderStatus;
  /** In the order they were first added. */
  lines: OrderLine[];
  /** Sum of quantity x unitPrice, in cents. */
  total: number;
  createdAt: string;
  placedAt: string | null;
  cancelledAt: string | null;
  cancelReason: string | null;
  /** The checkout that placed it (its latest), or null. */
  checkoutId: string | null;
  /** Why its checkout was rejected (OUT_OF_STOCK, PAYMENT_DECLINED, PAYMENT_UNAVAILABLE, TIMED_OUT), or null. */
  rejectionReason: string | null;
  /** The stream version: how many events the order has. */
  version: number;
  /** When its last event was recorded. */
  updatedAt: string;
}

/** No order yet (the stream is empty), or the order. */
export type OrderState = Order | null;

/** Largest quantity one command may add. */
export const MAX_QUANTITY = 1000;

/**
 * Largest order total (and so line total and unit price) in cents: GraphQL's Int is 32-bit, and
 * `total`, `lineTotal` and `unitPrice` are served as Int (and stored in integer columns), so a sum
 * past this would be a committed order that no read can serve. The decider refuses any command
 * that would take an order past it, before anything is written.
 */
export const MAX_ORDER_TOTAL = 2_147_483_647;

// ---- events ---------------------------------------------------------------------------------

export type OrderEvent =
  | { type: 'OrderCreated'; data: { orderId: string; customerId: string } }
  | { type: 'OrderLineAdded'; data: { productId: string; quantity: number; unitPrice: number } }
  | { type: 'OrderLineRemoved'; data: { productId: string } }
  | { type: 'OrderPlaced'; data: { total: number } }
  | { type: 'OrderCancelled'; data: { reason: string | null } }
  | { type: 'OrderCheckoutStarted'; data: { checkoutId: string; total: number } }
  | { type: 'OrderConfirmed'; data: { checkoutId: string } }
  | { type: 'OrderRejected'; data: { checkoutId: string; reason: string } };

export type OrderEventType = OrderEvent['type'];
export const ORDER_EVENT_TYPES: readonly OrderEventType[] = [
  'OrderCreated',
  'OrderLineAdded',
  'OrderLineRemoved',
  'OrderPlaced',
  'OrderCancelled',
  'OrderCheckoutStarted',
  'OrderConfirmed',
  'OrderRejected',
];

/** An event as the store recorded it: with its place in the stream and its time. */
export type RecordedOrderEvent = OrderEvent & { version: number; recordedAt: string };

// ---- commands -------------------------------------------------------------------------------

export type OrderCommand =
  | { type: 'CreateOrder'; orderId: string; customerId: string }
  | { type: 'AddOrderLine'; productId: string; quantity: number; unitPrice: number }
  | { type: 'RemoveOrderLine'; productId: string }
  | { type: 'PlaceOrder' }
  | { type: 'CancelOrder'; reason?: string | null }
  | { type: 'StartCheckout'; checkoutId: string }
  | { type: 'ConfirmOrder'; checkoutId: string }
  | { type: 'RejectOrder'; checkoutId: string; reason: string };

/** Why a command was refused; `code` goes to the client as `extensions.code`. */
export interface OrderRejection {
  code: OrderRejectionCode;
  message: string;
  /** The argument at fault, when there is one. */
  field?: string;
}

export type OrderRejectionCode =
  | 'NOT_FOUND'
  | 'BAD_USER_INPUT'
  | 'ORDER_ALREADY_EXISTS'
  | 'ORDER_NOT_DRAFT'
  | 'ORDER_EMPTY'
  | 'ORDER_ALREADY_CANCELLED'
  | 'ORDER_LINE_NOT_FOUND'
  | 'CHECKOUT_IN_PROGRESS'
  | 'CONFLICT';

export type Decision = OrderEvent[] | OrderRejection;

export const isRejection = (d: Decision): d is OrderRejection => !Array.isArray(d);

const reject = (code: OrderRejectionCode, message: string, field?: string): OrderRejection =>
  field ? { code, message, field } : { code, message };

const mustBeDraft = (state: Order, action: string): OrderRejection | undefined =>
  state.status === 'DRAFT'
    ? undefined
    : reject('ORDER_NOT_DRAFT', `order ${quote(state.id)} is ${state.status.toLowerCase()}: cannot ${action}`);

/** What happens when `command` meets `state`: the new events, or why not. */
export function decide(command: OrderCommand, state: OrderState): Decision {
  if (command.type === 'CreateOrder') {
    if (state) return reject('ORDER_ALREADY_EXISTS', `order ${quote(state.id)} already exists`, 'id');
    if (!command.customerId) return reject('BAD_USER_INPUT', 'customerId must not be empty', 'customerId');
    return [{ type: 'OrderCreated', data: { orderId: command.orderId, customerId: command.customerId } }];
  }
  if (!state) return reject('NOT_FOUND', 'order not found', 'orderId');
  switch (command.type) {
    case 'AddOrderLine': {
      const { quantity, productId, unitPrice } = command;
      if (!Number.isInteger(quantity) || quantity < 1 || quantity > MAX_QUANTITY) {
        return reject('BAD_USER_INPUT', `quantity must be a whole number from 1 to ${MAX_QUANTITY}; received ${quantity}`, 'quantity');
      }
      if (!Number.isInteger(unitPrice) || unitPrice < 0)
        return reject('BAD_USER_INPUT', `unitPrice must be whole cents, not negative; received ${unitPrice}`, 'unitPrice');
      const notDraft = mustBeDraft(state, 'add a line');
      if (notDraft) return notDraft;
      // More of a product already on the order keeps the price captured when it was first added.
      const existing = state.lines.find((l) => l.productId === productId);
      const price = existing ? existing.unitPrice : unitPrice;
      // Every line total is at most the order total, so bounding the total bounds them all.
      const total = state.total + quantity * price;
      if (total > MAX_ORDER_TOTAL) {
        return reject(
          'BAD_USER_INPUT',
          `quantity ${quantity} at ${price} cents would take the order total to ${total} cents, above the maximum of ${MAX_ORDER_TOTAL}`,
          'quantity',
        );
      }
      return [{ type: 'OrderLineAdded', data: { productId, quantity, unitPrice: price } }];
    }
    case 'RemoveOrderLine': {
      const notDraft = mustBeDraft(state, 'remove a line');
      if (notDraft) return notDraft;
      if (!state.lines.some((l) => l.productId === command.productId)) {
        return reject('ORDER_LINE_NOT_FOUND', `order ${quote(state.id)} has no line for product ${quote(command.productId)}`, 'productId');
      }
      return [{ type: 'OrderLineRemoved', data: { productId: command.productId } }];
    }
    case 'PlaceOrder': {
      const notDraft = mustBeDraft(state, 'place it');
      if (notDraft) return notDraft;
      if (state.lines.length === 0) return reject('ORDER_EMPTY', `order ${quote(state.id)} has no lines: an empty order cannot be placed`);
      return [{ type: 'OrderPlaced', data: { total: state.total } }];
    }
    case 'CancelOrder': {
      if (state.status === 'CANCELLED') return reject('ORDER_ALREADY_CANCELLED', `order ${quote(state.id)} is already cancelled`);
      if (state.status === 'PLACED' && state.checkoutId !== null) {
        return reject('CHECKOUT_IN_PROGRESS', `order ${quote(state.id)} is being checked out: cancel it once its checkout has ended`);
      }
      return [{ type: 'OrderCancelled', data: { reason: command.reason ?? null } }];
    }
    case 'StartCheckout': {
      const notDraft = mustBeDraft(state, 'check it out');
      if (notDraft) return notDraft;
      if (state.lines.length === 0)
        return reject('ORDER_EMPTY', `order ${quote(state.id)} has no lines: an empty order cannot be checked out`);
      return [{ type: 'OrderCheckoutStarted', data: { checkoutId: command.checkoutId, total: state.total } }];
    }
    case 'ConfirmOrder':
    case 'RejectOrder': {
      // The saga's own commands: only for the checkout that placed the order, once.
      if (state.status !== 'PLACED' || state.checkoutId !== command.checkoutId) {
        return reject(
          'CONFLICT',
          `order ${quote(state.id)} is ${state.status.toLowerCase()}, not in checkout ${quote(command.checkoutId)}`,
        );
      }
      return command.type === 'ConfirmOrder'
        ? [{ type: 'OrderConfirmed', data: { checkoutId: command.checkoutId } }]
        : [{ type: 'OrderRejected', data: { checkoutId: command.checkoutId, reason: command.reason } }];
    }
  }
}

const totalOf = (lines: readonly OrderLine[]) => lines.reduce((sum, l) => sum + l.quantity * l.unitPrice, 0);

/** The state after one more event. An event that cannot apply is a bug in the stream: it throws. */
export function evolve(state: OrderState, event: RecordedOrderEvent): Order {
  if (event.type === 'OrderCreated') {
    if (state) throw new Error(`OrderCreated at version ${event.version} of an order that exists`);
    return {
      id: event.data.orderId,
      customerId: event.data.customerId,
      status: 'DRAFT',
      lines: [],
      total: 0,
      createdAt: event.recordedAt,
      placedAt: null,
      cancelledAt: null,
      cancelReason: null,
      checkoutId: null,
      rejectionReason: null,
      version: event.version,
      updatedAt: event.recordedAt,
    };
  }
  if (!state) throw new Error(`${event.type} at version ${event.version} before OrderCreated`);
  const next = { ...state, version: event.version, updatedAt: event.recordedAt };
  switch (event.type) {
    case 'OrderLineAdded': {
      const { productId, quantity, unitPrice } = event.data;
      const found = state.lines.some((l) => l.productId === productId);
      const lines = found
        ? state.lines.map((l) => (l.productId === productId ? { ...l, quantity: l.quantity + quantity } : l))
        : [...state.lines, { productId, quantity, unitPrice }];
      return { ...next, lines, total: totalOf(lines) };
    }
    case 'OrderLineRemoved': {
      const lines = state.lines.filter((l) => l.productId !== event.data.productId);
      return { ...next, lines, total: totalOf(lines) };
    }
    case 'OrderPlaced':
      return { ...next, status: 'PLACED', placedAt: event.recordedAt };
    case 'OrderCancelled':
      return { ...next, status: 'CANCELLED', cancelledAt: event.recordedAt, cancelReason: event.data.reason };
    case 'OrderCheckoutStarted':
      return { ...next, status: 'PLACED', placedAt: event.recordedAt, checkoutId: event.data.checkoutId, rejectionReason: null };
    case 'OrderConfirmed':
      return { ...next, status: 'CONFIRMED' };
    case 'OrderRejected':
      return { ...next, status: 'REJECTED', rejectionReason: event.data.reason };
  }
}

/** Folds a stream (in version order) into the state; `initial` lets a snapshot stand for a prefix. */
export function replay(events: Iterable<RecordedOrderEvent>, initial: OrderState = null): OrderState {
  let state = initial;
  for (const e of events) state = evolve(state, e);
  return state;
}

export const isOrderEventType = (type: string): type is OrderEventType => (ORDER_EVENT_TYPES as readonly string[]).includes(type);

/** Narrows an untyped stored event to an order event; anything else is a corrupt stream. */
export function toOrderEvent(type: string, data: unknown): OrderEvent {
  if (!(ORDER_EVENT_TYPES as readonly string[]).includes(type) || typeof data !== 'object' || data === null) {
    throw new Error(`not an order event: ${type}`);
  }
  return { type, data } as OrderEvent;
}
