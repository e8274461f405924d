import { join } from 'node:path';
import { type SeedSizes, defaultSeedSizes } from '@shop/seed';
import { type StoreLocation, type StoreSubgraph, createStoreSubgraph, loadTypeDefs } from '@shop/server';
import type { Telemetry } from '@shop/telemetry';
import type { Context } from './context';
import { migrations } from './data/migrations';
import { type ProductsDB, ProductsRepository } from './data/repository';
import { createLoaders } from './loaders';
import { resolvers } from './resolvers';

export const typeDefs = loadTypeDefs(join(__dirname, 'schema.graphql'));

export interface ProductsOptions {
  telemetry: Telemetry;
  store: StoreLocation;
  /** Seed sizes, or false to start empty. @default defaultSeedSizes */
  seed?: SeedSizes | false;
  /** @default 100 */
  pageMax?: number;
  debug?: boolean;
}

/** Builds the products subgraph (owner of `Product`) on its own store. Does not listen. */
export function createProducts(options: ProductsOptions): Promise<StoreSubgraph<ProductsDB>> {
  const { telemetry } = options;
  const seed = options.seed ?? defaultSeedSizes;
  return createStoreSubgraph<ProductsDB, Context>({
    telemetry,
    typeDefs,
    resolvers,
    store: options.store,
    migrations,
    debug: options.debug ?? false,
    seed: seed === false ? undefined : (store) => new ProductsRepository(store).seed(seed).then(() => undefined),
    context: (store, { logger }) => {
      const products = new ProductsRepository(store);
      return { products, loaders: createLoaders(products, telemetry), logger, pageMax: options.pageMax ?? 100 };
    },
  });
}
