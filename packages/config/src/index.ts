import { resolve } from 'node:path';
import { z } from 'zod';

/** Thrown at start-up when the environment does not satisfy a process's config schema. */
export class ConfigError extends Error {
  constructor(
    message: string,
    /** The environment variables that failed validation, in the order reported. */
    readonly variables: string[],
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * Validates `env` against a zod object whose keys are environment variable names and returns
 * the typed result. Every failing variable is named in the error, with what it received, so a
 * process fails at start-up with a message an operator can act on.
 */
export function loadConfig<S extends z.ZodObject>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  const names: string[] = [];
  const lines = result.error.issues.map((issue) => {
    const name = String(issue.path[0] ?? '(root)');
    names.push(name);
    const received = env[name];
    return `  ${name}: ${issue.message} (received ${received === undefined ? 'nothing' : JSON.stringify(received)})`;
  });
  return throwConfigError(`Invalid configuration:\n${lines.join('\n')}`, names);
}

function throwConfigError(message: string, names: string[]): never {
  throw new ConfigError(message, names);
}

/** An optional string variable: an empty string counts as unset. */
export const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v === '' ? undefined : v));

/** A TCP port (0 means "any free port", used by tests). */
export const port = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);

/** A positive integer with a default. */
export const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** A non-negative integer with a default. */
export const nonNegativeInt = (fallback: number) => z.coerce.number().int().min(0).default(fallback);

/** A boolean written as true/false/1/0/yes/no/on/off. */
export const flag = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off', ''])
    .optional()
    .transform((v) => (v === undefined || v === '' ? fallback : ['true', '1', 'yes', 'on'].includes(v)));

/** An optional URL with one of the given protocols. */
export const optionalUrl = (...protocols: string[]) =>
  optionalString.refine(
    (v) => {
      if (v === undefined) return true;
      try {
        return protocols.includes(new URL(v).protocol.replace(/:$/, ''));
      } catch {
        return false;
      }
    },
    { message: `must be a URL with protocol ${protocols.join(' or ')}` },
  );

export const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info');

/**
 * Document and response limits, read by the gateway and every subgraph from the same variables:
 * `MAX_QUERY_DEPTH`, `MAX_QUERY_ALIASES`, `MAX_QUERY_DIRECTIVES`, `MAX_QUERY_TOKENS`, `MAX_QUERY_FIELDS`,
 * `MAX_RESPONSE_BYTES`.
 */
export const limitsEnv = {
  MAX_QUERY_DEPTH: positiveInt(15),
  MAX_QUERY_ALIASES: positiveInt(50),
  MAX_QUERY_DIRECTIVES: positiveInt(50),
  MAX_QUERY_TOKENS: positiveInt(1000),
  MAX_QUERY_FIELDS: positiveInt(2000),
  MAX_RESPONSE_BYTES: positiveInt(5_000_000),
  MAX_COST: positiveInt(5000),
  COST_LIST_SIZE: positiveInt(10),
  SHED_EVENT_LOOP_DELAY_MS: nonNegativeInt(500),
  SHED_MAX_IN_FLIGHT: nonNegativeInt(2000),
};

/** What {@link limitsEnv} reads, as the options the servers take. */
export interface LimitsConfig {
  document: { depth: number; aliases: number; directives: number; tokens: number; fields: number };
  /** Largest response body, in bytes; a bigger one is a coded error. */
  responseBytes: number;
  /** `MAX_COST` and `COST_LIST_SIZE`: the static cost limit (the gateway per operation, a subgraph per fetch). */
  cost: { maxCost: number; defaultListSize: number };
  /**
   * `SHED_EVENT_LOOP_DELAY_MS` and `SHED_MAX_IN_FLIGHT` (0: that check off): over either, new
   * GraphQL requests get 503 OVERLOADED with Retry-After.
   */
  shedding: { maxEventLoopDelayMs: number; maxInFlight: number };
}

