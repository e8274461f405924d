import { createLoader } from '@shop/server';
import type { Telemetry } from '@shop/telemetry';
import type { ProductRow, ProductsRepository } from './data/repository';

/** Per-request loaders: made in the context factory, so their cache lives as long as one request. */
export function createLoaders(products: ProductsRepository, telemetry: Telemetry) {
  return {
    product: createLoader<string, ProductRow>(telemetry, 'product', (ids) => products.byIds(ids)),
  };
}

export type Loaders = ReturnType<typeof createLoaders>;
