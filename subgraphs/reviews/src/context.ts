import type { Invalidation } from '@shop/server';
import type { Logger } from '@shop/telemetry';
import type { ReviewsRepository } from './data/repository';
import type { Loaders } from './loaders';

/** What every reviews resolver receives. */
export interface Context {
  loaders: Loaders;
  reviews: ReviewsRepository;
  logger: Logger;
  /** Entities this request changed besides the ones it returns (sent to the gateway's caches). */
  invalidations: Invalidation[];
  /** Largest `first` a client may ask for. */
  pageMax: number;
}
