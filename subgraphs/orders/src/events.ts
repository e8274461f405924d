import { CHECKOUT_REPLIES, type EventEnvelope } from '@shop/events';
import type { Consumers } from '@shop/server';
import type { CheckoutOrchestrator } from './checkout/orchestrator';
import type { Kysely } from '@shop/store';
import { type OrdersDB, OrdersRepository } from './data/repository';

/**
 * What orders publishes: every order event (OrderCreated, OrderLineAdded, OrderLineRemoved,
 * OrderPlaced, OrderCancelled) goes to the outbox in the transaction that appends it to the
 * event store; the payload carries orderId, customerId, version, recordedAt, the event's data,
 * correlation and causation ids, and `affects` (the Order and its customer) for caches.
 *
 * What it consumes: products' catalogue events, into its own price projection, from which lines
 * capture their unitPrice. Keys: id, price (cents), discontinued (products' `snapshot`). And
 * accounts' UserCreated (and UserUpdated, for a user created before orders subscribed), into its
 * set of known customers: createOrder refuses a customer accounts never created.
 */
export function consumers(): Consumers {
  const project = {
    versions: [1],
    handle: async (trx: Kysely<never>, event: { aggregateVersion: number; payload: Record<string, unknown> }) => {
      const p = event.payload as { id: string; price: number; discontinued?: boolean };
      await OrdersRepository.applyProduct(
        trx as unknown as Kysely<OrdersDB>,
        { id: p.id, price: p.price, discontinued: p.discontinued === true },
        event.aggregateVersion,
      );
    },
  };
  const customer = {
    versions: [1],
    handle: async (trx: Kysely<never>, event: { aggregateId: string }) => {
      await OrdersRepository.applyCustomer(trx as unknown as Kysely<OrdersDB>, event.aggregateId);
    },
  };
  return { ProductCreated: project, ProductUpdated: project, ProductDiscontinued: project, UserCreated: customer, UserUpdated: customer };
}

/**
 * The checkout saga's replies (inventory's and payments' answers to its commands): each is
 * decided in the inbox's transaction, so it is applied once and its consequences (the next
 * command in the outbox, the deadline, the order's confirmation) commit with it.
 */
export function checkoutConsumers(orchestrator: CheckoutOrchestrator): Consumers {
  const handle = { versions: [1], handle: (trx: Kysely<never>, event: EventEnvelope) => orchestrator.onReply(trx, event) };
  return Object.fromEntries(CHECKOUT_REPLIES.map((type) => [type, handle]));
}
