import { type HotCache, byIdLoader, createLoader } from '@shop/server';
import type { Telemetry } from '@shop/telemetry';
import type { ProductRow, ProductsRepository, Rating } from './data/repository';

/**
 * Per-request loaders, made in the context factory. A product by id is a hot read: DataLoader
 * batches a request's lookups, the shared cache answers across requests, the store gets misses.
 */
export function createLoaders(products: ProductsRepository, telemetry: Telemetry, hot: HotCache | undefined) {
  return {
    product: byIdLoader<ProductRow>(telemetry, 'product', hot, (ids) => products.byIds(ids)),
    // Ratings change with every review: batched per request, never cached between requests.
    rating: createLoader<string, Rating>(telemetry, 'rating', (ids) => products.ratings(ids)),
  };
}

export type Loaders = ReturnType<typeof createLoaders>;
