import path from 'node:path';
import {
  ConfigError,
  type LimitsConfig,
  commonSubgraphEnv,
  flag,
  limitsEnv,
  limitsFrom,
  loadConfig,
  logLevel,
  optionalString,
  nonNegativeInt,
  optionalUrl,
  port,
  positiveInt,
  subgraphSecret,
  z,
} from '@shop/config';
import { type CacheStore, openCacheStore } from '@shop/cache';
import type { Bus } from '@shop/events';
import type { Telemetry } from '@shop/telemetry';
import type { GatewayOptions, PlanExecutor, SupergraphSource } from './gateway';
import { MANIFEST_FILE_NAME } from '@shop/composition';
import { TRUSTED_DOCUMENTS_MODES, type TrustedDocumentsOptions } from './trusted-documents';

/** The repository root: the default supergraph lives there. */
const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** `SUBGRAPH_<NAME>_URL`: a routing URL override for subgraph `<name>` (matched ignoring case). */
const OVERRIDE_VARIABLE = /^SUBGRAPH_(.+)_URL$/i;
/** `SUBGRAPH_<NAME>_TIMEOUT_MS`: subgraph `<name>`'s own timeout, instead of `SUBGRAPH_TIMEOUT_MS`. */
const TIMEOUT_VARIABLE = /^SUBGRAPH_(.+)_TIMEOUT_MS$/i;

