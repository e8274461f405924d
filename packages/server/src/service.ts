import type { BaseContext } from '@apollo/server';
import type { DocumentNode } from 'graphql';
import type { CacheStore } from '@shop/cache';
import { type SeedSizes, defaultSeedSizes } from '@shop/seed';
import { type Bus, type EventHandler, OutboxRelay, type Subscription, eventMigrations, idempotentConsumer } from '@shop/events';
import { type Migration, type Store, type StoreLocation, openStore } from '@shop/store';
import type { Logger, Telemetry } from '@shop/telemetry';
import { type Subgraph, type SubgraphOptions, createSubgraph } from './subgraph';
import type { DocumentLimits } from './limits';
import type { InputLimits } from './input-guard';
import type { Identity, RouteHandler, SubscriptionEvent } from './http';

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
  /**
   * Production error rules: an error without a client code (`CLIENT_ERROR_CODES`) reaches the
   * client as INTERNAL_SERVER_ERROR with the request id; the original is logged with it. Set from
   * `NODE_ENV=production`. @default false
   */
  maskErrors?: boolean;
  /** Strings refused before any resolver runs (NUL, over-long strings and IDs); `false`: no check. @default defaultInputLimits */
  inputLimits?: Partial<InputLimits> | false;
  /** The shared cache for hot reads (by-id lookups); none means every read goes to the store. */
  cacheStore?: CacheStore | undefined;
  /** How long a hot read stays cached; writes through this service evict it sooner. @default 60_000 */
  hotCacheTtlMs?: number;
  /**
   * The event bus: the outbox relay publishes this service's events to it and the service's
   * consumers subscribe to it. Without one, events stay in the outbox (nothing is lost) and
   * nothing is consumed.
   */
  bus?: Bus | undefined;
  /** Client-facing document limits (`MAX_QUERY_*`); see `subgraphDocumentLimits`. @default defaultDocumentLimits */
  limits?: Partial<DocumentLimits>;
  /** `MAX_RESPONSE_BYTES`: a bigger response is replaced by a `RESPONSE_TOO_LARGE` error. @default 5_000_000 */
  maxResponseBytes?: number;
  /** `MAX_COST`, `COST_LIST_SIZE`: demand control per fetch (see `SubgraphOptions.cost`). @default on, defaultMaxCost */
  cost?: SubgraphOptions<BaseContext>['cost'];
  /** `SHED_EVENT_LOOP_DELAY_MS`, `SHED_MAX_IN_FLIGHT`: 503 OVERLOADED past either (see `SubgraphOptions.loadShedding`). @default defaultLoadShedding */
  loadShedding?: SubgraphOptions<BaseContext>['loadShedding'];
}

/** What a repository gets to tell the service that a transaction appended events. */
export interface EventSink {
  /** The service's name: the `source` of its events. */
  readonly source: string;
  /** Call after a transaction that appended events commits: the relay publishes at once. */
  committed(): void;
}

/**
 * Background work a service runs beside its server, such as payments' provider calls, which may
 * not happen inside a store transaction: started once the store is migrated and the consumers
 * subscribed, kicked after every consumed event commits (its work may be waiting), stopped before
 * the store closes. It must also find its work by polling, so that it resumes after a crash.
 */
export interface BackgroundWorker {
  start(): void;
  /** Something it may have work for has just committed: run a pass soon. */
  kick(): void;
  /** Stops taking work and settles what is in flight; resolves before the store closes. */
  stop(): Promise<void>;
}

