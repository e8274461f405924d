import type { Identity, SubscriptionEvent } from '@shop/server';
import type { Logger } from '@shop/telemetry';
import type { ShardedOrders } from './sharding/router';
import type { Loaders } from './loaders';

/** What every orders resolver receives. */
export interface Context {
  loaders: Loaders;
  /** Orders over its shards: every read and write is routed by slot (see sharding/router.ts). */
  orders: ShardedOrders;
  logger: Logger;
  /** This request's id: the correlation id of every event its commands cause. */
  requestId: string;
  /** Largest `first` a client may ask for. */
  pageMax: number;
  /**
   * The caller the gateway signed for; undefined when anonymous. An order is its customer's (or an
   * orders:admin caller's) to read and change.
   */
  viewer: Identity | undefined;
  /** Set when the gateway resolves `Subscription.orderUpdated` for one of the order's events. */
  subscriptionEvent: SubscriptionEvent | undefined;
}
