import { join } from 'node:path';
import { defineStoreSubgraph, loadTypeDefs } from '@shop/server';
import type { Kysely } from '@shop/store';
import type { Context } from './context';
import { migrations } from './data/migrations';
import { type InventoryDB, StockRepository } from './data/repository';
import { createLoaders } from './loaders';
import { resolvers } from './resolvers';

export const typeDefs = loadTypeDefs(join(__dirname, 'schema.graphql'));

/** Builds the inventory subgraph (stock records; extends `Product`) on its own store. Does not listen. */
export const createInventory = defineStoreSubgraph<InventoryDB, StockRepository, Context>({
  typeDefs,
  resolvers,
  migrations,
  repository: (store) => new StockRepository(store),
  consumes: () => ({
    ProductCreated: {
      versions: [1],
      handle: (trx, event) => StockRepository.ensureRecord(trx as unknown as Kysely<InventoryDB>, event.aggregateId),
    },
  }),
  context: ({ repository, telemetry, logger, identity }) => ({
    stock: repository,
    loaders: createLoaders(repository, telemetry),
    logger,
    viewer: identity,
  }),
});

/** The data layer, for tests that change stock behind the API on purpose (the outage test). */
export { StockRepository } from './data/repository';