/** The gateway process's settings, read once from the environment. */
export interface GatewayConfig {
  /** `GATEWAY_PORT`. @default 4000 */
  port: number;
  /** `HOST`. @default '0.0.0.0' */
  host: string;
  /**
   * `SUPERGRAPH_PATH` (a composed supergraph), `SUPERGRAPH_CONFIG` (a supergraph.yaml) or
   * `SUPERGRAPH_URL` (a published supergraph), one of them. Relative paths are resolved against
   * the directory npm was started from.
   * @default { path: '<repo root>/supergraph.graphql' }
   */
  supergraph: Extract<SupergraphSource, { path: string } | { configPath: string } | { url: string }>;
  /** `SUPERGRAPH_WATCH`: reload when the supergraph files change. @default true */
  watch: boolean;
  /**
   * `SUPERGRAPH_POLL_INTERVAL_MS`: look for a new supergraph this often (a conditional GET of
   * `SUPERGRAPH_URL`, or a read of the file); 0: never. @default 10000 with SUPERGRAPH_URL, else 0
   */
  pollIntervalMs: number;
  /** `DRAIN_DELAY_MS`: on SIGTERM, `/ready` answers 503 `draining` this long while requests are still served, then the drain. @default 0 */
  drainDelayMs: number;
  /** `LOG_LEVEL`. @default 'info' */
  logLevel: string;
  /** `NODE_ENV`. Introspection, the explorer and exposed query plans default to off in production. @default 'development' */
  nodeEnv: 'development' | 'production' | 'test';
  /** `INTROSPECTION`: answer `__schema` and `__type` queries. @default true, false when `NODE_ENV=production` */
  introspection: boolean;
  /**
   * `EXPLORER`: serve the GraphiQL explorer at `/explorer` (browser GETs of `/graphql` redirect
   * there). Without introspection its docs pane stays empty. @default true, false when `NODE_ENV=production`
   */
  explorer: boolean;
  /** `SUBGRAPH_TIMEOUT_MS`. @default 10000 */
  subgraphTimeoutMs: number;
  /** `SUBGRAPH_<NAME>_TIMEOUT_MS`, by upper-cased name. @default {} */
  subgraphTimeouts: Record<string, number>;
  /** `REQUEST_TIMEOUT_MS`: every client request's deadline. @default 15000 */
  requestTimeoutMs: number;
  /**
   * Resilience per subgraph: `BREAKER` (default true), `BREAKER_FAILURES` (consecutive failures
   * that open it, default 5), `BREAKER_HALF_OPEN_MS` (default 5000), `SUBGRAPH_RETRIES` (retries of
   * a query after a connection failure, default 2; 0: none).
   */
  resilience: { breaker: boolean; breakerFailures: number; breakerHalfOpenMs: number; retries: number };
  /** `RATE_LIMIT_POINTS` requests per client per `RATE_LIMIT_WINDOW_S` (0 points: no limit). @default 1000 per 10 s */
  rateLimit: { points: number; durationS: number };
  /**
   * `MAX_QUERY_DEPTH` (15), `MAX_QUERY_ALIASES` (50), `MAX_QUERY_DIRECTIVES` (50), `MAX_QUERY_TOKENS`
   * (2000): hostile documents are refused; `MAX_RESPONSE_BYTES` (5,000,000): a bigger response is
   * an error. The subgraphs read the same variables.
   */
  limits: LimitsConfig;
  /**
   * Demand control: `MAX_COST` (default 5000), `COST_MODE` (`enforce` or `measure`, default
   * `enforce`), `COST_REPORT_ACTUAL` (default false), `COST_LIST_SIZE` (size of a list with no
   * `@listSize`, default 10).
   */
  cost: { maxCost: number; mode: 'enforce' | 'measure'; reportActual: boolean; defaultListSize: number };
  /** `AMQP_URL`: the gateway evicts cached entities on the services' events when set. */
  amqpUrl: string | undefined;
  /** `AMQP_NAMESPACE`: the exchange the services publish to is `<namespace>.events`. @default 'shop' */
  amqpNamespace: string;
  /** `REDIS_URL`: the caches live in Redis when set, in a bounded in-memory LRU otherwise. */
  redisUrl: string | undefined;
  /** `FOLD_FETCHES`: fold entity fetches into later ones of the same subgraph and path (`plan/fold.ts`). @default true */
  foldFetches: boolean;
  /** `LEVEL_FETCHES`: run a plan's side-by-side branches level by level (`plan/fold.ts`). @default true */
  levelFetches: boolean;
  /** `PLAN_EXECUTOR`: which executor runs the query plans, ours (`execute/`) or @apollo/gateway's. @default 'own' */
  planExecutor: PlanExecutor;
  /**
   * `EXPOSE_QUERY_PLAN`: a request with `Apollo-Expose-Query-Plan: true` gets its query plan and
   * fetch timings in `extensions` (the explorer's plan panel). The plan names every subgraph and
   * what it is asked. @default true, false when `NODE_ENV=production`
   */
  exposeQueryPlan: boolean;
  /**
   * Subscriptions: `SUBSCRIPTIONS` (false refuses WebSocket upgrades and event streams),
   * `MAX_SUBSCRIPTIONS_PER_CONNECTION` (20), `MAX_SUBSCRIPTIONS_PER_USER` (50, per replica),
   * `MAX_SUBSCRIPTIONS` (20,000 per replica), `SUBSCRIPTION_QUEUE` (32 events a subscriber may
   * fall behind), `SUBSCRIPTION_EXECUTIONS` (64 event runs at once), `WS_KEEPALIVE_MS` (15,000).
   */
  subscriptions: {
    enabled: boolean;
    perConnection: number;
    perUser: number;
    total: number;
    queue: number;
    concurrency: number;
    keepAliveMs: number;
  };
  /**
   * The caching and batching layers, each switchable: `GATEWAY_CACHE` (all three caches),
   * `ENTITY_CACHE`, `RESPONSE_CACHE`, `DEDUPE_REPRESENTATIONS`, `MERGE_FETCHES`, `REQUEST_MEMO`, `INFLIGHT_DEDUPE`
   * (all default true) and `CACHE_TIMEOUT_MS` (every cache call's limit, default 250).
   */
  layers: {
    cache: boolean;
    entityCache: boolean;
    responseCache: boolean;
    dedupe: boolean;
    merge: boolean;
    memo: boolean;
    inflight: boolean;
    cacheTimeoutMs: number;
    /** `ENTITY_CACHE_TTL`: seconds per type when a subgraph sends no max-age, e.g. `Product=30,User=60`. */
    entityTtlByType: Record<string, number>;
    /**
     * `RESPONSE_CACHE_TTL`: seconds per root field (`*` for any) for responses the subgraphs' hints
     * give no max-age (root lists, connections), e.g. `products=30,topProducts=30`.
     */
    responseTtlByRootField: Record<string, number>;
  };
  /** `SUBGRAPH_<NAME>_URL` overrides, keyed by `<NAME>` as written (upper case). @default {} */
  subgraphUrlOverrides: Record<string, string>;
  /**
   * `TRUSTED_DOCUMENTS` (`off`, `log` or `enforce`) and `TRUSTED_DOCUMENTS_PATH` (the manifest
   * `npm run documents` writes; relative paths resolve against the directory npm was started from).
   * @default { mode: 'off', path: '<repo root>/operations/trusted-documents.json' }
   */
  trustedDocuments: TrustedDocumentsOptions;
  /**
   * Bearer tokens: `JWKS_URL` (the issuer's public keys; unset, every bearer token is refused),
   * `JWT_ISSUER` and `JWT_AUDIENCE` (checked when set).
   */
  auth: { jwksUrl: string | undefined; issuer: string | undefined; audience: string | undefined };
  /** `SUBGRAPH_SECRET`: subgraph requests are signed with it; unset, they go unsigned. */
  subgraphSecret: string | undefined;
}

