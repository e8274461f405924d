import { join } from 'node:path';
import { defineStoreSubgraph, loadTypeDefs } from '@shop/server';
import type { Context } from './context';
import { migrations } from './data/migrations';
import { type ReviewsDB, ReviewsRepository } from './data/repository';
import { createLoaders } from './loaders';
import { resolvers } from './resolvers';

export const typeDefs = loadTypeDefs(join(__dirname, 'schema.graphql'));

/** Builds the reviews subgraph (owner of `Review`) on its own store. Does not listen. */
export const createReviews = defineStoreSubgraph<ReviewsDB, ReviewsRepository, Context>({
  typeDefs,
  resolvers,
  migrations,
  repository: (store, events) => new ReviewsRepository(store, events),
  context: ({ repository, telemetry, logger, pageMax }) => ({
    reviews: repository,
    loaders: createLoaders(repository, telemetry),
    logger,
    pageMax,
    invalidations: [],
  }),
});
