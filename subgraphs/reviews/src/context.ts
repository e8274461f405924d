import type { Logger } from '@shop/telemetry';
import type { ReviewsRepository } from './data/repository';
import type { Loaders } from './loaders';

/** What every reviews resolver receives. */
export interface Context {
  loaders: Loaders;
  reviews: ReviewsRepository;
  logger: Logger;
  /** Largest `first` a client may ask for. */
  pageMax: number;
}
