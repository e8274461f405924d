import { createLoader } from '@shop/server';
import type { Telemetry } from '@shop/telemetry';
import type { StockRepository, StockRow } from './data/repository';

/**
 * Per-request loaders: made in the context factory, so their cache lives as long as one request.
 * Stock is not kept between requests (no hot cache): it changes with every checkout, and the
 * gateway's short-lived entity cache, evicted on StockChanged, is the layer that absorbs reads.
 */
export function createLoaders(stock: StockRepository, telemetry: Telemetry) {
  return {
    /** Stock records by product id; null where the warehouse has no record. */
    stock: createLoader<string, StockRow>(telemetry, 'stock', (ids) => stock.byProductIds(ids)),
  };
}

export type Loaders = ReturnType<typeof createLoaders>;
