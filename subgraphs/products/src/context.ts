import type { Identity } from '@shop/server';
import type { Logger } from '@shop/telemetry';
import type { ProductsRepository } from './data/repository';
import type { Loaders } from './loaders';

/** What every products resolver receives. */
export interface Context {
  loaders: Loaders;
  products: ProductsRepository;
  logger: Logger;
  /** Largest `first` a client may ask for. */
  pageMax: number;
  /** The caller the gateway signed for; undefined when anonymous. Writes need its catalog:write scope. */
  viewer: Identity | undefined;
}