/** A `name=seconds,name=seconds` variable (names are GraphQL names, or `*` where `star`). */
function secondsByName(example: string, star: boolean) {
  const name = star ? '(?:[A-Za-z_][A-Za-z0-9_]*|\\*)' : '[A-Za-z_][A-Za-z0-9_]*';
  return z
    .string()
    .regex(new RegExp(`^\\s*(${name}\\s*=\\s*\\d+\\s*(,\\s*|$))*$`), `must look like ${example}`)
    .default('');
}

function parseSecondsByName(value: string): Record<string, number> {
  return Object.fromEntries(
    value
      .split(',')
      .map((pair) => pair.trim())
      .filter(Boolean)
      .map((pair) => {
        const [name, seconds] = pair.split('=');
        return [(name as string).trim(), Number(seconds)];
      }),
  );
}

/**
 * The schema of the gateway's environment. `SUBGRAPH_<NAME>_URL` and `SUBGRAPH_<NAME>_TIMEOUT_MS`
 * are open-ended, so their part is built from what `env` sets.
 */
export function gatewayEnvSchema(env: NodeJS.ProcessEnv) {
  const overrideKeys = Object.keys(env).filter((key) => OVERRIDE_VARIABLE.test(key) && env[key] !== '');
  const overrideShape = Object.fromEntries(overrideKeys.map((key) => [key, optionalUrl('http', 'https')]));
  const timeoutKeys = Object.keys(env).filter((key) => TIMEOUT_VARIABLE.test(key) && env[key] !== '');
  const timeoutShape = Object.fromEntries(timeoutKeys.map((key) => [key, positiveInt(10_000)]));
  // Development tools default off in production; either can still be set explicitly. An invalid
  // NODE_ENV is reported by the schema below.
  const developmentTools = env.NODE_ENV !== 'production';
  const schema = z.object({
    GATEWAY_PORT: port(4000),
    HOST: z.string().min(1).default('0.0.0.0'),
    SUPERGRAPH_PATH: optionalString,
    SUPERGRAPH_CONFIG: optionalString,
    SUPERGRAPH_URL: optionalUrl('http', 'https'),
    SUPERGRAPH_POLL_INTERVAL_MS: z.coerce.number().int().min(0).optional(),
    SUPERGRAPH_WATCH: flag(true),
    DRAIN_DELAY_MS: nonNegativeInt(0),
    LOG_LEVEL: logLevel,
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    INTROSPECTION: flag(developmentTools),
    EXPLORER: flag(developmentTools),
    SUBGRAPH_TIMEOUT_MS: positiveInt(10_000),
    REQUEST_TIMEOUT_MS: positiveInt(15_000),
    BREAKER: flag(true),
    BREAKER_FAILURES: positiveInt(5),
    BREAKER_HALF_OPEN_MS: positiveInt(5_000),
    SUBGRAPH_RETRIES: nonNegativeInt(2),
    RATE_LIMIT_POINTS: nonNegativeInt(1000),
    RATE_LIMIT_WINDOW_S: positiveInt(10),
    REDIS_URL: optionalUrl('redis', 'rediss'),
    AMQP_URL: optionalUrl('amqp', 'amqps'),
    AMQP_NAMESPACE: commonSubgraphEnv.AMQP_NAMESPACE,
    ...limitsEnv,
    COST_MODE: z.enum(['enforce', 'measure']).default('enforce'),
    COST_REPORT_ACTUAL: flag(false),
    GATEWAY_CACHE: flag(true),
    ENTITY_CACHE: flag(true),
    RESPONSE_CACHE: flag(true),
    DEDUPE_REPRESENTATIONS: flag(true),
    MERGE_FETCHES: flag(true),
    REQUEST_MEMO: flag(true),
    FOLD_FETCHES: flag(true),
    LEVEL_FETCHES: flag(true),
    PLAN_EXECUTOR: z.enum(['own', 'apollo']).default('own'),
    EXPOSE_QUERY_PLAN: flag(developmentTools),
    SUBSCRIPTIONS: flag(true),
    MAX_SUBSCRIPTIONS_PER_CONNECTION: positiveInt(20),
    MAX_SUBSCRIPTIONS_PER_USER: positiveInt(50),
    MAX_SUBSCRIPTIONS: positiveInt(20_000),
    SUBSCRIPTION_QUEUE: positiveInt(32),
    SUBSCRIPTION_EXECUTIONS: positiveInt(64),
    WS_KEEPALIVE_MS: positiveInt(15_000),
    INFLIGHT_DEDUPE: flag(true),
    CACHE_TIMEOUT_MS: positiveInt(250),
    ENTITY_CACHE_TTL: secondsByName('Type=seconds,Type=seconds', false),
    RESPONSE_CACHE_TTL: secondsByName('field=seconds,field=seconds (* for any root field)', true),
    // npm sets INIT_CWD to where `npm run` was typed; `npm run start:gateway` itself runs in gateway/.
    TRUSTED_DOCUMENTS: z.enum(TRUSTED_DOCUMENTS_MODES).default('off'),
    TRUSTED_DOCUMENTS_PATH: optionalString,
    JWKS_URL: optionalUrl('http', 'https'),
    JWT_ISSUER: optionalString,
    JWT_AUDIENCE: optionalString,
    SUBGRAPH_SECRET: subgraphSecret,
    INIT_CWD: optionalString,
    ...overrideShape,
    ...timeoutShape,
  });
  return { schema, overrideKeys, timeoutKeys };
}