/** Maps the variables of {@link limitsEnv} to {@link LimitsConfig}. */
export function limitsFrom(raw: z.infer<z.ZodObject<typeof limitsEnv>>): LimitsConfig {
  return {
    document: {
      depth: raw.MAX_QUERY_DEPTH,
      aliases: raw.MAX_QUERY_ALIASES,
      directives: raw.MAX_QUERY_DIRECTIVES,
      tokens: raw.MAX_QUERY_TOKENS,
      fields: raw.MAX_QUERY_FIELDS,
    },
    responseBytes: raw.MAX_RESPONSE_BYTES,
    cost: { maxCost: raw.MAX_COST, defaultListSize: raw.COST_LIST_SIZE },
    shedding: { maxEventLoopDelayMs: raw.SHED_EVENT_LOOP_DELAY_MS, maxInFlight: raw.SHED_MAX_IN_FLIGHT },
  };
}

/**
 * `SUBGRAPH_SECRET`: the key the gateway signs subgraph requests with and the subgraphs check
 * them against (HMAC-SHA256). Long enough not to be guessed: 32 characters or more.
 */
export const subgraphSecret = optionalString.refine((v) => v === undefined || v.length >= 32, {
  message: 'must be at least 32 characters (e.g. openssl rand -hex 32)',
});

/** Settings every subgraph process shares; each subgraph extends it with its own port and database. */
export const commonSubgraphEnv = {
  HOST: z.string().default('0.0.0.0'),
  LOG_LEVEL: logLevel,
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  REDIS_URL: optionalUrl('redis', 'rediss'),
  AMQP_URL: optionalUrl('amqp', 'amqps'),
  // Prefix of the exchange and queue names: deployments or test runs sharing one broker stay apart.
  AMQP_NAMESPACE: z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,100}$/, 'must be 1-100 letters, digits or ._:-')
    .default('shop'),
  DATA_DIR: z.string().default('.data'),
  PAGE_MAX: positiveInt(100),
  HOT_CACHE: flag(true),
  HOT_CACHE_TTL_MS: positiveInt(60_000),
  CACHE_TIMEOUT_MS: positiveInt(250),
  SEED: flag(true),
  SEED_USERS: nonNegativeInt(1000),
  SEED_PRODUCTS: nonNegativeInt(1000),
  SEED_REVIEWS: nonNegativeInt(10000),
  SUBGRAPH_SECRET: subgraphSecret,
  // For benchmarks against gateways that cannot sign: a subgraph process without SUBGRAPH_SECRET
  // starts anyway and answers anyone, as anonymous; with one, it answers unsigned requests as
  // anonymous and checks signed ones (their caller is the gateway's). Never in a deployment.
  SUBGRAPH_ALLOW_UNSIGNED: flag(false),
  // On SIGTERM, how long /ready says `draining` while requests are still served (load balancers' checks notice).
  DRAIN_DELAY_MS: nonNegativeInt(0),
  ...limitsEnv,
};

export { z };

/** The validated settings of one subgraph process. */
export interface SubgraphConfig {
  service: string;
  port: number;
  host: string;
  logLevel: z.infer<typeof logLevel>;
  nodeEnv: 'development' | 'production' | 'test';
  /** Services mode: this service's own PostgreSQL database. Unset: SQLite under `dataDir`. */
  databaseUrl: string | undefined;
  /** `DATA_DIR`, absolute: relative paths resolve against the directory npm was started from. */
  dataDir: string;
  redisUrl: string | undefined;
  amqpUrl: string | undefined;
  /** `AMQP_NAMESPACE`: the exchange is `<namespace>.events`, queues `<namespace>.<group>`. */
  amqpNamespace: string;
  pageMax: number;
  /** Cache by-id reads between requests (Redis when `redisUrl` is set, else in memory). */
  hotCache: { enabled: boolean; ttlMs: number; timeoutMs: number };
  seed: { users: number; products: number; reviews: number } | false;
  /** Document and response limits (`MAX_QUERY_*`, `MAX_RESPONSE_BYTES`), the gateway's variables. */
  limits: LimitsConfig;
  /** `SUBGRAPH_SECRET`: only requests the gateway signed with it are answered. Required by a subgraph process (`runSubgraph`). */
  subgraphSecret: string | undefined;
  /**
   * `SUBGRAPH_ALLOW_UNSIGNED` (benchmarks only): start without a secret, and answer unsigned
   * requests as anonymous (with a secret, signed ones are still checked and carry their caller).
   */
  allowUnsigned: boolean;
  /** `DRAIN_DELAY_MS`: on SIGTERM, `/ready` answers 503 `draining` this long while requests are still served, then the drain. @default 0 */
  drainDelayMs: number;
}

