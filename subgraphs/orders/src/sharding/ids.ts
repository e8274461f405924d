import { randomUUID } from 'node:crypto';
import { slotHex, slotOf } from '@shop/eventstore';

/**
 * Order and checkout ids carry the slot of their customer, so a read or a command by id goes
 * straight to the shard that owns the slot, with no directory to ask: `o3f-<key>` is an order of a
 * customer in slot 0x3f, `c3f-<uuid>` a checkout of one. The key is a UUID unless the client chose
 * one (`createOrder(id:)`).
 */
const SLOTTED_ID = /^[oc]([0-9a-f]{2})-/;

/** The slot an order or checkout id carries; undefined for an id this service never issued. */
export function slotOfId(id: string): number | undefined {
  const m = SLOTTED_ID.exec(id);
  return m ? Number.parseInt(m[1]!, 16) : undefined;
}

/**
 * The order id for a customer and a key: `o<slot>-<key>`. A key that already is an order id (it
 * carries a slot) is kept as it is, so a client that sends back the id it was given is not
 * prefixed twice; `createOrder` refuses one whose slot is not its customer's.
 */
export function orderIdFor(customerId: string, key: string): string {
  return key.startsWith('o') && slotOfId(key) !== undefined ? key : `o${slotHex(slotOf(customerId))}-${key}`;
}

/** A new order id for a customer. */
export const newOrderId = (customerId: string): string => orderIdFor(customerId, randomUUID());

/** A new checkout id for a customer's order. */
export const newCheckoutId = (customerId: string): string => `c${slotHex(slotOf(customerId))}-${randomUUID()}`;
