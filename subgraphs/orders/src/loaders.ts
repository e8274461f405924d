import { createLoader } from '@shop/server';
import type { Telemetry } from '@shop/telemetry';
import type { Order } from './domain';
import type { OrderCursor } from './data/repository';
import type { ShardedOrders } from './sharding/router';
import type { HistoryEntryModel } from './model';
import type { CheckoutView } from './checkout/projection';

/** A page of a customer's orders: whose, how many (plus one, to tell whether more follow), after what. */
export interface CustomerOrdersKey {
  customerId: string;
  limit: number;
  after: OrderCursor | undefined;
}

const keyOf = (k: CustomerOrdersKey) => `${k.limit}:${k.after ? `${k.after.createdAt}|${k.after.id}` : ''}:${k.customerId}`;

/** Per-request loaders: made in the context factory, so their cache lives as long as one request. */
export function createLoaders(orders: ShardedOrders, telemetry: Telemetry) {
  return {
    /** Orders from the order view (never rebuilt from events). */
    order: createLoader<string, Order>(telemetry, 'order', (ids) => orders.byIds(ids)),
    /**
     * First pages of many customers' orders share one round trip (a window per customer); a page
     * after a cursor is its own query.
     */
    customerOrders: createLoader<CustomerOrdersKey, Order[], string>(
      telemetry,
      'customerOrders',
      async (keys) => {
        const results = new Map<string, Order[]>();
        const firstPages = new Map<number, string[]>();
        const later: CustomerOrdersKey[] = [];
        for (const k of keys) {
          if (k.after) later.push(k);
          else firstPages.set(k.limit, [...(firstPages.get(k.limit) ?? []), k.customerId]);
        }
        await Promise.all([
          ...[...firstPages].map(async ([limit, ids]) => {
            const lists = await orders.newestPerCustomer(ids, limit);
            ids.forEach((customerId, i) => results.set(keyOf({ customerId, limit, after: undefined }), lists[i] ?? []));
          }),
          ...later.map(async (k) => results.set(keyOf(k), await orders.customerPage(k.customerId, k.limit, k.after!))),
        ]);
        return keys.map((k) => results.get(keyOf(k)) ?? []);
      },
      { cacheKeyFn: keyOf },
    ),
    /** Each order's latest checkout, for Order.checkout. */
    checkout: createLoader<string, CheckoutView>(telemetry, 'checkout', (ids) => orders.latestCheckouts(ids)),
    /** Each order's events, for Order.history. */
    history: createLoader<string, HistoryEntryModel[]>(telemetry, 'history', (ids) => orders.histories(ids)),
  };
}

export type Loaders = ReturnType<typeof createLoaders>;