/**
 * Reads one subgraph's settings: `<SERVICE>_PORT` (default `defaultPort`), `<SERVICE>_DATABASE_URL`
 * and the settings every subgraph shares (`commonSubgraphEnv`).
 */
export function loadSubgraphConfig(service: string, defaultPort: number, env: NodeJS.ProcessEnv = process.env): SubgraphConfig {
  const prefix = service.toUpperCase();
  const portVar = `${prefix}_PORT`;
  const dbVar = `${prefix}_DATABASE_URL`;
  const schema = z.object({
    ...commonSubgraphEnv,
    [portVar]: port(defaultPort),
    [dbVar]: optionalUrl('postgres', 'postgresql'),
    // npm sets INIT_CWD to where `npm ...` was typed; `npm start -w <subgraph>` runs in its folder.
    INIT_CWD: optionalString,
  });
  const raw = loadConfig(schema, env) as Record<string, unknown> & z.infer<z.ZodObject<typeof commonSubgraphEnv>>;
  return {
    service,
    port: raw[portVar] as number,
    host: raw.HOST,
    logLevel: raw.LOG_LEVEL,
    nodeEnv: raw.NODE_ENV,
    databaseUrl: raw[dbVar] as string | undefined,
    dataDir: resolve((raw.INIT_CWD as string | undefined) ?? process.cwd(), raw.DATA_DIR),
    redisUrl: raw.REDIS_URL,
    amqpUrl: raw.AMQP_URL,
    amqpNamespace: raw.AMQP_NAMESPACE,
    pageMax: raw.PAGE_MAX,
    hotCache: { enabled: raw.HOT_CACHE, ttlMs: raw.HOT_CACHE_TTL_MS, timeoutMs: raw.CACHE_TIMEOUT_MS },
    seed: raw.SEED ? { users: raw.SEED_USERS, products: raw.SEED_PRODUCTS, reviews: raw.SEED_REVIEWS } : false,
    limits: limitsFrom(raw),
    subgraphSecret: raw.SUBGRAPH_SECRET,
    allowUnsigned: raw.SUBGRAPH_ALLOW_UNSIGNED,
    drainDelayMs: raw.DRAIN_DELAY_MS,
  };
}

/**
 * accounts' sign-in settings (issue #14): token lifetimes in seconds, the `iss` and `aud` every
 * access token carries (the gateway verifies both), and how old a signing key may get before a
 * new one signs. Only accounts (and `npm run token`, which signs the way it does) reads them.
 */
export const accountsAuthEnv = {
  ACCESS_TOKEN_TTL_S: positiveInt(900),
  REFRESH_TOKEN_TTL_S: positiveInt(30 * 24 * 3600),
  // The gateway checks the same variables (when set): one value, both ends agree.
  JWT_ISSUER: optionalString.transform((v) => v ?? 'urn:shop:accounts'),
  JWT_AUDIENCE: optionalString.transform((v) => v ?? 'urn:shop:gateway'),
  SIGNING_KEY_MAX_AGE_S: positiveInt(30 * 24 * 3600),
};

/** What {@link accountsAuthEnv} reads. */
export interface AccountsAuthConfig {
  /** `ACCESS_TOKEN_TTL_S`: an access token's lifetime; also how long a retired key stays in the JWKS. */
  accessTokenTtlS: number;
  /** `REFRESH_TOKEN_TTL_S`: a refresh token's lifetime (each refresh issues a new one). */
  refreshTokenTtlS: number;
  /** `JWT_ISSUER`: the tokens' `iss`. */
  issuer: string;
  /** `JWT_AUDIENCE`: the tokens' `aud`. */
  audience: string;
  /** `SIGNING_KEY_MAX_AGE_S`: past this age a new key signs; the old one stays in the JWKS until its tokens expire. */
  signingKeyMaxAgeS: number;
}

