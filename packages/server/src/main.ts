import { type CacheStore, openCacheStore } from '@shop/cache';
import { type SubgraphConfig, loadSubgraphConfig } from '@shop/config';
import { type Bus, connectAmqpBus } from '@shop/events';
import { sqliteFileFor } from '@shop/store';
import { type Logger, type Telemetry, createTelemetry } from '@shop/telemetry';
import { shutdownTracing } from '@shop/tracing';
import type { SubgraphFactoryOptions } from './service';
import type { Subgraph } from './subgraph';

/** Something `runMain` can stop on a signal. */
export interface Stoppable {
  stop(): Promise<void>;
}

/**
 * The shape of every `index.ts`: start, then stop gracefully on SIGINT/SIGTERM (in-flight
 * requests drain). A start-up failure prints its message and exits non-zero.
 */
export function runMain(start: () => Promise<{ stoppable: Stoppable; logger: Logger }>): void {
  start().then(
    ({ stoppable, logger }) => {
      let stopping = false;
      const shutdown = (signal: string) => {
        if (stopping) {
          logger.warn({ signal }, 'second signal: exiting now');
          process.exit(130);
        }
        stopping = true;
        logger.info({ signal }, 'shutting down');
        // The spans of the drain are the last ones: exported after it, before the exit.
        void stoppable
          .stop()
          .then(
            () => 0,
            (err: unknown) => {
              logger.error({ err }, 'shutdown failed');
              return 1;
            },
          )
          .then(async (code) => {
            await shutdownTracing().catch(() => undefined);
            process.exit(code);
          });
      };
      process.on('SIGINT', () => shutdown('SIGINT'));
      process.on('SIGTERM', () => shutdown('SIGTERM'));
    },
    (err: unknown) => {
      process.stderr.write(`Start-up failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}

/** What {@link subgraphOptionsFromConfig} cannot make from settings: the process's runtime pieces. */
export interface SubgraphDeps {
  telemetry: Telemetry;
  /** From {@link openSubgraphCacheStore}; `undefined`: hot reads always go to the store. */
  cacheStore: CacheStore | undefined;
  /** RabbitMQ (`AMQP_URL`) or the embedded mode's in-process bus; `undefined`: events wait in the outbox. */
  bus: Bus | undefined;
}

/**
 * The hot-read cache store as the config asks: none with `HOT_CACHE=false`, Redis with
 * `REDIS_URL`, a bounded LRU otherwise, every call limited by `CACHE_TIMEOUT_MS`. The caller closes it.
 */
export function openSubgraphCacheStore(
  config: Pick<SubgraphConfig, 'hotCache' | 'redisUrl'>,
  telemetry: Telemetry,
): CacheStore | undefined {
  if (!config.hotCache.enabled) return undefined;
  return openCacheStore({ telemetry, redisUrl: config.redisUrl, timeoutMs: config.hotCache.timeoutMs });
}

/**
 * The one mapping from a subgraph's settings to its factory's options: `runSubgraph` (each
 * subgraph's `index.ts`, the services mode) and the embedded mode's `startStack` both call it, so
 * every variable means the same in both. The store is `<SERVICE>_DATABASE_URL` when set, else the
 * SQLite file under `DATA_DIR`. Port and host are not factory options: the caller listens on
 * `config.port` and `config.host`.
 */
export function subgraphOptionsFromConfig(config: SubgraphConfig, deps: SubgraphDeps): SubgraphFactoryOptions {
  return {
    telemetry: deps.telemetry,
    cacheStore: deps.cacheStore,
    bus: deps.bus,
    store: config.databaseUrl ? { postgresUrl: config.databaseUrl } : { sqlitePath: sqliteFileFor(config.dataDir, config.service) },
    seed: config.seed,
    pageMax: config.pageMax,
    // The gateway's rule: details in development, masked in production, neither in between (test).
    debug: config.nodeEnv === 'development',
    maskErrors: config.nodeEnv === 'production',
    hotCacheTtlMs: config.hotCache.ttlMs,
    limits: config.limits.document,
    maxResponseBytes: config.limits.responseBytes,
    cost: config.limits.cost,
    loadShedding: config.limits.shedding,
  };
}

/**
 * A subgraph's whole `index.ts`: read its config (`<SERVICE>_PORT`, `<SERVICE>_DATABASE_URL`, the
 * shared settings), build it on PostgreSQL when a database URL is set or on its SQLite file
 * otherwise, listen, and stop gracefully on a signal.
 */
export function runSubgraph(service: string, defaultPort: number, create: (options: SubgraphFactoryOptions) => Promise<Subgraph>): void {
  runMain(async () => {
    const config = loadSubgraphConfig(service, defaultPort);
    // A subgraph answers `_entities`, `_service` and every mutation to whoever reaches it: as a
    // process of its own it must be told whom to trust, or it does not start.
    if (!config.subgraphSecret && !config.allowUnsigned) {
      throw new Error(
        `SUBGRAPH_SECRET is not set: ${service} answers only requests the gateway signed with it (give the gateway and every subgraph the same value, e.g. openssl rand -hex 32)`,
      );
    }
    const telemetry = createTelemetry({ service, logLevel: config.logLevel, processMetrics: true });
    if (config.allowUnsigned) {
      telemetry.logger.warn(
        config.subgraphSecret
          ? 'SUBGRAPH_ALLOW_UNSIGNED: answering unsigned requests as anonymous (signed ones are checked)'
          : 'SUBGRAPH_ALLOW_UNSIGNED: answering requests from anyone, as anonymous',
      );
    }
    const cacheStore = openSubgraphCacheStore(config, telemetry);
    // Without a broker, events wait in the outbox (nothing is lost) until a run with AMQP_URL.
    const bus = config.amqpUrl
      ? await connectAmqpBus({ url: config.amqpUrl, service, telemetry, namespace: config.amqpNamespace })
      : undefined;
    if (!bus) telemetry.logger.warn('AMQP_URL is not set: events stay in the outbox and nothing is consumed');
    const subgraph = await create(subgraphOptionsFromConfig(config, { telemetry, cacheStore, bus }));
    await subgraph.listen(config.port, config.host, {
      gatewaySecret: config.subgraphSecret,
      allowUnsigned: config.allowUnsigned,
      drainDelayMs: config.drainDelayMs,
    });
    const stoppable = {
      async stop() {
        await subgraph.stop();
        await bus?.close();
        await cacheStore?.close();
      },
    };
    return { stoppable, logger: telemetry.logger };
  });
}
