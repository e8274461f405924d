// Every variable of the README's table (under "Services mode") changes behaviour in the embedded
// mode and in the services mode. Both modes map the environment through the same functions
// (loadGatewayConfig + gatewayOptionsFromConfig, loadSubgraphConfig + subgraphOptionsFromConfig);
// this test proves it per variable: live against one stack per mode, started with one environment
// of non-default values, where one start can show it (ports, URLs, limits, a cache switch,
// NODE_ENV, seeding), and otherwise on the options the mapping makes, read back from the live
// embedded stack too when the variable is in its environment. A variable added to the table
// without a check here fails the first test.
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import { DEV_PASSWORD } from '@shop/accounts';
import {
  loadAccountsAuthConfig,
  loadCheckoutConfig,
  loadShardingConfig,
  loadInventoryConfig,
  loadPaymentsProviderConfig,
  loadSubgraphConfig,
} from '@shop/config';
import { type GatewayOptions, gatewayOptionsFromConfig, loadGatewayConfig } from '@shop/gateway';
import { seedOrderId } from '@shop/orders';
import { type SubgraphFactoryOptions, freePort, subgraphOptionsFromConfig } from '@shop/server';
import { REPO_ROOT, SUBGRAPHS, type Services, type Stack, type SubgraphName, startServices, startStack } from '@shop/stack';
import { createTelemetry } from '@shop/telemetry';
import { seedUsers } from '@shop/seed';
import { bearer, requireService, services as testServices, signIn, tempPostgres } from '@shop/testing';

