import { type HotCache, byIdLoader } from '@shop/server';
import type { Telemetry } from '@shop/telemetry';
import type { ProductRow, ProductsRepository } from './data/repository';

/**
 * Per-request loaders, made in the context factory. A product by id is a hot read: DataLoader
 * batches a request's lookups, the shared cache answers across requests, the store gets misses.
 */
export function createLoaders(products: ProductsRepository, telemetry: Telemetry, hot: HotCache | undefined) {
  return {
    product: byIdLoader<ProductRow>(telemetry, 'product', hot, (ids) => products.byIds(ids)),
  };
}

export type Loaders = ReturnType<typeof createLoaders>;
