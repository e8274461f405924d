import { join } from 'node:path';
import { defineStoreSubgraph, loadTypeDefs } from '@shop/server';
import type { Context } from './context';
import { migrations } from './data/migrations';
import { type AccountsDB, UsersRepository } from './data/repository';
import { createLoaders } from './loaders';
import { resolvers } from './resolvers';

export const typeDefs = loadTypeDefs(join(__dirname, 'schema.graphql'));

/** Builds the accounts subgraph (owner of `User`) on its own store. Does not listen. */
export const createAccounts = defineStoreSubgraph<AccountsDB, UsersRepository, Context>({
  typeDefs,
  resolvers,
  migrations,
  repository: (store, events) => new UsersRepository(store, events),
  context: ({ repository, telemetry, logger, pageMax, hot }) => ({
    users: repository,
    loaders: createLoaders(repository, telemetry, hot),
    logger,
    pageMax,
  }),
});