/** Whether the gateway reads the variable `name` (deployment files are checked against this). */
export function isGatewayVariable(name: string): boolean {
  fixedVariables ??= new Set(Object.keys(gatewayEnvSchema({}).schema.shape));
  return OVERRIDE_VARIABLE.test(name) || TIMEOUT_VARIABLE.test(name) || fixedVariables.has(name);
}
/** The schema's own keys, built once (the schema is rebuilt per environment; its fixed keys are not). */
let fixedVariables: Set<string> | undefined;

/**
 * Reads and validates the gateway's environment. Throws {@link ConfigError} naming every bad
 * variable; nothing else in the gateway reads `process.env`.
 */
export function loadGatewayConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const { schema, overrideKeys, timeoutKeys } = gatewayEnvSchema(env);
  const raw = loadConfig(schema, env);

  const sources = (['SUPERGRAPH_PATH', 'SUPERGRAPH_CONFIG', 'SUPERGRAPH_URL'] as const).filter((name) => raw[name]);
  if (sources.length > 1) {
    throw new ConfigError(
      `Invalid configuration:\n  ${sources.join(' and ')} are set; set only one: a composed supergraph file, a supergraph.yaml or a published supergraph's URL`,
      [...sources],
    );
  }
  const base = raw.INIT_CWD ?? process.cwd();
  const supergraph: GatewayConfig['supergraph'] = raw.SUPERGRAPH_URL
    ? { url: raw.SUPERGRAPH_URL }
    : raw.SUPERGRAPH_CONFIG
      ? { configPath: path.resolve(base, raw.SUPERGRAPH_CONFIG) }
      : { path: raw.SUPERGRAPH_PATH ? path.resolve(base, raw.SUPERGRAPH_PATH) : path.join(REPO_ROOT, 'supergraph.graphql') };

  const subgraphUrlOverrides: Record<string, string> = {};
  for (const key of overrideKeys) {
    const name = OVERRIDE_VARIABLE.exec(key)?.[1];
    const url = env[key];
    if (name && url) subgraphUrlOverrides[name.toUpperCase()] = url;
  }

  return {
    port: raw.GATEWAY_PORT,
    host: raw.HOST,
    supergraph,
    watch: raw.SUPERGRAPH_WATCH,
    pollIntervalMs: raw.SUPERGRAPH_POLL_INTERVAL_MS ?? (raw.SUPERGRAPH_URL ? 10_000 : 0),
    drainDelayMs: raw.DRAIN_DELAY_MS,
    logLevel: raw.LOG_LEVEL,
    nodeEnv: raw.NODE_ENV,
    introspection: raw.INTROSPECTION,
    explorer: raw.EXPLORER,
    subgraphTimeoutMs: raw.SUBGRAPH_TIMEOUT_MS,
    subgraphTimeouts: Object.fromEntries(
      timeoutKeys.map((key) => [(TIMEOUT_VARIABLE.exec(key)?.[1] ?? key).toUpperCase(), (raw as Record<string, unknown>)[key] as number]),
    ),
    requestTimeoutMs: raw.REQUEST_TIMEOUT_MS,
    resilience: {
      breaker: raw.BREAKER,
      breakerFailures: raw.BREAKER_FAILURES,
      breakerHalfOpenMs: raw.BREAKER_HALF_OPEN_MS,
      retries: raw.SUBGRAPH_RETRIES,
    },
    rateLimit: { points: raw.RATE_LIMIT_POINTS, durationS: raw.RATE_LIMIT_WINDOW_S },
    subgraphUrlOverrides,
    trustedDocuments: {
      mode: raw.TRUSTED_DOCUMENTS,
      path: raw.TRUSTED_DOCUMENTS_PATH
        ? path.resolve(base, raw.TRUSTED_DOCUMENTS_PATH)
        : path.join(REPO_ROOT, 'operations', MANIFEST_FILE_NAME),
    },
    redisUrl: raw.REDIS_URL,
    amqpUrl: raw.AMQP_URL,
    amqpNamespace: raw.AMQP_NAMESPACE,
    auth: { jwksUrl: raw.JWKS_URL, issuer: raw.JWT_ISSUER, audience: raw.JWT_AUDIENCE },
    subgraphSecret: raw.SUBGRAPH_SECRET,
    limits: limitsFrom(raw),
    cost: { maxCost: raw.MAX_COST, mode: raw.COST_MODE, reportActual: raw.COST_REPORT_ACTUAL, defaultListSize: raw.COST_LIST_SIZE },
    foldFetches: raw.FOLD_FETCHES,
    levelFetches: raw.LEVEL_FETCHES,
    planExecutor: raw.PLAN_EXECUTOR,
    exposeQueryPlan: raw.EXPOSE_QUERY_PLAN,
    subscriptions: {
      enabled: raw.SUBSCRIPTIONS,
      perConnection: raw.MAX_SUBSCRIPTIONS_PER_CONNECTION,
      perUser: raw.MAX_SUBSCRIPTIONS_PER_USER,
      total: raw.MAX_SUBSCRIPTIONS,
      queue: raw.SUBSCRIPTION_QUEUE,
      concurrency: raw.SUBSCRIPTION_EXECUTIONS,
      keepAliveMs: raw.WS_KEEPALIVE_MS,
    },
    layers: {
      cache: raw.GATEWAY_CACHE,
      entityCache: raw.ENTITY_CACHE,
      responseCache: raw.RESPONSE_CACHE,
      dedupe: raw.DEDUPE_REPRESENTATIONS,
      merge: raw.MERGE_FETCHES,
      memo: raw.REQUEST_MEMO,
      inflight: raw.INFLIGHT_DEDUPE,
      cacheTimeoutMs: raw.CACHE_TIMEOUT_MS,
      entityTtlByType: parseSecondsByName(raw.ENTITY_CACHE_TTL),
      responseTtlByRootField: parseSecondsByName(raw.RESPONSE_CACHE_TTL),
    },
  };
}