/** Reads accounts' sign-in settings ({@link accountsAuthEnv}). */
export function loadAccountsAuthConfig(env: NodeJS.ProcessEnv = process.env): AccountsAuthConfig {
  const raw = loadConfig(z.object(accountsAuthEnv), env);
  return {
    accessTokenTtlS: raw.ACCESS_TOKEN_TTL_S,
    refreshTokenTtlS: raw.REFRESH_TOKEN_TTL_S,
    issuer: raw.JWT_ISSUER,
    audience: raw.JWT_AUDIENCE,
    signingKeyMaxAgeS: raw.SIGNING_KEY_MAX_AGE_S,
  };
}

/**
 * inventory's own settings (issue #15): how often its sweeper looks for stock reservations held
 * past their expiry and gives their units back. Only inventory reads them.
 */
export const inventoryEnv = {
  RESERVATION_SWEEP_INTERVAL_MS: positiveInt(1000),
};

/** What {@link inventoryEnv} reads. */
export interface InventoryConfig {
  /** `RESERVATION_SWEEP_INTERVAL_MS`: the pause between two sweeps of expired reservations. */
  sweepIntervalMs: number;
}

/** Reads inventory's settings ({@link inventoryEnv}). */
export function loadInventoryConfig(env: NodeJS.ProcessEnv = process.env): InventoryConfig {
  const raw = loadConfig(z.object(inventoryEnv), env);
  return { sweepIntervalMs: raw.RESERVATION_SWEEP_INTERVAL_MS };
}

/**
 * orders' checkout saga (issue #15): each step's deadline (doubled per attempt, up to the
 * maximum), how many attempts reserve and authorize get, how long inventory holds a reservation,
 * and how often the sweeper looks at deadlines. Only orders reads them.
 */
export const checkoutEnv = {
  CHECKOUT_STEP_TIMEOUT_MS: positiveInt(5000),
  CHECKOUT_MAX_STEP_TIMEOUT_MS: positiveInt(60_000),
  CHECKOUT_MAX_ATTEMPTS: positiveInt(4),
  CHECKOUT_RESERVATION_HOLD_MS: positiveInt(60_000),
  CHECKOUT_TIMER_INTERVAL_MS: positiveInt(500),
};

/** What {@link checkoutEnv} reads. */
export interface CheckoutConfig {
  stepTimeoutMs: number;
  maxStepTimeoutMs: number;
  maxAttempts: number;
  reservationHoldMs: number;
  timerIntervalMs: number;
}

/** Reads orders' checkout settings ({@link checkoutEnv}). */
export function loadCheckoutConfig(env: NodeJS.ProcessEnv = process.env): CheckoutConfig {
  const raw = loadConfig(z.object(checkoutEnv), env);
  return {
    stepTimeoutMs: raw.CHECKOUT_STEP_TIMEOUT_MS,
    maxStepTimeoutMs: Math.max(raw.CHECKOUT_STEP_TIMEOUT_MS, raw.CHECKOUT_MAX_STEP_TIMEOUT_MS),
    maxAttempts: raw.CHECKOUT_MAX_ATTEMPTS,
    reservationHoldMs: raw.CHECKOUT_RESERVATION_HOLD_MS,
    timerIntervalMs: raw.CHECKOUT_TIMER_INTERVAL_MS,
  };
}

/**
 * orders' shards (issue #16): where they are, how often the slot map's version is read, and how
 * long a write waits for its slot to finish moving. Only orders (and its maintenance commands) reads them.
 */
export const shardingEnv = {
  ORDERS_SHARDS: z
    .string()
    .optional()
    .transform((v) =>
      (v ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0),
    )
    .refine((list) => list.length <= 256, 'at most 256 shards'),
  ORDERS_SLOT_MAP: z.string().trim().min(1).optional(),
  ORDERS_MAP_REFRESH_MS: positiveInt(1000),
  ORDERS_FENCE_WAIT_MS: positiveInt(5000),
  ORDERS_SHARD_READ_TIMEOUT_MS: positiveInt(2000),
};

