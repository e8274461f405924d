import { join } from 'node:path';
import { defineStoreSubgraph, loadTypeDefs } from '@shop/server';
import { appendEvents } from '@shop/events';
import type { Kysely } from '@shop/store';
import type { Context } from './context';
import { migrations } from './data/migrations';
import { type ProductsDB, ProductsRepository } from './data/repository';
import { createLoaders } from './loaders';
import { resolvers } from './resolvers';

export const typeDefs = loadTypeDefs(join(__dirname, 'schema.graphql'));

/** Builds the products subgraph (owner of `Product`) on its own store. Does not listen. */
export const createProducts = defineStoreSubgraph<ProductsDB, ProductsRepository, Context>({
  typeDefs,
  resolvers,
  migrations,
  repository: (store, events) => new ProductsRepository(store, events),
  consumes: () => ({
    ReviewAdded: {
      versions: [1],
      handle: async (trx, event) => {
        const { productId, rating } = event.payload as { productId: string; rating: number };
        await ProductsRepository.applyReview(trx as unknown as Kysely<ProductsDB>, productId, rating);
        // products owns Product: it announces the change to its fields itself, in the same
        // transaction, so caches evict after the read model changed, never before.
        await appendEvents(trx, 'products', [{ type: 'ProductRatingChanged', aggregateId: productId, payload: { id: productId } }]);
      },
    },
  }),
  context: ({ repository, telemetry, logger, pageMax, hot, identity }) => ({
    products: repository,
    loaders: createLoaders(repository, telemetry, hot),
    logger,
    pageMax,
    viewer: identity,
  }),
});

/** The data layer, for tools that write behind the API on purpose (the events benchmark seeds with it). */
export { ProductsRepository } from './data/repository';
