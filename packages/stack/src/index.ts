import { join, resolve } from 'node:path';
import pino, { type Logger } from 'pino';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { createAccounts } from '@shop/accounts';
import { type Gateway, type GatewayOptions, type SupergraphSource, createGateway } from '@shop/gateway';
import { createInventory } from '@shop/inventory';
import { createOrders } from '@shop/orders';
import { createProducts } from '@shop/products';
import { createReviews } from '@shop/reviews';
import type { SeedSizes } from '@shop/seed';
import type { RunningServer, Subgraph } from '@shop/server';
import { type CacheStore, openCacheStore } from '@shop/cache';
import { type Bus, MemoryBroker, MemoryBus, connectAmqpBus } from '@shop/events';
import { type StoreLocation, sqliteFileFor } from '@shop/store';
import { createTelemetry, type Telemetry } from '@shop/telemetry';

/** The repository root, where supergraph.graphql lives. */
export const REPO_ROOT = resolve(__dirname, '..', '..', '..');

/** The subgraphs of this repository with their contract ports, in supergraph.yaml order. */
export const SUBGRAPHS = [
  { name: 'accounts', port: 4001, create: createAccounts },
  { name: 'products', port: 4002, create: createProducts },
  { name: 'inventory', port: 4003, create: createInventory },
  { name: 'reviews', port: 4004, create: createReviews },
  { name: 'orders', port: 4005, create: createOrders },
] as const;

export type SubgraphName = (typeof SUBGRAPHS)[number]['name'];

export interface StackOptions {
  /**
   * Port per subgraph; 0 picks a free one. @default the contract ports, except that when any
   * given port is 0 the unnamed ones are 0 too (a caller asking for free ports, written before a
   * subgraph was added, must not collide on that subgraph's contract port).
   */
  ports?: Partial<Record<SubgraphName | 'gateway', number>>;
  /** @default '0.0.0.0' */
  host?: string;
  /** Where each subgraph keeps its data. @default SQLite in memory */
  store?: (name: SubgraphName) => StoreLocation;
  /** @default the generators' defaults (1,000 users, 1,000 products, 10,000 reviews) */
  seed?: SeedSizes | false;
  /** @default 100 */
  pageMax?: number;
  /** @default the repository's supergraph.graphql */
  supergraph?: SupergraphSource;
  /** @default a pino logger at 'info' */
  logger?: Logger;
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
   * in Redis, or none at all. @default { kind: 'memory' }
   */
  cache?: { kind: 'memory' } | { kind: 'redis'; url: string } | false;
  /** The gateway's fetch layers and caches, individually. @default all on */
  layers?: GatewayOptions['layers'];
  entityCache?: GatewayOptions['entityCache'];
  responseCache?: GatewayOptions['responseCache'];
  /**
   * The event bus: one in-process broker shared by every service (the embedded mode), RabbitMQ,
   * or none (events then wait in each outbox). @default { kind: 'memory' }
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
  /** Stops the gateway first (draining in-flight requests), then the subgraphs. */
  stop(): Promise<void>;
}

/** A process's port: the one asked for; else 0 when the caller asked for free ports elsewhere; else the contract port. */
export function portFor(ports: Partial<Record<string, number>> | undefined, name: string, contractPort: number): number {
  const asked = ports?.[name];
  if (asked !== undefined) return asked;
  return ports && Object.values(ports).includes(0) ? 0 : contractPort;
}

/** SQLite files under `dataDir/<service>/<service>.sqlite`: the embedded mode's stores. */
export const sqliteUnder =
  (dataDir: string) =>
  (name: SubgraphName): StoreLocation => ({ sqlitePath: sqliteFileFor(resolve(dataDir), name) });

/** Starts every subgraph, then the gateway pointed at them. Stops what it started on failure. */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const registry = new Registry();
  if (options.processMetrics) collectDefaultMetrics({ register: registry });
  const logger = options.logger ?? pino({ level: 'info' });
  const host = options.host ?? '0.0.0.0';
  const started: Array<{ stop(): Promise<void> } | { close(): Promise<void> }> = [];
  const stopAll = async () => {
    for (const s of started.splice(0).reverse()) await ('stop' in s ? s.stop() : s.close());
  };
  const telemetry = {} as Record<SubgraphName | 'gateway', Telemetry>;
  const subgraphs = {} as Record<SubgraphName, Subgraph>;
  const subgraphUrls = {} as Record<SubgraphName, string>;
  const cache = options.cache ?? { kind: 'memory' };
  const busOption = options.bus ?? { kind: 'memory' };
  const broker = busOption !== false && busOption.kind === 'memory' ? new MemoryBroker() : undefined;
  /** One bus per service, as separate processes would have; closed after the servers. */
  const openBus = async (t: Telemetry): Promise<Bus | undefined> => {
    if (busOption === false) return undefined;
    const bus =
      busOption.kind === 'memory'
        ? new MemoryBus({ service: t.service, telemetry: t, ...(broker ? { broker } : {}) })
        : await connectAmqpBus({ url: busOption.url, service: t.service, telemetry: t });
    started.unshift(bus);
    return bus;
  };
  /** One cache store per service, as separate processes would have; closed after the servers. */
  const openCache = (t: Telemetry): CacheStore | undefined => {
    if (cache === false) return undefined;
    const store = openCacheStore({ telemetry: t, redisUrl: cache.kind === 'redis' ? cache.url : undefined });
    started.unshift(store);
    return store;
  };
  try {
    for (const def of SUBGRAPHS) {
      const t = createTelemetry({ service: def.name, registry, logger });
      telemetry[def.name] = t;
      const subgraph = await def.create({
        telemetry: t,
        store: options.store?.(def.name) ?? { sqlitePath: ':memory:' },
        seed: options.seed ?? undefined,
        pageMax: options.pageMax ?? 100,
        debug: options.debug ?? false,
        maskErrors: options.maskErrors ?? false,
        cacheStore: openCache(t),
        bus: await openBus(t),
        limits: options.limits,
        maxResponseBytes: options.maxResponseBytes,
        cost: options.cost === false ? false : options.cost && { maxCost: options.cost.maxCost, defaultListSize: options.cost.defaultListSize },
      });
      started.push(subgraph);
      const running: RunningServer = await subgraph.listen(portFor(options.ports, def.name, def.port), host);
      subgraphs[def.name] = subgraph;
      subgraphUrls[def.name] = `http://127.0.0.1:${running.port}/graphql`;
    }
    telemetry.gateway = createTelemetry({ service: 'gateway', registry, logger });
    const gateway = await createGateway({
      telemetry: telemetry.gateway,
      supergraph: options.supergraph ?? { path: join(REPO_ROOT, 'supergraph.graphql') },
      subgraphUrlOverrides: subgraphUrls,
      introspection: options.introspection ?? true,
      explorer: options.explorer ?? true,
      debug: options.debug ?? false,
      maskErrors: options.maskErrors ?? false,
      cacheStore: openCache(telemetry.gateway),
      bus: await openBus(telemetry.gateway),
      layers: options.layers ?? {},
      entityCache: options.entityCache ?? true,
      responseCache: options.responseCache ?? true,
      trustedDocuments: options.trustedDocuments,
      limits: options.limits,
      cost: options.cost,
      maxResponseBytes: options.maxResponseBytes,
      subgraphTimeoutMs: options.subgraphTimeoutMs,
    });
    started.push(gateway);
    const running = await gateway.listen(options.ports?.gateway ?? 4000, host);
    return {
      gatewayUrl: `${running.url}/graphql`,
      subgraphUrls,
      registry,
      telemetry,
      gateway,
      subgraphs,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

export * from './services';
