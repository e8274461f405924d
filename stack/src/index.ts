import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { SUBGRAPHS, type SubgraphName, jwksUrlOf, loadSubgraphConfigs, portFor } from './subgraphs';
import pino, { type Logger } from 'pino';
import { type Registry, collectDefaultMetrics } from 'prom-client';
import { type AccountsSubgraph, ROLES, type Role, SCOPES, type Scope, createAccounts, scopesFor } from '@shop/accounts';
import {
  type SubgraphConfig,
  loadAccountsAuthConfig,
  loadCheckoutConfig,
  loadShardingConfig,
  loadInventoryConfig,
  loadPaymentsProviderConfig,
} from '@shop/config';
import { createInventory } from '@shop/inventory';
import { createOrders } from '@shop/orders';
import { createPayments } from '@shop/payments';
import {
  type Gateway,
  type GatewayConfig,
  type GatewayOptions,
  type SupergraphSource,
  createGateway,
  gatewayOptionsFromConfig,
  loadGatewayConfig,
  openGatewayCacheStore,
} from '@shop/gateway';
import type { SeedSizes } from '@shop/seed';
import {
  type RunningServer,
  type Subgraph,
  type SubgraphFactoryOptions,
  openSubgraphCacheStore,
  subgraphOptionsFromConfig,
} from '@shop/server';
import { type CacheStore, openCacheStore } from '@shop/cache';
import { type Bus, MemoryBroker, MemoryBus, connectAmqpBus } from '@shop/events';
import { type StoreLocation, sqliteFileFor } from '@shop/store';
import { createTelemetry, newRegistry, type Telemetry } from '@shop/telemetry';

/** The environment a stack reads when given none: every default, and no development extras. */
export const STACK_TEST_ENV: NodeJS.ProcessEnv = { NODE_ENV: 'test' };

/**
 * How the stack is configured: from an environment, through the same mappings as the services
 * mode (`loadGatewayConfig` + `gatewayOptionsFromConfig`, `loadSubgraphConfig` +
 * `subgraphOptionsFromConfig`), so a variable means the same in both modes. Every other option
 * is an explicit override for tests: set, it wins over the environment.
 */
