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
}
