import { join } from 'node:path';
import type { EventEnvelope } from '@shop/events';
import { defineStoreSubgraph, loadTypeDefs } from '@shop/server';
import type { Kysely } from '@shop/store';
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
  consumes: () => {
    const project = {
      versions: [1],
      handle: async (trx: Kysely<never>, event: EventEnvelope) => {
        const p = event.payload as { id: string; name: string; discontinued?: boolean };
        await ReviewsRepository.applyProduct(trx as unknown as Kysely<ReviewsDB>, {
          id: p.id,
          name: p.name,
          discontinued: p.discontinued === true,
        });
      },
    };
    return { ProductCreated: project, ProductUpdated: project, ProductDiscontinued: project };
  },
  context: ({ repository, telemetry, logger, pageMax, identity }) => ({
    reviews: repository,
    loaders: createLoaders(repository, telemetry),
    logger,
    pageMax,
    viewer: identity,
  }),
});