export interface StackOptions {
  /**
   * The environment to read, as `npm start` passes `process.env`: every variable of the README's
   * table applies. With an environment, each subgraph's store is the config's
   * (`<SERVICE>_DATABASE_URL`, else SQLite under `DATA_DIR`); `SUBGRAPH_<NAME>_URL` sends the
   * gateway to that URL instead of the stack's own subgraph `<name>` (which still starts); with
   * `AMQP_URL` every service uses RabbitMQ instead of the in-process bus.
   * @default STACK_TEST_ENV: the defaults, SQLite in memory
   */
  env?: NodeJS.ProcessEnv;
  /**
   * Port per subgraph; 0 picks a free one. @default `<SERVICE>_PORT`, `GATEWAY_PORT` or the
   * contract ports, except that when any given port is 0 the unnamed ones are 0 too (a caller
   * asking for free ports, written before a subgraph was added, must not collide on that
   * subgraph's contract port).
   */
  ports?: Partial<Record<SubgraphName | 'gateway', number>>;
  /**
   * The gateway's interface. The subgraphs always listen on 127.0.0.1: only the gateway, in this
   * process, calls them. @default `HOST`, '0.0.0.0'
   */
  host?: string;
  /** Where each subgraph keeps its data. @default the config's with `env`, SQLite in memory without */
  store?: (name: SubgraphName) => StoreLocation;
  /** @default the generators' defaults (1,000 users, 1,000 products, 10,000 reviews) */
  seed?: SeedSizes | false;
  /** @default 100 */
  pageMax?: number;
  /** @default the repository's supergraph.graphql */
  supergraph?: SupergraphSource;
  /** @default a pino logger at `LOG_LEVEL` ('info') */
  logger?: Logger;
  /** The default logger writes human-readable lines (pino-pretty) instead of JSON. @default false */
  prettyLogs?: boolean;
  /** Collect Node's process metrics in the shared registry. @default false */
  processMetrics?: boolean;
  /** Introspection on the gateway. @default true */
  introspection?: boolean;
  /** The gateway's GraphiQL explorer at `/explorer` (offline: its assets are the gateway's own). @default true */
  explorer?: GatewayOptions['explorer'];
  debug?: boolean;
  /**
   * Production error rules for the gateway and every subgraph: uncoded errors reach clients as
   * INTERNAL_SERVER_ERROR with the request id, originals are logged. @default false
   */
  maskErrors?: boolean;
  /**
   * The caches (subgraph hot reads, the gateway's entity cache, APQ, response cache): in memory,
   * in Redis, or none at all, for every service at once.
   * @default per service from the config: `REDIS_URL`, `GATEWAY_CACHE`, `HOT_CACHE` (in memory, on)
   */
  cache?:
    | { kind: 'memory' }
    | {
        kind: 'redis';
        url: string;
        /** Key prefix, so a test's entries meet no other's. @default 'shop' */
        prefix?: string;
        /**
         * Every cache call's limit, for every service. A test of what the caches keep (not of how
         * they degrade) sets it high: on a CPU-starved machine 250 ms calls time out, and the
         * cache's breaker then bypasses Redis, which is right in production and not what it tests.
         * @default CACHE_TIMEOUT_MS of each service's config
         */
        timeoutMs?: number;
      }
    | false;
  /** The gateway's fetch layers and caches, individually. @default all on */
  layers?: GatewayOptions['layers'];
  entityCache?: GatewayOptions['entityCache'];
  responseCache?: GatewayOptions['responseCache'];
  responseCacheTtl?: GatewayOptions['responseCacheTtl'];
  /** The gateway's subscription caps and queues. @default the gateway's */
  subscriptions?: GatewayOptions['subscriptions'];
  /**
   * The event bus: one in-process broker shared by every service (the embedded mode), RabbitMQ,
   * or none (events then wait in each outbox). @default RabbitMQ with `AMQP_URL` (exchange
   * `<AMQP_NAMESPACE>.events`), else { kind: 'memory' }
   */
  bus?: { kind: 'memory' } | { kind: 'amqp'; url: string } | false;
  /** The gateway's trusted documents (`log` or `enforce` against a manifest). @default { mode: 'off' } */
  trustedDocuments?: GatewayOptions['trustedDocuments'];
  /** Client-facing document limits, for the gateway and (with headroom) every subgraph. @default defaultDocumentLimits */
  limits?: GatewayOptions['limits'];
  /** The gateway's demand control. @default on, enforcing defaultMaxCost */
  cost?: GatewayOptions['cost'];
  /** `MAX_RESPONSE_BYTES` for the gateway and every subgraph. @default 5_000_000 */
  maxResponseBytes?: number;
  /** `SUBGRAPH_TIMEOUT_MS`: the gateway's limit on each subgraph request. @default 10_000 */
  subgraphTimeoutMs?: number;
}