/** What {@link shardingEnv} reads. */
export interface ShardingConfig {
  /** Shard store locations (PostgreSQL URLs or SQLite paths); undefined: the default for the store. */
  shards: string[] | undefined;
  /** Where the slot map lives (a PostgreSQL URL or a SQLite path); undefined: the first shard. */
  slotMap: string | undefined;
  mapRefreshMs: number;
  fenceWaitMs: number;
  shardReadTimeoutMs: number;
}

/** Reads orders' sharding settings ({@link shardingEnv}). */
export function loadShardingConfig(env: NodeJS.ProcessEnv = process.env): ShardingConfig {
  const raw = loadConfig(z.object(shardingEnv), env);
  return {
    shards: raw.ORDERS_SHARDS.length > 0 ? raw.ORDERS_SHARDS : undefined,
    slotMap: raw.ORDERS_SLOT_MAP,
    mapRefreshMs: raw.ORDERS_MAP_REFRESH_MS,
    fenceWaitMs: raw.ORDERS_FENCE_WAIT_MS,
    shardReadTimeoutMs: raw.ORDERS_SHARD_READ_TIMEOUT_MS,
  };
}

/** A share between 0 and 1 (a probability), with a default. */
export const rate = (fallback: number) => z.coerce.number().min(0, 'must be at least 0').max(1, 'must be at most 1').default(fallback);

/**
 * payments' provider settings (issue #15): how payments calls the payment service provider
 * (`PSP_MAX_ATTEMPTS`, `PSP_CALL_TIMEOUT_MS`) and how the simulator that stands in for it behaves
 * (`PSP_LATENCY_MS`, `PSP_DECLINE_RATE`, `PSP_TIMEOUT_RATE`, `PSP_TIMEOUT_CHARGED_RATE`, `PSP_SEED`).
 * Only payments reads them.
 */
export const paymentsProviderEnv = {
  PSP_LATENCY_MS: nonNegativeInt(20),
  PSP_DECLINE_RATE: rate(0),
  PSP_TIMEOUT_RATE: rate(0),
  PSP_TIMEOUT_CHARGED_RATE: rate(0),
  PSP_SEED: z.string().max(200).default('shop'),
  PSP_MAX_ATTEMPTS: positiveInt(5),
  PSP_CALL_TIMEOUT_MS: positiveInt(2000),
};

/** What {@link paymentsProviderEnv} reads. */
export interface PaymentsProviderConfig {
  /** `PSP_LATENCY_MS`: how long the simulator takes to answer a call. */
  latencyMs: number;
  /** `PSP_DECLINE_RATE`: the share of authorizations the simulator declines. */
  declineRate: number;
  /** `PSP_TIMEOUT_RATE`: the share of calls the simulator leaves unanswered until payments' deadline. */
  timeoutRate: number;
  /** `PSP_TIMEOUT_CHARGED_RATE`: of those timeouts, the share where the simulator did the work anyway (charged). */
  timeoutChargedRate: number;
  /** `PSP_SEED`: the simulator's decisions are a function of it and the call's idempotency key. */
  seed: string;
  /** `PSP_MAX_ATTEMPTS`: provider calls for one authorization before payments answers PaymentUnavailable. */
  maxAttempts: number;
  /** `PSP_CALL_TIMEOUT_MS`: how long payments waits for one provider call before its outcome counts as unknown. */
  callTimeoutMs: number;
}

/** Reads payments' provider settings ({@link paymentsProviderEnv}). */
export function loadPaymentsProviderConfig(env: NodeJS.ProcessEnv = process.env): PaymentsProviderConfig {
  const raw = loadConfig(z.object(paymentsProviderEnv), env);
  return {
    latencyMs: raw.PSP_LATENCY_MS,
    declineRate: raw.PSP_DECLINE_RATE,
    timeoutRate: raw.PSP_TIMEOUT_RATE,
    timeoutChargedRate: raw.PSP_TIMEOUT_CHARGED_RATE,
    seed: raw.PSP_SEED,
    maxAttempts: raw.PSP_MAX_ATTEMPTS,
    callTimeoutMs: raw.PSP_CALL_TIMEOUT_MS,
  };
}