/** What {@link gatewayOptionsFromConfig} cannot make from settings: the process's runtime pieces. */
export interface GatewayDeps {
  telemetry: Telemetry;
  /** From {@link openGatewayCacheStore}; `undefined` turns every cache off. */
  cacheStore: CacheStore | undefined;
  /** RabbitMQ (`AMQP_URL`), or the embedded mode's in-process bus; `undefined`: no evictions on events. */
  bus: Bus | undefined;
}

/**
 * The gateway's cache store as the config asks: none with `GATEWAY_CACHE=false`, Redis with
 * `REDIS_URL`, a bounded LRU otherwise, every call limited by `CACHE_TIMEOUT_MS`. The caller closes it.
 */
export function openGatewayCacheStore(config: Pick<GatewayConfig, 'redisUrl' | 'layers'>, telemetry: Telemetry): CacheStore | undefined {
  if (!config.layers.cache) return undefined;
  return openCacheStore({ telemetry, redisUrl: config.redisUrl, timeoutMs: config.layers.cacheTimeoutMs });
}

/**
 * The one mapping from the gateway's settings to {@link GatewayOptions}: `npm run start:gateway`,
 * the services mode (which runs that) and the embedded mode (`startStack`) all call it, so a
 * variable the gateway honours alone is honoured by `npm start` too. Port and host are not
 * options of the factory: the caller listens on `config.port` and `config.host`.
 */