/** The whole platform in one process: every subgraph and the gateway, sharing one metrics registry. */
export interface Stack {
  gatewayUrl: string;
  subgraphUrls: Record<SubgraphName, string>;
  /** One registry: the gateway's `/metrics` carries every service's series, labelled by service. */
  registry: Registry;
  telemetry: Record<SubgraphName | 'gateway', Telemetry>;
  gateway: Gateway;
  subgraphs: Record<SubgraphName, Subgraph>;
  /**
   * The secret the gateway signs subgraph requests with and the subgraphs require: `SUBGRAPH_SECRET`
   * when set, else random for this run. Tests that call a subgraph directly sign with it.
   */
  subgraphSecret: string;
  /**
   * An access token for `sub`, signed by the stack's own accounts (its issuer, audience and current
   * key: what its gateway verifies, unless `JWKS_URL` or `SUBGRAPH_ACCOUNTS_URL` names another
   * accounts), for tests to send as `Authorization: Bearer`. Roles default to `customer`; scopes
   * to what the roles grant (every scope for `admin`). The user need not exist. An unknown role or
   * scope is an error, so a typo cannot pass as a token without it.
   */
  token(
    sub: string,
    claims?: { roles?: string[]; scopes?: string[]; /** A shorter lifetime than ACCESS_TOKEN_TTL_S. */ expiresInS?: number },
  ): Promise<string>;
  /** The settings read from `env`, before the explicit options were applied. */
  config: { gateway: GatewayConfig; subgraphs: Record<SubgraphName, SubgraphConfig> };
  /** What each factory was given: the config's mapping with the explicit options over it. */
  options: { gateway: GatewayOptions; subgraphs: Record<SubgraphName, SubgraphFactoryOptions> };
  /** Stops the gateway first (draining in-flight requests), then the subgraphs. */
  stop(): Promise<void>;
}

const isRole = (value: string): value is Role => (ROLES as readonly string[]).includes(value);
const isScope = (value: string): value is Scope => (SCOPES as readonly string[]).includes(value);

/** Signs a test token with accounts' issuer; see `Stack.token`. */
async function signTestToken(
  accounts: AccountsSubgraph,
  sub: string,
  claims: { roles?: string[]; scopes?: string[]; expiresInS?: number },
): Promise<string> {
  const roles = claims.roles ?? ['customer'];
  const scopes = claims.scopes;
  const unknown = [...roles.filter((r) => !isRole(r)), ...(scopes ?? []).filter((s) => !isScope(s))];
  if (unknown.length > 0)
    throw new Error(`stack.token: unknown role or scope ${unknown.join(', ')} (roles: ${ROLES.join(', ')}; scopes: ${SCOPES.join(', ')})`);
  const knownRoles = roles.filter(isRole);
  const { token } = await accounts.accounts.issuer.issue(
    {
      sub,
      roles: knownRoles,
      scopes: scopes ? scopes.filter(isScope) : scopesFor(knownRoles),
    },
    claims.expiresInS,
  );
  return token;
}

/** The options that were set: an explicit `undefined` must not hide the config's value. */
function setOnly<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}

/** SQLite files under `dataDir/<service>/<service>.sqlite`: the embedded mode's stores. */
export const sqliteUnder =
  (dataDir: string) =>
  (name: SubgraphName): StoreLocation => ({ sqlitePath: sqliteFileFor(resolve(dataDir), name) });