/** The variables the README's table lists, from the first column of the rows under "Services mode". */
function readmeVariables(): string[] {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const section = readme.split(/^## Services mode$/m)[1]?.split(/^## /m)[0] ?? '';
  const names = section
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .flatMap((line) => [...(line.split('|')[1] ?? '').matchAll(/`([A-Z0-9_<>]+)`/g)].map((m) => m[1] as string));
  return [...new Set(names)];
}

/** One running mode, as the live checks see it. */
interface Target {
  mode: 'embedded' | 'services';
  gatewayBase: string;
  subgraphBase(name: SubgraphName): string;
}

type Json = {
  data?: Record<string, unknown> | null;
  errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
  extensions?: Record<string, unknown>;
};

async function graphql(target: Target, query: string, headers: Record<string, string> = {}): Promise<Json> {
  const res = await fetch(`${target.gatewayBase}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query }),
  });
  return (await res.json()) as Json;
}

const extensionsOf = (json: Json) => (json.errors ?? []).map((e) => e.extensions ?? {});
const nested = (depth: number): string => (depth <= 1 ? 'name' : `reviews(first: 1) { product { ${nested(depth - 1)} } }`);

// The non-default values both live stacks start with. Ports, URLs and databases are added per mode.
const SEED = { SEED_USERS: '7', SEED_PRODUCTS: '9', SEED_REVIEWS: '30' };
const LIVE_ENV = {
  ...SEED,
  NODE_ENV: 'production',
  EXPLORER: 'true',
  HOST: '127.0.0.1',
  LOG_LEVEL: 'error',
  PAGE_MAX: '50',
  HOT_CACHE: 'false',
  MAX_QUERY_DEPTH: '9',
  MAX_QUERY_ALIASES: '7',
  MAX_QUERY_DIRECTIVES: '6',
  MAX_QUERY_TOKENS: '400',
  MAX_QUERY_FIELDS: '120',
  MAX_COST: '1500',
  MAX_RESPONSE_BYTES: '3000',
  COST_REPORT_ACTUAL: 'true',
  TRUSTED_DOCUMENTS: 'log',
  SUPERGRAPH_WATCH: 'false',
};

/** A variable proven live: run against each mode's stack. */
type LiveCheck = (target: Target) => Promise<void>;

/**
 * A variable proven on the options: `value` set alone, the mapping's options differ from the
 * defaults as `check` says. Both modes run that mapping; the embedded stack's own options are
 * checked too when its environment has the variable at that value.
 */
interface MappedCheck {
  value: string;
  /** The environment that sets it, when the variable's name is a pattern. @default { [name]: value } */
  env?: Record<string, string>;
  check(gateway: GatewayOptions, subgraph: SubgraphFactoryOptions, env: Record<string, string>): void;
}

const limitCheck =
  (code: string, limit: number, query: string): LiveCheck =>
  async (target) => {
    const json = await graphql(target, query);
    expect(extensionsOf(json)).toContainEqual(expect.objectContaining({ validationErrorCode: code, limit }));
  };

let tmp: string;
let deadUrl: string;

const live: Record<string, LiveCheck> = {
  GATEWAY_PORT: async (target) => {
    expect((await fetch(`${target.gatewayBase}/health`)).status).toBe(200);
  },
  ...Object.fromEntries(
    SUBGRAPHS.map((s) => [
      `${s.name.toUpperCase()}_PORT`,
      async (target: Target) => expect((await fetch(`${target.subgraphBase(s.name)}/health`)).status).toBe(200),
    ]),
  ),
  // SUBGRAPH_ORDERS_URL names a port nothing listens on: the gateway goes there, not to the running orders.
  'SUBGRAPH_<NAME>_URL': async (target) => {
    // Orders are their customer's to read (seed order 1 is u00001's): signed in, the gateway sends the
    // query to orders' overridden URL.
    const u00001 = [...seedUsers({ users: 1, products: 0, reviews: 0 })][0]!;
    const token = await signIn(`${target.gatewayBase}/graphql`, u00001.email, DEV_PASSWORD);
    const json = await graphql(target, `{ order(id: "${seedOrderId(1)}") { id } }`, bearer(token));
    expect(extensionsOf(json)).toContainEqual(expect.objectContaining({ code: 'SUBGRAPH_UNAVAILABLE' }));
    expect((await graphql(target, '{ user(id: "u00001") { name } }')).data).toEqual({ user: { name: expect.any(String) } });
  },
  NODE_ENV: async (target) => {
    // Production turns introspection off by default (INTROSPECTION is not set here).
    const json = await graphql(target, '{ __schema { queryType { name } } }');
    expect(extensionsOf(json)).toContainEqual(expect.objectContaining({ validationErrorCode: 'INTROSPECTION_DISABLED' }));
  },
  EXPLORER: async (target) => {
    // On although NODE_ENV=production turns it off by default.
    expect((await fetch(`${target.gatewayBase}/explorer`)).status).toBe(200);
  },
  PAGE_MAX: async (target) => {
    const json = await graphql(target, '{ users(first: 51) { edges { cursor } } }');
    expect(extensionsOf(json)).toContainEqual(expect.objectContaining({ code: 'BAD_USER_INPUT' }));
    expect((await graphql(target, '{ users(first: 50) { edges { cursor } } }')).errors).toBeUndefined();
  },
  SEED_USERS: async (target) => {
    const json = await graphql(target, '{ users(first: 50) { edges { node { id } } } }');
    // The 7 generated users and the development admin accounts adds beside them.
    expect((json.data?.users as { edges: unknown[] }).edges).toHaveLength(8);
  },
  SEED_PRODUCTS: async (target) => {
    const json = await graphql(target, '{ products(first: 50) { edges { node { id } } } }');
    expect((json.data?.products as { edges: unknown[] }).edges).toHaveLength(9);
  },
  SEED_REVIEWS: async (target) => {
    const json = await graphql(target, '{ topProducts(first: 9) { reviews(first: 50) { id } } }');
    const products = json.data?.topProducts as Array<{ reviews: unknown[] }>;
    expect(products.reduce((n, p) => n + p.reviews.length, 0)).toBe(30);
  },
  HOT_CACHE: async (target) => {
    expect((await graphql(target, '{ user(id: "u00002") { name } }')).errors).toBeUndefined();
    const metrics = await (await fetch(`${target.subgraphBase('accounts')}/metrics`)).text();
    expect(metrics).toMatch(/store_queries_total\{service="accounts"\}/);
    expect(metrics).not.toMatch(/cache_requests_total\{service="accounts"/);
  },
  MAX_QUERY_DEPTH: limitCheck('MAX_DEPTH_EXCEEDED', 9, `{ topProducts(first: 1) { ${nested(12)} } }`),
  MAX_QUERY_ALIASES: limitCheck(
    'MAX_ALIASES_EXCEEDED',
    7,
    `{ topProducts(first: 1) { ${Array.from({ length: 8 }, (_, i) => `a${i}: name`).join(' ')} } }`,
  ),
  MAX_QUERY_DIRECTIVES: limitCheck('MAX_DIRECTIVES_EXCEEDED', 6, `{ __typename ${'@skip(if: false) '.repeat(7)}}`),
  MAX_QUERY_FIELDS: limitCheck(
    'MAX_FIELDS_EXCEEDED',
    120,
    `{ topProducts(first: 1) { ...F } } fragment F on Product { ${Array.from({ length: 130 }, () => 'name').join(' ')} }`,
  ),
  MAX_QUERY_TOKENS: async (target) => {
    const json = await graphql(target, `{ ${Array.from({ length: 450 }, () => '__typename').join(' ')} }`);
    expect(extensionsOf(json)).toContainEqual(expect.objectContaining({ code: 'GRAPHQL_PARSE_FAILED' }));
    expect(json.errors?.[0]?.message).toMatch(/400/);
  },
  MAX_COST: async (target) => {
    const json = await graphql(target, '{ topProducts(first: 40) { reviews(first: 40) { body } } }');
    expect(extensionsOf(json)).toContainEqual(
      expect.objectContaining({ code: 'COST_ESTIMATED_TOO_EXPENSIVE', cost: expect.objectContaining({ max: 1500 }) }),
    );
  },
  COST_REPORT_ACTUAL: async (target) => {
    const json = await graphql(target, '{ topProducts(first: 1) { name } }');
    expect(json.extensions?.cost).toEqual(expect.objectContaining({ actual: expect.any(Number) }));
  },
  MAX_RESPONSE_BYTES: async (target) => {
    const json = await graphql(target, '{ topProducts(first: 9) { name description reviews(first: 50) { id body } } }');
    expect(extensionsOf(json)).toContainEqual(expect.objectContaining({ code: 'RESPONSE_TOO_LARGE' }));
  },
  TRUSTED_DOCUMENTS: async (target) => {
    await graphql(target, '{ __typename }');
    const metrics = await (await fetch(`${target.gatewayBase}/metrics`)).text();
    expect(metrics).toMatch(/trusted_documents_total\{result="unknown"\} [1-9]/);
  },
};

const mapped: Record<string, MappedCheck> = {
  HOST: {
    value: '127.0.0.2',
    check: (_g, _s, env) =>
      expect([loadGatewayConfig(env).host, loadSubgraphConfig('accounts', 4001, env).host]).toEqual(['127.0.0.2', '127.0.0.2']),
  },
  LOG_LEVEL: {
    value: 'error',
    check: (_g, _s, env) =>
      expect([loadGatewayConfig(env).logLevel, loadSubgraphConfig('accounts', 4001, env).logLevel]).toEqual(['error', 'error']),
  },
  SUPERGRAPH_PATH: { value: '/tmp/elsewhere.graphql', check: (g) => expect(g.supergraph).toEqual({ path: '/tmp/elsewhere.graphql' }) },
  SUPERGRAPH_CONFIG: { value: '/tmp/elsewhere.yaml', check: (g) => expect(g.supergraph).toEqual({ configPath: '/tmp/elsewhere.yaml' }) },
  SUPERGRAPH_WATCH: { value: 'false', check: (g) => expect(g.watch).toBe(false) },
  SUPERGRAPH_URL: {
    value: 'http://registry:4100/supergraph.graphql',
    check: (g) => expect([g.supergraph, g.pollIntervalMs]).toEqual([{ url: 'http://registry:4100/supergraph.graphql' }, 10_000]),
  },
  SUPERGRAPH_POLL_INTERVAL_MS: { value: '2500', check: (g) => expect(g.pollIntervalMs).toBe(2500) },
  DRAIN_DELAY_MS: {
    value: '1500',
    check: (g, _s, env) => expect([g.drainDelayMs, loadSubgraphConfig('accounts', 4001, env).drainDelayMs]).toEqual([1500, 1500]),
  },
  SUBGRAPH_TIMEOUT_MS: { value: '1234', check: (g) => expect(g.subgraphTimeoutMs).toBe(1234) },
  INTROSPECTION: { value: 'false', check: (g) => expect(g.introspection).toBe(false) },
  TRUSTED_DOCUMENTS_PATH: {
    value: '/tmp/pq.json',
    check: (g) => expect(g.trustedDocuments).toEqual({ mode: 'off', path: '/tmp/pq.json' }),
  },
  ACCOUNTS_DATABASE_URL: {
    value: 'postgres://u@db:5432/a',
    check: (_g, s) => expect(s.store).toEqual({ postgresUrl: 'postgres://u@db:5432/a' }),
  },
  ORDERS_DATABASE_URL: {
    value: 'postgres://u@db:5432/o',
    check: (_g, _s, env) =>
      expect(subgraphOptionsFromConfig(loadSubgraphConfig('orders', 4005, env), deps()).store).toEqual({
        postgresUrl: 'postgres://u@db:5432/o',
      }),
  },
  PAYMENTS_DATABASE_URL: {
    value: 'postgres://u@db:5432/p',
    check: (_g, _s, env) =>
      expect(subgraphOptionsFromConfig(loadSubgraphConfig('payments', 4006, env), deps()).store).toEqual({
        postgresUrl: 'postgres://u@db:5432/p',
      }),
  },
  // payments' provider settings: its index.ts and the embedded stack read them with loadPaymentsProviderConfig.
  PSP_LATENCY_MS: { value: '5', check: (_g, _s, env) => expect(loadPaymentsProviderConfig(env).latencyMs).toBe(5) },
  PSP_DECLINE_RATE: { value: '0.3', check: (_g, _s, env) => expect(loadPaymentsProviderConfig(env).declineRate).toBe(0.3) },
  PSP_TIMEOUT_RATE: { value: '0.2', check: (_g, _s, env) => expect(loadPaymentsProviderConfig(env).timeoutRate).toBe(0.2) },
  PSP_TIMEOUT_CHARGED_RATE: { value: '0.5', check: (_g, _s, env) => expect(loadPaymentsProviderConfig(env).timeoutChargedRate).toBe(0.5) },
  PSP_SEED: { value: 'vars', check: (_g, _s, env) => expect(loadPaymentsProviderConfig(env).seed).toBe('vars') },
  PSP_MAX_ATTEMPTS: { value: '3', check: (_g, _s, env) => expect(loadPaymentsProviderConfig(env).maxAttempts).toBe(3) },
  PSP_CALL_TIMEOUT_MS: { value: '750', check: (_g, _s, env) => expect(loadPaymentsProviderConfig(env).callTimeoutMs).toBe(750) },
  DATA_DIR: {
    value: '/tmp/shop-data',
    check: (_g, s) => expect(s.store).toEqual({ sqlitePath: join('/tmp/shop-data', 'accounts', 'accounts.sqlite') }),
  },
  SEED: { value: 'false', check: (_g, s) => expect(s.seed).toBe(false) },
  // accounts' sign-in settings: its index.ts (and `npm run token`) read them with loadAccountsAuthConfig.
  ACCESS_TOKEN_TTL_S: { value: '120', check: (_g, _s, env) => expect(loadAccountsAuthConfig(env).accessTokenTtlS).toBe(120) },
  CHECKOUT_STEP_TIMEOUT_MS: { value: '1500', check: (_g, _s, env) => expect(loadCheckoutConfig(env).stepTimeoutMs).toBe(1500) },
  CHECKOUT_MAX_STEP_TIMEOUT_MS: { value: '90000', check: (_g, _s, env) => expect(loadCheckoutConfig(env).maxStepTimeoutMs).toBe(90_000) },
  CHECKOUT_MAX_ATTEMPTS: { value: '2', check: (_g, _s, env) => expect(loadCheckoutConfig(env).maxAttempts).toBe(2) },
  CHECKOUT_RESERVATION_HOLD_MS: { value: '30000', check: (_g, _s, env) => expect(loadCheckoutConfig(env).reservationHoldMs).toBe(30_000) },
  CHECKOUT_TIMER_INTERVAL_MS: { value: '250', check: (_g, _s, env) => expect(loadCheckoutConfig(env).timerIntervalMs).toBe(250) },
  ORDERS_SHARDS: {
    value: 'postgres://127.0.0.1/shop_orders_a, /tmp/orders-b.sqlite',
    check: (_g, _s, env) => expect(loadShardingConfig(env).shards).toEqual(['postgres://127.0.0.1/shop_orders_a', '/tmp/orders-b.sqlite']),
  },
  ORDERS_SLOT_MAP: {
    value: '/tmp/orders-map.sqlite',
    check: (_g, _s, env) => expect(loadShardingConfig(env).slotMap).toBe('/tmp/orders-map.sqlite'),
  },
  ORDERS_MAP_REFRESH_MS: { value: '250', check: (_g, _s, env) => expect(loadShardingConfig(env).mapRefreshMs).toBe(250) },
  ORDERS_FENCE_WAIT_MS: { value: '9000', check: (_g, _s, env) => expect(loadShardingConfig(env).fenceWaitMs).toBe(9000) },
  ORDERS_SHARD_READ_TIMEOUT_MS: { value: '750', check: (_g, _s, env) => expect(loadShardingConfig(env).shardReadTimeoutMs).toBe(750) },
  RESERVATION_SWEEP_INTERVAL_MS: { value: '250', check: (_g, _s, env) => expect(loadInventoryConfig(env).sweepIntervalMs).toBe(250) },
  REFRESH_TOKEN_TTL_S: { value: '3600', check: (_g, _s, env) => expect(loadAccountsAuthConfig(env).refreshTokenTtlS).toBe(3600) },
  SIGNING_KEY_MAX_AGE_S: { value: '86400', check: (_g, _s, env) => expect(loadAccountsAuthConfig(env).signingKeyMaxAgeS).toBe(86400) },
  REDIS_URL: {
    value: 'redis://127.0.0.1:6399',
    check: (_g, _s, env) =>
      expect([loadGatewayConfig(env).redisUrl, loadSubgraphConfig('accounts', 4001, env).redisUrl]).toEqual([
        'redis://127.0.0.1:6399',
        'redis://127.0.0.1:6399',
      ]),
  },
  AMQP_URL: {
    value: 'amqp://u@mq:5672',
    check: (_g, _s, env) =>
      expect([loadGatewayConfig(env).amqpUrl, loadSubgraphConfig('accounts', 4001, env).amqpUrl]).toEqual([
        'amqp://u@mq:5672',
        'amqp://u@mq:5672',
      ]),
  },
  AMQP_NAMESPACE: {
    value: 'other',
    check: (_g, _s, env) =>
      expect([loadGatewayConfig(env).amqpNamespace, loadSubgraphConfig('accounts', 4001, env).amqpNamespace]).toEqual(['other', 'other']),
  },
  GATEWAY_CACHE: { value: 'false', check: (_g, _s, env) => expect(loadGatewayConfig(env).layers.cache).toBe(false) },
  ENTITY_CACHE: { value: 'false', check: (g) => expect(g.entityCache).toBe(false) },
  RESPONSE_CACHE: { value: 'false', check: (g) => expect(g.responseCache).toBe(false) },
  DEDUPE_REPRESENTATIONS: { value: 'false', check: (g) => expect(g.layers).toEqual(expect.objectContaining({ dedupe: false })) },
  MERGE_FETCHES: { value: 'false', check: (g) => expect(g.layers).toEqual(expect.objectContaining({ merge: false })) },
  REQUEST_MEMO: { value: 'false', check: (g) => expect(g.layers).toEqual(expect.objectContaining({ memo: false })) },
  FOLD_FETCHES: { value: 'false', check: (g) => expect(g.foldFetches).toBe(false) },
  LEVEL_FETCHES: { value: 'false', check: (g) => expect(g.levelFetches).toBe(false) },
  PLAN_EXECUTOR: { value: 'apollo', check: (g) => expect(g.executor).toBe('apollo') },
  EXPOSE_QUERY_PLAN: { value: 'false', check: (g) => expect(g.exposeQueryPlan).toBe(false) },
  SUBSCRIPTIONS: { value: 'false', check: (g) => expect(g.subscriptions).toBe(false) },
  MAX_SUBSCRIPTIONS_PER_CONNECTION: { value: '3', check: (g) => expect(g.subscriptions).toMatchObject({ perConnection: 3 }) },
  MAX_SUBSCRIPTIONS_PER_USER: { value: '7', check: (g) => expect(g.subscriptions).toMatchObject({ perUser: 7 }) },
  MAX_SUBSCRIPTIONS: { value: '900', check: (g) => expect(g.subscriptions).toMatchObject({ total: 900 }) },
  SUBSCRIPTION_QUEUE: { value: '8', check: (g) => expect(g.subscriptions).toMatchObject({ queue: 8 }) },
  SUBSCRIPTION_EXECUTIONS: { value: '16', check: (g) => expect(g.subscriptions).toMatchObject({ concurrency: 16 }) },
  WS_KEEPALIVE_MS: { value: '5000', check: (g) => expect(g.subscriptions).toMatchObject({ keepAliveMs: 5000 }) },
  INFLIGHT_DEDUPE: { value: 'false', check: (g) => expect(g.layers).toEqual(expect.objectContaining({ inflight: false })) },
  HOT_CACHE_TTL_MS: { value: '4321', check: (_g, s) => expect(s.hotCacheTtlMs).toBe(4321) },
  CACHE_TIMEOUT_MS: {
    value: '321',
    check: (_g, _s, env) =>
      expect([loadGatewayConfig(env).layers.cacheTimeoutMs, loadSubgraphConfig('accounts', 4001, env).hotCache.timeoutMs]).toEqual([
        321, 321,
      ]),
  },
  COST_MODE: { value: 'measure', check: (g) => expect(g.cost).toEqual(expect.objectContaining({ mode: 'measure' })) },
  COST_LIST_SIZE: {
    value: '4',
    check: (g, s) => {
      expect(g.cost).toEqual(expect.objectContaining({ defaultListSize: 4 }));
      expect(s.cost).toEqual(expect.objectContaining({ defaultListSize: 4 }));
    },
  },
  ENTITY_CACHE_TTL: { value: 'Product=30', check: (g) => expect(g.entityCache).toEqual({ ttlByType: { Product: 30 } }) },
  RESPONSE_CACHE_TTL: { value: 'products=30', check: (g) => expect(g.responseCacheTtl).toEqual({ products: 30 }) },
  'SUBGRAPH_<NAME>_TIMEOUT_MS': {
    value: '2345',
    env: { SUBGRAPH_REVIEWS_TIMEOUT_MS: '2345' },
    check: (g) => expect(g.subgraphTimeouts).toEqual({ REVIEWS: 2345 }),
  },
  REQUEST_TIMEOUT_MS: { value: '4567', check: (g) => expect(g.requestTimeoutMs).toBe(4567) },
  BREAKER: { value: 'false', check: (g) => expect(g.breaker).toBe(false) },
  BREAKER_FAILURES: { value: '3', check: (g) => expect(g.breaker).toEqual(expect.objectContaining({ failures: 3 })) },
  BREAKER_HALF_OPEN_MS: { value: '777', check: (g) => expect(g.breaker).toEqual(expect.objectContaining({ halfOpenAfterMs: 777 })) },
  SUBGRAPH_RETRIES: { value: '0', check: (g) => expect(g.retry).toBe(false) },
  RATE_LIMIT_POINTS: { value: '50', check: (g) => expect(g.rateLimit).toEqual({ points: 50, durationS: 10 }) },
  RATE_LIMIT_WINDOW_S: { value: '3', check: (g) => expect(g.rateLimit).toEqual({ points: 1000, durationS: 3 }) },
  SHED_EVENT_LOOP_DELAY_MS: {
    value: '99',
    check: (g, s) => {
      expect(g.loadShedding).toEqual(expect.objectContaining({ maxEventLoopDelayMs: 99 }));
      expect(s.loadShedding).toEqual(expect.objectContaining({ maxEventLoopDelayMs: 99 }));
    },
  },
  SHED_MAX_IN_FLIGHT: {
    value: '12',
    check: (g, s) => {
      expect(g.loadShedding).toEqual(expect.objectContaining({ maxInFlight: 12 }));
      expect(s.loadShedding).toEqual(expect.objectContaining({ maxInFlight: 12 }));
    },
  },
  JWKS_URL: {
    value: 'http://accounts.test:4001/.well-known/jwks.json',
    check: (g) => expect(g.auth).toEqual(expect.objectContaining({ jwksUrl: 'http://accounts.test:4001/.well-known/jwks.json' })),
  },
  // The gateway checks them; accounts (its index.ts, `npm run token`) stamps them on its tokens.
  JWT_ISSUER: {
    value: 'shop-accounts',
    check: (g, _s, env) => expect([g.auth?.issuer, loadAccountsAuthConfig(env).issuer]).toEqual(['shop-accounts', 'shop-accounts']),
  },
  JWT_AUDIENCE: {
    value: 'shop-gateway',
    check: (g, _s, env) => expect([g.auth?.audience, loadAccountsAuthConfig(env).audience]).toEqual(['shop-gateway', 'shop-gateway']),
  },
  SUBGRAPH_SECRET: {
    value: 'config-variables-secret-0123456789abcdef',
    check: (g, _s, env) =>
      expect([g.subgraphSecret, loadSubgraphConfig('accounts', 4001, env).subgraphSecret]).toEqual([
        'config-variables-secret-0123456789abcdef',
        'config-variables-secret-0123456789abcdef',
      ]),
  },
  SUBGRAPH_ALLOW_UNSIGNED: {
    value: 'true',
    check: (_g, _s, env) => expect(loadSubgraphConfig('accounts', 4001, env).allowUnsigned).toBe(true),
  },
};

/** Telemetry for mapping calls: nothing is served, nothing is logged. */
function deps() {
  return {
    telemetry: createTelemetry({ service: 'check', registry: new Registry(), logger: pino({ level: 'silent' }) }),
    cacheStore: undefined,
    bus: undefined,
  };
}

function runMapped(env: Record<string, string>): { gateway: GatewayOptions; subgraph: SubgraphFactoryOptions } {
  return {
    gateway: gatewayOptionsFromConfig(loadGatewayConfig(env), deps()),
    subgraph: subgraphOptionsFromConfig(loadSubgraphConfig('accounts', 4001, env), deps()),
  };
}

/** What the embedded stack's environment adds to LIVE_ENV: mapped variables that leave the live checks intact. */
const EMBEDDED_EXTRA = [
  'SUBGRAPH_TIMEOUT_MS',
  'DEDUPE_REPRESENTATIONS',
  'MERGE_FETCHES',
  'REQUEST_MEMO',
  'FOLD_FETCHES',
  'LEVEL_FETCHES',
  'PLAN_EXECUTOR',
  'INFLIGHT_DEDUPE',
  'HOT_CACHE_TTL_MS',
  'CACHE_TIMEOUT_MS',
  'COST_LIST_SIZE',
  'ENTITY_CACHE_TTL',
  'RESPONSE_CACHE_TTL',
  'REQUEST_TIMEOUT_MS',
  'BREAKER_FAILURES',
  'BREAKER_HALF_OPEN_MS',
  // The stack's subgraphs and gateway share it (else one is made per run); read back below.
  'SUBGRAPH_SECRET',
];

async function freePorts(): Promise<Record<SubgraphName | 'gateway', number>> {
  const ports = {} as Record<SubgraphName | 'gateway', number>;
  for (const name of [...SUBGRAPHS.map((s) => s.name), 'gateway'] as const) ports[name] = await freePort();
  return ports;
}

function portEnv(ports: Record<SubgraphName | 'gateway', number>): Record<string, string> {
  return {
    GATEWAY_PORT: String(ports.gateway),
    ...Object.fromEntries(SUBGRAPHS.map((s) => [`${s.name.toUpperCase()}_PORT`, String(ports[s.name])])),
    SUBGRAPH_ORDERS_URL: deadUrl,
  };
}

function target(mode: Target['mode'], ports: Record<SubgraphName | 'gateway', number>): Target {
  return { mode, gatewayBase: `http://127.0.0.1:${ports.gateway}`, subgraphBase: (name) => `http://127.0.0.1:${ports[name]}` };
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'config-variables-'));
  deadUrl = `http://127.0.0.1:${await freePort()}/graphql`;
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("the README's variables", () => {
  it('are each checked here, and every check names a listed variable', () => {
    const listed = readmeVariables();
    expect(listed.length).toBeGreaterThan(40);
    const checked = [...Object.keys(live), ...Object.keys(mapped)];
    // A new row needs a check; a renamed or removed variable needs its check gone.
    expect([...listed].sort()).toEqual([...new Set(checked)].sort());
  });

  it.each(Object.entries(mapped))('%s changes the options both modes build (mapping)', (name, { value, check, env: given }) => {
    const env = given ?? { [name]: value };
    const defaults = runMapped({});
    const changed = runMapped(env);
    check(changed.gateway, changed.subgraph, env);
    // The same check fails on the defaults: the value is what changed them.
    expect(() => check(defaults.gateway, defaults.subgraph, {})).toThrow();
  });
});

describe('embedded mode (npm start: startStack with an environment)', () => {
  let stack: Stack;
  let ports: Record<SubgraphName | 'gateway', number>;
  let env: Record<string, string>;
  beforeAll(async () => {
    ports = await freePorts();
    const supergraph = join(tmp, 'supergraph.graphql');
    copyFileSync(join(REPO_ROOT, 'supergraph.graphql'), supergraph);
    env = {
      ...LIVE_ENV,
      ...portEnv(ports),
      ...Object.fromEntries(EMBEDDED_EXTRA.map((name) => [name, (mapped[name] as MappedCheck).value])),
      DATA_DIR: join(tmp, 'data'),
      SUPERGRAPH_PATH: supergraph,
    };
    // Only `env`: what `npm start` does with process.env.
    stack = await startStack({ env });
  });
  afterAll(() => stack?.stop());

  it.each(Object.keys(live))('%s (live)', async (name) => {
    await (live[name] as LiveCheck)(target('embedded', ports));
  });

  it('reads back the options of the mapped variables it was started with', () => {
    const inEnv = Object.entries(mapped).filter(([name, c]) => env[name] === c.value);
    expect(inEnv.map(([name]) => name)).toEqual(expect.arrayContaining(EMBEDDED_EXTRA));
    for (const [, { check }] of inEnv) check(stack.options.gateway, stack.options.subgraphs.accounts, env);
    expect(stack.options.gateway.supergraph).toEqual({ path: env.SUPERGRAPH_PATH });
  });

  it('keeps its SQLite files under DATA_DIR', () => {
    for (const s of SUBGRAPHS) expect(existsSync(join(tmp, 'data', s.name, `${s.name}.sqlite`))).toBe(true);
  });
});

describe('services mode (npm run start:services: startServices)', () => {
  let services: Services;
  let ports: Record<SubgraphName | 'gateway', number>;
  const databases = SUBGRAPHS.map((s) => ({ name: s.name, db: tempPostgres(`vars_${s.name}`) }));
  beforeAll(async () => {
    await requireService('postgres');
    await requireService('amqp');
    ports = await freePorts();
    // Everything through the environment, as a deployment sets it: no explicit options.
    services = await startServices({
      stdio: 'inherit',
      env: {
        ...LIVE_ENV,
        ...portEnv(ports),
        ...Object.fromEntries(databases.map((d) => [`${d.name.toUpperCase()}_DATABASE_URL`, d.db.url])),
        AMQP_URL: testServices.amqp,
        AMQP_NAMESPACE: `vars-${process.pid}`,
      },
    });
  }, 120_000);
  afterAll(async () => {
    await services?.stop();
    await Promise.all(databases.map((d) => d.db.drop()));
  });

  it.each(Object.keys(live))('%s (live)', async (name) => {
    await (live[name] as LiveCheck)(target('services', ports));
  });

  it('starts each subgraph on its <SERVICE>_DATABASE_URL and reports the ports it was given', async () => {
    expect(services.gatewayUrl).toBe(`http://localhost:${ports.gateway}/graphql`);
    for (const s of SUBGRAPHS) expect(services.subgraphUrls[s.name]).toBe(`http://127.0.0.1:${ports[s.name]}/graphql`);
    // The databases did not exist before: /ready answers only once each store is migrated.
    for (const s of SUBGRAPHS) expect((await fetch(`http://127.0.0.1:${ports[s.name]}/ready`)).status).toBe(200);
  });
});
