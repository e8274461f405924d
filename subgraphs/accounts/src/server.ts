import { join } from 'node:path';
import { type SeedSizes, defaultSeedSizes } from '@shop/seed';
import { type StoreLocation, type StoreSubgraph, createStoreSubgraph, loadTypeDefs } from '@shop/server';
import type { Telemetry } from '@shop/telemetry';
import type { Context } from './context';
import { migrations } from './data/migrations';
import { type AccountsDB, UsersRepository } from './data/repository';
import { createLoaders } from './loaders';
import { resolvers } from './resolvers';

export const typeDefs = loadTypeDefs(join(__dirname, 'schema.graphql'));

export interface AccountsOptions {
  telemetry: Telemetry;
  store: StoreLocation;
  /** Seed sizes, or false to start empty. @default defaultSeedSizes */
  seed?: SeedSizes | false;
  /** @default 100 */
  pageMax?: number;
  debug?: boolean;
}

/** Builds the accounts subgraph (owner of `User`) on its own store. Does not listen. */
export function createAccounts(options: AccountsOptions): Promise<StoreSubgraph<AccountsDB>> {
  const { telemetry } = options;
  const seed = options.seed ?? defaultSeedSizes;
  return createStoreSubgraph<AccountsDB, Context>({
    telemetry,
    typeDefs,
    resolvers,
    store: options.store,
    migrations,
    debug: options.debug ?? false,
    seed: seed === false ? undefined : (store) => new UsersRepository(store).seed(seed).then(() => undefined),
    context: (store, { logger }) => {
      const users = new UsersRepository(store);
      return { users, loaders: createLoaders(users, telemetry), logger, pageMax: options.pageMax ?? 100 };
    },
  });
}
