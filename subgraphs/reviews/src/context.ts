import type { Identity } from '@shop/server';
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
  /** The caller the gateway signed for; undefined when anonymous. A new review's author is this caller. */
  viewer: Identity | undefined;
}
