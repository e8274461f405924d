import type { Logger } from '@shop/telemetry';
import type { StockRepository } from './data/repository';
import type { Loaders } from './loaders';

/** What every inventory resolver receives. */
export interface Context {
  loaders: Loaders;
  stock: StockRepository;
  logger: Logger;
}