/** A consumer of one event type, with the schema versions it reads. */
export type Consumers = Record<string, { versions: number[]; handle: EventHandler }>;

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
  /**
   * Who the request is from: the identity the gateway signed (`RequestInfo.identity`), undefined
   * for an anonymous request and whenever the subgraph checks no signature. Resolvers re-check
   * ownership with it (see authz.ts).
   */
  identity: Identity | undefined;
  /** The bus event a subscription field is resolved for (`RequestInfo.subscriptionEvent`), else undefined. */
  subscriptionEvent: SubscriptionEvent | undefined;
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
  repository: (store: Store<DB>, events: EventSink) => Repo | Promise<Repo>;
  /** Events this service applies to its own store (idempotently, through its inbox). */
  consumes?: (repository: Repo, deps: { telemetry: Telemetry; hot: HotCache | undefined }) => Consumers;
  /** Builds one request's context; per-request DataLoaders are created here. */
  context: (deps: ContextDeps<Repo>) => TContext;
  /** Extra HTTP routes by path beside `/graphql` (accounts' JWKS). */
  routes?: (repository: Repo, deps: { telemetry: Telemetry }) => Record<string, RouteHandler>;
  /** Background work beside the server (see {@link BackgroundWorker}); `events` kicks the outbox relay. */
  worker?: (repository: Repo, deps: { telemetry: Telemetry; events: EventSink }) => BackgroundWorker;
}

/** A subgraph together with the store it alone owns. */
export interface StoreSubgraph<DB> extends Subgraph {
  readonly store: Store<DB>;
  /** The outbox relay, when the service has a bus. */
  readonly relay: OutboxRelay | undefined;
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
    let relay: OutboxRelay | undefined;
    let relayStore: Store<unknown> | undefined;
    let subscription: Subscription | undefined;
    let worker: BackgroundWorker | undefined;
    const release = async () => {
      await subscription?.close();
      // After the consumers (nothing new arrives for it), before the relay (its replies go out).
      await worker?.stop();
      await relay?.stop();
      await relayStore?.close();
      await store.close();
    };
    try {
      // Every service has an outbox and an inbox beside its own tables.
      await store.migrate({ ...eventMigrations, ...definition.migrations });
      const bus = options.bus;
      // On PostgreSQL the relay has connections of its own: queued behind a burst of requests
      // waiting for the pool, it (and every event with it) would wait its turn.
      if (bus && options.store.postgresUrl) {
        relayStore = await openStore<unknown>({
          service: telemetry.service,
          telemetry,
          postgresUrl: options.store.postgresUrl,
          poolSize: 2,
        });
      }
      relay = bus ? new OutboxRelay({ store: relayStore ?? (store as Store<unknown>), bus, telemetry }) : undefined;
      const sink: EventSink = { source: telemetry.service, committed: () => relay?.kick() };
      const repository = await definition.repository(store, sink);
      if (seed !== false) {
        const started = Date.now();
        const rows = await repository.seed(seed);
        if (rows > 0) telemetry.logger.info({ rows, ms: Date.now() - started }, 'seeded an empty store');
      }
      const consumers = definition.consumes?.(repository, { telemetry, hot });
      worker = definition.worker?.(repository, { telemetry, events: sink });
      if (bus && consumers && Object.keys(consumers).length > 0) {
        // A handler may append events of its own (products announces ProductRatingChanged):
        // the relay publishes them at once rather than at its next poll.
        const consumer = idempotentConsumer({
          store: store as Store<unknown>,
          telemetry,
          handlers: consumers,
          afterCommit: () => {
            relay?.kick();
            worker?.kick();
          },
        });
        subscription = await bus.subscribe({
          group: telemetry.service,
          types: Object.keys(consumers),
          handler: consumer,
          // Several waiting events go in one transaction (one commit): what keeps up with a burst.
          batchHandler: (events) => consumer.batch(events),
        });
      }
      relay?.start();
      worker?.start();
      const subgraph = await createSubgraph<TContext>({
        telemetry,
        typeDefs: definition.typeDefs,
        resolvers: definition.resolvers,
        context: async ({ logger, identity, subscriptionEvent }) =>
          definition.context({ repository, telemetry, logger, pageMax, hot, identity, subscriptionEvent }),
        ready: () => store.ping(),
        close: release,
        debug: options.debug ?? false,
        maskErrors: options.maskErrors ?? false,
        inputLimits: options.inputLimits,
        limits: options.limits,
        maxResponseBytes: options.maxResponseBytes,
        loadShedding: options.loadShedding,
        // Every shop subgraph declares what each of its mutations changes (declareChanges).
        requireDeclaredChanges: true,
        cost: options.cost,
        routes: definition.routes?.(repository, { telemetry }),
      });
      return Object.assign(subgraph, { store, relay });
    } catch (err) {
      await release();
      throw err;
    }
  };
}
