import type { BaseContext } from '@apollo/server';
import type { DocumentNode } from 'graphql';
import type { CacheStore } from '@shop/cache';
import { type SeedSizes, defaultSeedSizes } from '@shop/seed';
import { type Migration, type Store, type StoreLocation, openStore } from '@shop/store';
import type { Logger, Telemetry } from '@shop/telemetry';
import { type Subgraph, createSubgraph } from './subgraph';

export type { StoreLocation };

/** What every subgraph factory accepts: the same for tests, `index.ts` and the embedded stack. */
export interface SubgraphFactoryOptions {
  telemetry: Telemetry;
  store: StoreLocation;
  /** Seed sizes for an empty store, or false to start empty. @default defaultSeedSizes */
  seed?: SeedSizes | false;
  /** Largest `first` a client may ask for. @default 100 */
  pageMax?: number;
  /** Stack traces in error responses. @default false */
  debug?: boolean;
  /** The shared cache for hot reads (by-id lookups); none means every read goes to the store. */
  cacheStore?: CacheStore | undefined;
  /** How long a hot read stays cached; writes through this service evict it sooner. @default 60_000 */
  hotCacheTtlMs?: number;
}

/** A repository that can fill its empty store with the deterministic seed. */
export interface Seedable {
  /** Inserts seed rows when the store is empty; returns how many (0 when it already had data). */
  seed(sizes: SeedSizes): Promise<number>;
}

/** What a context factory gets to build one request's context from. */
export interface ContextDeps<Repo> {
  repository: Repo;
  telemetry: Telemetry;
  /** The request's logger, carrying its request id. */
  logger: Logger;
  pageMax: number;
  /** Hot-read caching, when enabled: pass it to `byIdLoader`. */
  hot: HotCache | undefined;
}

/** Where by-id loaders keep entities between requests. */
export interface HotCache {
  store: CacheStore;
  ttlMs: number;
}

/** A store-backed subgraph: its schema, resolvers, migrations, repository and context. */
export interface StoreSubgraphDefinition<DB, Repo extends Seedable, TContext extends BaseContext> {
  typeDefs: DocumentNode;
  resolvers: object;
  migrations: Record<string, Migration>;
  /** The only code that touches the store; one instance per subgraph (it holds no request state). */
  repository: (store: Store<DB>) => Repo;
  /** Builds one request's context; per-request DataLoaders are created here. */
  context: (deps: ContextDeps<Repo>) => TContext;
}

/** A subgraph together with the store it alone owns. */
export interface StoreSubgraph<DB> extends Subgraph {
  readonly store: Store<DB>;
}

/**
 * Turns a definition into a factory. The start-up every store-backed subgraph shares: open its
 * own store, migrate, seed when empty, then build the GraphQL server; `/ready` answers whether
 * the store is reachable. The factory does not listen.
 */
export function defineStoreSubgraph<DB, Repo extends Seedable, TContext extends BaseContext>(
  definition: StoreSubgraphDefinition<DB, Repo, TContext>,
): (options: SubgraphFactoryOptions) => Promise<StoreSubgraph<DB>> {
  return async (options) => {
    const { telemetry } = options;
    const pageMax = options.pageMax ?? 100;
    const hot = options.cacheStore ? { store: options.cacheStore, ttlMs: options.hotCacheTtlMs ?? 60_000 } : undefined;
    const seed = options.seed ?? defaultSeedSizes;
    const store = await openStore<DB>({ service: telemetry.service, telemetry, ...options.store });
    try {
      await store.migrate(definition.migrations);
      const repository = definition.repository(store);
      if (seed !== false) {
        const started = Date.now();
        const rows = await repository.seed(seed);
        if (rows > 0) telemetry.logger.info({ rows, ms: Date.now() - started }, 'seeded an empty store');
      }
      const subgraph = await createSubgraph<TContext>({
        telemetry,
        typeDefs: definition.typeDefs,
        resolvers: definition.resolvers,
        context: async ({ logger }) => definition.context({ repository, telemetry, logger, pageMax, hot }),
        ready: () => store.ping(),
        close: () => store.close(),
        debug: options.debug ?? false,
      });
      return Object.assign(subgraph, { store });
    } catch (err) {
      await store.close();
      throw err;
    }
  };
}
