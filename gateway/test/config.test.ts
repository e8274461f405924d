import path from 'node:path';
import { ConfigError } from '@shop/config';
import { gatewayOptionsFromConfig, loadGatewayConfig } from '../src/config';
import { silentTelemetry } from './harness';

const REPO_ROOT = path.resolve(__dirname, '..', '..');

describe('loadGatewayConfig', () => {
  it('has defaults for everything, the repo supergraph included', () => {
    expect(loadGatewayConfig({})).toEqual({
      port: 4000,
      host: '0.0.0.0',
      supergraph: { path: path.join(REPO_ROOT, 'supergraph.graphql') },
      watch: true,
      pollIntervalMs: 0,
      drainDelayMs: 0,
      logLevel: 'info',
      nodeEnv: 'development',
      introspection: true,
      explorer: true,
      foldFetches: true,
      levelFetches: true,
      planExecutor: 'own',
      exposeQueryPlan: true,
      subscriptions: { enabled: true, perConnection: 20, perUser: 50, total: 20_000, queue: 32, concurrency: 64, keepAliveMs: 15_000 },
      subgraphTimeoutMs: 10_000,
      subgraphTimeouts: {},
      requestTimeoutMs: 15_000,
      resilience: { breaker: true, breakerFailures: 5, breakerHalfOpenMs: 5_000, retries: 2 },
      rateLimit: { points: 1000, durationS: 10 },
      subgraphUrlOverrides: {},
      redisUrl: undefined,
      amqpUrl: undefined,
      amqpNamespace: 'shop',
      limits: {
        document: { depth: 15, aliases: 50, directives: 50, tokens: 1000, fields: 2000 },
        responseBytes: 5_000_000,
        cost: { maxCost: 5000, defaultListSize: 10 },
        shedding: { maxEventLoopDelayMs: 500, maxInFlight: 2000 },
      },
      cost: { maxCost: 5000, mode: 'enforce', reportActual: false, defaultListSize: 10 },
      layers: {
        cache: true,
        entityCache: true,
        responseCache: true,
        dedupe: true,
        merge: true,
        memo: true,
        inflight: true,
        cacheTimeoutMs: 250,
        entityTtlByType: {},
        responseTtlByRootField: {},
      },
      trustedDocuments: { mode: 'off', path: path.join(REPO_ROOT, 'operations', 'trusted-documents.json') },
      auth: { jwksUrl: undefined, issuer: undefined, audience: undefined },
      subgraphSecret: undefined,
    });
  });

  it('reads JWKS_URL, JWT_ISSUER, JWT_AUDIENCE and SUBGRAPH_SECRET, refusing a short secret and a JWKS URL that is not http(s)', () => {
    const secret = 'x'.repeat(32);
    const config = loadGatewayConfig({
      JWKS_URL: 'http://accounts:4001/.well-known/jwks.json',
      JWT_ISSUER: 'shop-accounts',
      JWT_AUDIENCE: 'shop',
      SUBGRAPH_SECRET: secret,
    });
    expect(config.auth).toEqual({ jwksUrl: 'http://accounts:4001/.well-known/jwks.json', issuer: 'shop-accounts', audience: 'shop' });
    expect(config.subgraphSecret).toBe(secret);
    expect(() => loadGatewayConfig({ SUBGRAPH_SECRET: 'short' })).toThrow(/SUBGRAPH_SECRET/);
    expect(() => loadGatewayConfig({ JWKS_URL: 'file:///etc/keys.json' })).toThrow(/JWKS_URL/);
  });

  it('reads the document limits and demand control, refusing a bad mode by name', () => {
    const config = loadGatewayConfig({
      MAX_QUERY_TOKENS: '500',
      MAX_RESPONSE_BYTES: '1000',
      MAX_COST: '80',
      COST_MODE: 'measure',
      COST_REPORT_ACTUAL: 'true',
      COST_LIST_SIZE: '3',
    });
    expect(config.limits).toEqual({
      document: { depth: 15, aliases: 50, directives: 50, tokens: 500, fields: 2000 },
      responseBytes: 1000,
      cost: { maxCost: 80, defaultListSize: 3 },
      shedding: { maxEventLoopDelayMs: 500, maxInFlight: 2000 },
    });
    expect(config.cost).toEqual({ maxCost: 80, mode: 'measure', reportActual: true, defaultListSize: 3 });
    expect(() => loadGatewayConfig({ COST_MODE: 'lenient' })).toThrow(/COST_MODE/);
    expect(() => loadGatewayConfig({ MAX_COST: '-1' })).toThrow(/MAX_COST/);
  });

  it('reads PLAN_EXECUTOR into the executor the gateway runs plans on, refusing other names', () => {
    const deps = { telemetry: silentTelemetry('gateway'), cacheStore: undefined, bus: undefined };
    expect(gatewayOptionsFromConfig(loadGatewayConfig({ PLAN_EXECUTOR: 'apollo' }), deps).executor).toBe('apollo');
    expect(gatewayOptionsFromConfig(loadGatewayConfig({}), deps).executor).toBe('own');
    expect(() => loadGatewayConfig({ PLAN_EXECUTOR: 'rust' })).toThrow(/PLAN_EXECUTOR/);
  });

  it('switches each caching and batching layer off on its own', () => {
    const config = loadGatewayConfig({
      ENTITY_CACHE: 'false',
      MERGE_FETCHES: 'off',
      REQUEST_MEMO: 'false',
      REDIS_URL: 'redis://127.0.0.1:6379',
      CACHE_TIMEOUT_MS: '20',
    });
    expect(config.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(config.layers).toEqual({
      cache: true,
      entityCache: false,
      responseCache: true,
      dedupe: true,
      merge: false,
      memo: false,
      inflight: true,
      cacheTimeoutMs: 20,
      entityTtlByType: {},
      responseTtlByRootField: {},
    });
    expect(loadGatewayConfig({ ENTITY_CACHE_TTL: 'Product=30, User=60' }).layers.entityTtlByType).toEqual({ Product: 30, User: 60 });
    expect(() => loadGatewayConfig({ ENTITY_CACHE_TTL: 'Product:30' })).toThrow(/ENTITY_CACHE_TTL/);
    expect(() => loadGatewayConfig({ ENTITY_CACHE_TTL: '*=30' })).toThrow(/ENTITY_CACHE_TTL/);
    expect(loadGatewayConfig({ RESPONSE_CACHE_TTL: 'products=30, *=5' }).layers.responseTtlByRootField).toEqual({ products: 30, '*': 5 });
    expect(() => loadGatewayConfig({ RESPONSE_CACHE_TTL: 'products' })).toThrow(/RESPONSE_CACHE_TTL/);
    expect(() => loadGatewayConfig({ REDIS_URL: 'http://nope' })).toThrow(/REDIS_URL/);
  });

  it('reads SUPERGRAPH_CONFIG, resolving relative paths from where npm was started', () => {
    const config = loadGatewayConfig({ SUPERGRAPH_CONFIG: 'supergraph.yaml', INIT_CWD: '/somewhere' });
    expect(config.supergraph).toEqual({ configPath: '/somewhere/supergraph.yaml' });
    expect(loadGatewayConfig({ SUPERGRAPH_PATH: '/abs/s.graphql' }).supergraph).toEqual({ path: '/abs/s.graphql' });
  });

  it('exposes query plans to the clients that ask outside production only, unless EXPOSE_QUERY_PLAN says otherwise', () => {
    const deps = { telemetry: silentTelemetry('gateway'), cacheStore: undefined, bus: undefined };
    const exposed = (env: NodeJS.ProcessEnv) => gatewayOptionsFromConfig(loadGatewayConfig(env), deps).exposeQueryPlan;
    expect([exposed({}), exposed({ NODE_ENV: 'test' }), exposed({ NODE_ENV: 'production' })]).toEqual([true, true, false]);
    expect([exposed({ NODE_ENV: 'production', EXPOSE_QUERY_PLAN: 'true' }), exposed({ EXPOSE_QUERY_PLAN: 'off' })]).toEqual([true, false]);
    expect(() => loadGatewayConfig({ EXPOSE_QUERY_PLAN: 'sometimes' })).toThrow(/EXPOSE_QUERY_PLAN/);
  });

  it('turns introspection and the explorer off by default in production, and either can be set', () => {
    expect(loadGatewayConfig({ NODE_ENV: 'production' })).toMatchObject({ introspection: false, explorer: false });
    expect(loadGatewayConfig({ NODE_ENV: 'test' })).toMatchObject({ introspection: true, explorer: true });
    expect(loadGatewayConfig({ NODE_ENV: 'production', INTROSPECTION: 'true', EXPLORER: '1' })).toMatchObject({
      introspection: true,
      explorer: true,
    });
    expect(loadGatewayConfig({ INTROSPECTION: 'off', EXPLORER: 'no' })).toMatchObject({ introspection: false, explorer: false });
    expect(loadGatewayConfig({ NODE_ENV: 'production', INTROSPECTION: '' })).toMatchObject({ introspection: false });
    expect(() => loadGatewayConfig({ EXPLORER: 'maybe' })).toThrow(/EXPLORER/);
  });

  it('reads TRUSTED_DOCUMENTS and TRUSTED_DOCUMENTS_PATH, resolving the path from where npm was started', () => {
    expect(
      loadGatewayConfig({ TRUSTED_DOCUMENTS: 'enforce', TRUSTED_DOCUMENTS_PATH: 'pq.json', INIT_CWD: '/somewhere' }).trustedDocuments,
    ).toEqual({
      mode: 'enforce',
      path: '/somewhere/pq.json',
    });
    expect(loadGatewayConfig({ TRUSTED_DOCUMENTS: 'log' }).trustedDocuments.mode).toBe('log');
    expect(() => loadGatewayConfig({ TRUSTED_DOCUMENTS: 'strict' })).toThrow(/TRUSTED_DOCUMENTS/);
  });

  it('refuses SUPERGRAPH_PATH and SUPERGRAPH_CONFIG together', () => {
    expect(() => loadGatewayConfig({ SUPERGRAPH_PATH: 'a.graphql', SUPERGRAPH_CONFIG: 'b.yaml' })).toThrow(ConfigError);
  });

  it('collects SUBGRAPH_<NAME>_URL overrides, and only those', () => {
    const config = loadGatewayConfig({
      SUBGRAPH_ACCOUNTS_URL: 'http://accounts:4001/graphql',
      SUBGRAPH_PRODUCT_CATALOG_URL: 'https://catalog.internal/graphql',
      SUBGRAPH_TIMEOUT_MS: '2500',
      SUBGRAPH_EMPTY_URL: '',
    });
    expect(config.subgraphUrlOverrides).toEqual({
      ACCOUNTS: 'http://accounts:4001/graphql',
      PRODUCT_CATALOG: 'https://catalog.internal/graphql',
    });
    expect(config.subgraphTimeoutMs).toBe(2500);
  });

  it('names every bad variable and what it received', () => {
    let error: unknown;
    try {
      loadGatewayConfig({ GATEWAY_PORT: 'eighty', SUBGRAPH_REVIEWS_URL: 'not a url', LOG_LEVEL: 'loud', SUPERGRAPH_WATCH: 'maybe' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const configError = error as ConfigError;
    expect(configError.variables.sort()).toEqual(['GATEWAY_PORT', 'LOG_LEVEL', 'SUBGRAPH_REVIEWS_URL', 'SUPERGRAPH_WATCH']);
    expect(configError.message).toContain('SUBGRAPH_REVIEWS_URL');
    expect(configError.message).toContain('"not a url"');
  });
});
