import type { BaseContext } from '@apollo/server';
import type { DocumentNode } from 'graphql';
import { type Migration, type Store, type StoreLocation, openStore } from '@shop/store';
import type { Telemetry } from '@shop/telemetry';
import type { RequestInfo } from './http';
import { type Subgraph, createSubgraph } from './subgraph';

export type { StoreLocation };

export interface StoreSubgraphOptions<DB, TContext extends BaseContext> {
  telemetry: Telemetry;
  typeDefs: DocumentNode;
  resolvers: object;
  store: StoreLocation;
  migrations: Record<string, Migration>;
  /** Fills an empty store with seed data; must be a no-op when the store already has data. */
  seed?: (store: Store<DB>) => Promise<void>;
  context: (store: Store<DB>, info: RequestInfo) => TContext | Promise<TContext>;
  debug?: boolean;
}

/** A subgraph together with the store it alone owns. */
export interface StoreSubgraph<DB> extends Subgraph {
  readonly store: Store<DB>;
}

/**
 * The start-up every store-backed subgraph shares: open its own store, migrate, seed when empty,
 * then build the GraphQL server. `/ready` answers whether the store is reachable.
 */
export async function createStoreSubgraph<DB, TContext extends BaseContext>(
  options: StoreSubgraphOptions<DB, TContext>,
): Promise<StoreSubgraph<DB>> {
  const { telemetry } = options;
  const store = await openStore<DB>({ service: telemetry.service, telemetry, ...options.store });
  try {
    await store.migrate(options.migrations);
    if (options.seed) {
      const started = Date.now();
      await options.seed(store);
      telemetry.logger.debug({ ms: Date.now() - started }, 'seed checked');
    }
    const subgraph = await createSubgraph<TContext>({
      telemetry,
      typeDefs: options.typeDefs,
      resolvers: options.resolvers,
      context: async (info) => options.context(store, info),
      ready: () => store.ping(),
      close: () => store.close(),
      debug: options.debug ?? false,
    });
    return Object.assign(subgraph, { store });
  } catch (err) {
    await store.close();
    throw err;
  }
}