/**
 * The OpenTelemetry variables a process's SDK reads when tracing is on (`@shop/tracing` starts the
 * Node SDK; traces only: metrics and logs stay with Prometheus and pino). Named one by one, from the
 * OpenTelemetry SDK environment variable specification, so a misspelled one is caught.
 */
export const openTelemetryVariables: ReadonlySet<string> = new Set([
  'OTEL_SDK_DISABLED',
  'OTEL_SERVICE_NAME',
  'OTEL_RESOURCE_ATTRIBUTES',
  'OTEL_NODE_RESOURCE_DETECTORS',
  'OTEL_LOG_LEVEL',
  'OTEL_PROPAGATORS',
  'OTEL_TRACES_EXPORTER',
  'OTEL_TRACES_SAMPLER',
  'OTEL_TRACES_SAMPLER_ARG',
  'OTEL_BSP_SCHEDULE_DELAY',
  'OTEL_BSP_EXPORT_TIMEOUT',
  'OTEL_BSP_MAX_QUEUE_SIZE',
  'OTEL_BSP_MAX_EXPORT_BATCH_SIZE',
  'OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT',
  'OTEL_ATTRIBUTE_COUNT_LIMIT',
  'OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT',
  'OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT',
  'OTEL_SPAN_EVENT_COUNT_LIMIT',
  'OTEL_SPAN_LINK_COUNT_LIMIT',
  'OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT',
  'OTEL_LINK_ATTRIBUTE_COUNT_LIMIT',
  ...['', 'TRACES_'].flatMap((signal) =>
    ['ENDPOINT', 'HEADERS', 'TIMEOUT', 'PROTOCOL', 'COMPRESSION', 'CERTIFICATE', 'CLIENT_KEY', 'CLIENT_CERTIFICATE', 'INSECURE'].map(
      (name) => `OTEL_EXPORTER_OTLP_${signal}${name}`,
    ),
  ),
]);

/** Whether `name` is an OpenTelemetry variable the tracing SDK of a process reads ({@link openTelemetryVariables}). */
export function isOpenTelemetryVariable(name: string): boolean {
  return openTelemetryVariables.has(name);
}

/**
 * The variables each subgraph's loaders read besides {@link loadSubgraphConfig}'s: accounts its
 * sign-in settings, inventory its sweeper, orders its saga and shards, payments its provider.
 */
const subgraphOwnEnv: Readonly<Record<string, readonly object[]>> = {
  accounts: [accountsAuthEnv],
  inventory: [inventoryEnv],
  orders: [checkoutEnv, shardingEnv],
  payments: [paymentsProviderEnv],
};

/**
 * Whether the process of subgraph `service` reads the variable `name` (deployment files are checked
 * against this): the shapes {@link loadSubgraphConfig} builds (`<SERVICE>_PORT`,
 * `<SERVICE>_DATABASE_URL`, {@link commonSubgraphEnv}, `INIT_CWD`), that service's own loaders'
 * (accounts {@link accountsAuthEnv}, inventory {@link inventoryEnv}, orders {@link checkoutEnv} and
 * {@link shardingEnv}, payments {@link paymentsProviderEnv}), and the OpenTelemetry variables.
 */
export function isSubgraphVariable(service: string, name: string): boolean {
  const prefix = service.toUpperCase();
  if (name === `${prefix}_PORT` || name === `${prefix}_DATABASE_URL` || name === 'INIT_CWD') return true;
  // Own keys only: `in` would also accept Object.prototype's (`toString`, `constructor`).
  if (Object.hasOwn(commonSubgraphEnv, name) || isOpenTelemetryVariable(name)) return true;
  const own = Object.hasOwn(subgraphOwnEnv, service) ? subgraphOwnEnv[service] : undefined;
  return (own ?? []).some((shape) => Object.hasOwn(shape, name));
}
