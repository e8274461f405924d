import { openCacheStore } from '@shop/cache';
import { loadSubgraphConfig } from '@shop/config';
import { connectAmqpBus } from '@shop/events';
import { sqliteFileFor } from '@shop/store';
import { type Logger, createTelemetry } from '@shop/telemetry';
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
        stoppable.stop().then(
          () => process.exit(0),
          (err: unknown) => {
            logger.error({ err }, 'shutdown failed');
            process.exit(1);
          },
        );
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

/**
 * A subgraph's whole `index.ts`: read its config (`<SERVICE>_PORT`, `<SERVICE>_DATABASE_URL`, the
 * shared settings), build it on PostgreSQL when a database URL is set or on its SQLite file
 * otherwise, listen, and stop gracefully on a signal.
 */
export function runSubgraph(service: string, defaultPort: number, create: (options: SubgraphFactoryOptions) => Promise<Subgraph>): void {
  runMain(async () => {
    const config = loadSubgraphConfig(service, defaultPort);
    const telemetry = createTelemetry({ service, logLevel: config.logLevel, processMetrics: true });
    const cacheStore = config.hotCache.enabled
      ? openCacheStore({ telemetry, redisUrl: config.redisUrl, timeoutMs: config.hotCache.timeoutMs })
      : undefined;
    // Without a broker, events wait in the outbox (nothing is lost) until a run with AMQP_URL.
    const bus = config.amqpUrl ? await connectAmqpBus({ url: config.amqpUrl, service, telemetry, namespace: config.amqpNamespace }) : undefined;
    if (!bus) telemetry.logger.warn('AMQP_URL is not set: events stay in the outbox and nothing is consumed');
    const subgraph = await create({
      telemetry,
      store: config.databaseUrl ? { postgresUrl: config.databaseUrl } : { sqlitePath: sqliteFileFor(config.dataDir, service) },
      seed: config.seed,
      pageMax: config.pageMax,
      debug: config.nodeEnv !== 'production',
      maskErrors: config.nodeEnv === 'production',
      cacheStore,
      hotCacheTtlMs: config.hotCache.ttlMs,
      bus,
      limits: config.limits.document,
      maxResponseBytes: config.limits.responseBytes,
      cost: config.limits.cost,
    });
    await subgraph.listen(config.port, config.host);
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
