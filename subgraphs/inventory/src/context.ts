import type { Identity, SubscriptionEvent } from '@shop/server';
import type { Logger } from '@shop/telemetry';
import type { StockRepository } from './data/repository';
import type { Loaders } from './loaders';

/** What every inventory resolver receives. */
export interface Context {
  loaders: Loaders;
  stock: StockRepository;
  logger: Logger;
  /** The caller the gateway signed for; undefined when anonymous. setStock needs its inventory:write scope. */
  viewer: Identity | undefined;
  /** Set when the gateway resolves `Subscription.stockChanged` for one StockChanged event. */
  subscriptionEvent: SubscriptionEvent | undefined;
}
