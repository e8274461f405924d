import { join } from 'node:path';
import { type SeedSizes, defaultSeedSizes } from '@shop/seed';
import { type StoreLocation, type StoreSubgraph, createStoreSubgraph, loadTypeDefs } from '@shop/server';
import type { Telemetry } from '@shop/telemetry';
import type { Context } from './context';
import { migrations } from './data/migrations';
import { type InventoryDB, StockRepository } from './data/repository';
import { createLoaders } from './loaders';
import { resolvers } from './resolvers';

export const typeDefs = loadTypeDefs(join(__dirname, 'schema.graphql'));

export interface InventoryOptions {
  telemetry: Telemetry;
  store: StoreLocation;
  /** Seed sizes, or false to start empty. @default defaultSeedSizes */
  seed?: SeedSizes | false;
  debug?: boolean;
}

/** Builds the inventory subgraph (stock records; extends `Product`) on its own store. Does not listen. */
export function createInventory(options: InventoryOptions): Promise<StoreSubgraph<InventoryDB>> {
  const { telemetry } = options;
  const seed = options.seed ?? defaultSeedSizes;
  return createStoreSubgraph<InventoryDB, Context>({
    telemetry,
    typeDefs,
    resolvers,
    store: options.store,
    migrations,
    debug: options.debug ?? false,
    seed: seed === false ? undefined : (store) => new StockRepository(store).seed(seed).then(() => undefined),
    context: (store, { logger }) => {
      const stock = new StockRepository(store);
      return { stock, loaders: createLoaders(stock, telemetry), logger };
    },
  });
}