export function gatewayOptionsFromConfig(config: GatewayConfig, deps: GatewayDeps): GatewayOptions {
  const { layers } = config;
  return {
    telemetry: deps.telemetry,
    cacheStore: deps.cacheStore,
    bus: deps.bus,
    supergraph: config.supergraph,
    watch: config.watch,
    pollIntervalMs: config.pollIntervalMs,
    drainDelayMs: config.drainDelayMs,
    subgraphUrlOverrides: config.subgraphUrlOverrides,
    subgraphTimeoutMs: config.subgraphTimeoutMs,
    subgraphTimeouts: config.subgraphTimeouts,
    requestTimeoutMs: config.requestTimeoutMs,
    breaker: config.resilience.breaker
      ? { failures: config.resilience.breakerFailures, halfOpenAfterMs: config.resilience.breakerHalfOpenMs }
      : false,
    retry: config.resilience.retries > 0 ? { retries: config.resilience.retries } : false,
    loadShedding: config.limits.shedding,
    rateLimit: config.rateLimit.points > 0 ? config.rateLimit : false,
    introspection: config.introspection,
    explorer: config.explorer,
    // Stack traces and logged query plans are for development; production masks instead.
    debug: config.nodeEnv === 'development',
    maskErrors: config.nodeEnv === 'production',
    trustedDocuments: config.trustedDocuments,
    limits: config.limits.document,
    maxResponseBytes: config.limits.responseBytes,
    cost: config.cost,
    entityCache: layers.entityCache ? { ttlByType: layers.entityTtlByType } : false,
    responseCache: layers.responseCache,
    responseCacheTtl: layers.responseTtlByRootField,
    layers: { dedupe: layers.dedupe, merge: layers.merge, memo: layers.memo, inflight: layers.inflight },
    foldFetches: config.foldFetches,
    levelFetches: config.levelFetches,
    executor: config.planExecutor,
    exposeQueryPlan: config.exposeQueryPlan,
    subscriptions: config.subscriptions.enabled
      ? {
          perConnection: config.subscriptions.perConnection,
          perUser: config.subscriptions.perUser,
          total: config.subscriptions.total,
          queue: config.subscriptions.queue,
          concurrency: config.subscriptions.concurrency,
          keepAliveMs: config.subscriptions.keepAliveMs,
        }
      : false,
    auth: config.auth,
    subgraphSecret: config.subgraphSecret,
  };
}