/** Starts every subgraph, then the gateway pointed at them. Stops what it started on failure. */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  // The embedded mode runs on one developer's machine, where every request comes from 127.0.0.1:
  // a per-client rate limit would be a limit on the whole machine (and on local load tests), so it
  // is off unless RATE_LIMIT_POINTS says otherwise. The services mode keeps the gateway's default.
  const env = { RATE_LIMIT_POINTS: '0', ...(options.env ?? STACK_TEST_ENV) };
  // Both throw a ConfigError naming every bad variable before anything starts.
  const gatewayConfig = loadGatewayConfig(env);
  const subgraphConfigs = loadSubgraphConfigs(env);
  const registry = newRegistry();
  if (options.processMetrics) collectDefaultMetrics({ register: registry });
  const logger =
    options.logger ??
    pino({
      level: gatewayConfig.logLevel,
      // A person at a terminal reads lines, a log shipper reads JSON.
      ...(options.prettyLogs ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } } : {}),
    });
  const started: Array<{ stop(): Promise<void> } | { close(): Promise<void> }> = [];
  const stopAll = async () => {
    for (const s of started.splice(0).reverse()) await ('stop' in s ? s.stop() : s.close());
  };
  const telemetry = {} as Record<SubgraphName | 'gateway', Telemetry>;
  const subgraphs = {} as Record<SubgraphName, Subgraph>;
  const subgraphUrls = {} as Record<SubgraphName, string>;
  const subgraphOptions = {} as Record<SubgraphName, SubgraphFactoryOptions>;
  let accounts: AccountsSubgraph | undefined;
  // Subgraphs answer `_entities`, `_service` and mutations to whoever reaches them: here only the
  // gateway can (loopback, and every request signed). A random secret per run unless one is set (a
  // SUBGRAPH_<NAME>_URL pointing at a subgraph elsewhere needs the shared one).
  const subgraphSecret = gatewayConfig.subgraphSecret ?? randomBytes(32).toString('hex');
  const busOption =
    options.bus ?? (gatewayConfig.amqpUrl ? { kind: 'amqp' as const, url: gatewayConfig.amqpUrl } : { kind: 'memory' as const });
  const broker = busOption !== false && busOption.kind === 'memory' ? new MemoryBroker() : undefined;
  /** One bus per service, as separate processes would have; closed after the servers. */
  const openBus = async (t: Telemetry, namespace: string): Promise<Bus | undefined> => {
    if (busOption === false) return undefined;
    const bus =
      busOption.kind === 'memory'
        ? new MemoryBus({ service: t.service, telemetry: t, ...(broker ? { broker } : {}) })
        : await connectAmqpBus({ url: busOption.url, service: t.service, telemetry: t, namespace });
    started.unshift(bus);
    return bus;
  };
  /** One cache store per service, as separate processes would have; closed after the servers. */
  const openCache = (t: Telemetry, fromConfig: () => CacheStore | undefined, timeoutMs: number): CacheStore | undefined => {
    const cache = options.cache;
    const store =
      cache === undefined
        ? fromConfig()
        : cache === false
          ? undefined
          : openCacheStore({
              telemetry: t,
              timeoutMs: (cache.kind === 'redis' ? cache.timeoutMs : undefined) ?? timeoutMs,
              ...(cache.kind === 'redis' ? { redisUrl: cache.url, ...(cache.prefix ? { prefix: cache.prefix } : {}) } : {}),
            });
    if (store) started.unshift(store);
    return store;
  };
  try {
    for (const def of SUBGRAPHS) {
      const config = subgraphConfigs[def.name];
      const t = createTelemetry({ service: def.name, registry, logger });
      telemetry[def.name] = t;
      const cacheStore = openCache(t, () => openSubgraphCacheStore(config, t), config.hotCache.timeoutMs);
      const fromConfig = subgraphOptionsFromConfig(config, { telemetry: t, cacheStore, bus: await openBus(t, config.amqpNamespace) });
      const factoryOptions: SubgraphFactoryOptions = {
        ...fromConfig,
        // Without an environment the stack is a test's: its stores live in memory.
        store: options.store?.(def.name) ?? (options.env ? fromConfig.store : { sqlitePath: ':memory:' }),
        ...setOnly({
          seed: options.seed,
          pageMax: options.pageMax,
          debug: options.debug,
          maskErrors: options.maskErrors,
          limits: options.limits,
          maxResponseBytes: options.maxResponseBytes,
          cost:
            options.cost === false
              ? false
              : options.cost && { maxCost: options.cost.maxCost, defaultListSize: options.cost.defaultListSize },
        }),
      };
      subgraphOptions[def.name] = factoryOptions;
      // accounts signs tokens with the issuer, audience and lifetimes of the environment, as its own
      // process does (index.ts), so the gateway's JWT_ISSUER/JWT_AUDIENCE checks match what it signs.
      // payments calls its provider (the simulator) with the PSP_* settings of the environment, as its index.ts does;
      // orders' checkout saga takes CHECKOUT_*, inventory's sweeper RESERVATION_SWEEP_INTERVAL_MS, likewise.
      const subgraph =
        def.name === 'accounts'
          ? (accounts = await createAccounts({ ...factoryOptions, auth: loadAccountsAuthConfig(env) }))
          : def.name === 'payments'
            ? await createPayments({ ...factoryOptions, psp: loadPaymentsProviderConfig(env) })
            : def.name === 'orders'
              ? await createOrders({ ...factoryOptions, checkout: loadCheckoutConfig(env), ...loadShardingConfig(env) })
              : def.name === 'inventory'
                ? await createInventory({ ...factoryOptions, reservationSweepIntervalMs: loadInventoryConfig(env).sweepIntervalMs })
                : await def.create(factoryOptions);
      started.push(subgraph);
      const running: RunningServer = await subgraph.listen(portFor(options.ports, def.name, config.port), '127.0.0.1', {
        gatewaySecret: subgraphSecret,
      });
      subgraphs[def.name] = subgraph;
      subgraphUrls[def.name] = `http://127.0.0.1:${running.port}/graphql`;
    }
    telemetry.gateway = createTelemetry({ service: 'gateway', registry, logger });
    const cacheStore = openCache(
      telemetry.gateway,
      () => openGatewayCacheStore(gatewayConfig, telemetry.gateway),
      gatewayConfig.layers.cacheTimeoutMs,
    );
    const fromConfig = gatewayOptionsFromConfig(gatewayConfig, {
      telemetry: telemetry.gateway,
      cacheStore,
      bus: await openBus(telemetry.gateway, gatewayConfig.amqpNamespace),
    });
    const gatewayOptions: GatewayOptions = {
      ...fromConfig,
      // The gateway routes to the stack's own subgraphs, unless SUBGRAPH_<NAME>_URL sends it elsewhere.
      subgraphUrlOverrides: {
        ...Object.fromEntries(SUBGRAPHS.map((s) => [s.name.toUpperCase(), subgraphUrls[s.name]])),
        ...gatewayConfig.subgraphUrlOverrides,
      },
      subgraphSecret,
      // Tokens are verified against the stack's own accounts, with the issuer and audience it
      // stamps, unless JWKS_URL names another issuer.
      auth: gatewayConfig.auth.jwksUrl
        ? fromConfig.auth
        : {
            ...fromConfig.auth,
            jwksUrl: jwksUrlOf(gatewayConfig.subgraphUrlOverrides.ACCOUNTS ?? subgraphUrls.accounts),
            issuer: loadAccountsAuthConfig(env).issuer,
            audience: loadAccountsAuthConfig(env).audience,
          },
      ...setOnly({
        supergraph: options.supergraph,
        introspection: options.introspection,
        explorer: options.explorer,
        debug: options.debug,
        maskErrors: options.maskErrors,
        layers: options.layers,
        entityCache: options.entityCache,
        responseCache: options.responseCache,
        responseCacheTtl: options.responseCacheTtl,
        subscriptions: options.subscriptions,
        trustedDocuments: options.trustedDocuments,
        limits: options.limits,
        cost: options.cost,
        maxResponseBytes: options.maxResponseBytes,
        subgraphTimeoutMs: options.subgraphTimeoutMs,
      }),
    };
    const gateway = await createGateway(gatewayOptions);
    started.push(gateway);
    const running = await gateway.listen(portFor(options.ports, 'gateway', gatewayConfig.port), options.host ?? gatewayConfig.host);
    return {
      gatewayUrl: `${running.url}/graphql`,
      subgraphUrls,
      registry,
      telemetry,
      gateway,
      subgraphs,
      subgraphSecret,
      token: (sub, claims = {}) => signTestToken(accounts!, sub, claims),
      config: { gateway: gatewayConfig, subgraphs: subgraphConfigs },
      options: { gateway: gatewayOptions, subgraphs: subgraphOptions },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

export * from './subgraphs';
export * from './services';
export * from './hosts';
export * from './haproxy';
export * from './rig';
