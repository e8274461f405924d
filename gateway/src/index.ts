// The gateway process: config from the environment, the factory, a port. runMain owns the rest:
// SIGINT/SIGTERM drain in-flight requests and stop; a start-up failure (ConfigError, a supergraph
// that cannot be read or composed, a port in use) prints its message and exits non-zero.
import { runMain } from '@shop/server';
import { createTelemetry } from '@shop/telemetry';
import { loadGatewayConfig } from './config';
import { connectAmqpBus } from '@shop/events';
import { cachingOptions, createGateway } from './gateway';

runMain(async () => {
  const config = loadGatewayConfig();
  const telemetry = createTelemetry({ service: 'gateway', logLevel: config.logLevel, processMetrics: true });
  const caching = cachingOptions(config, telemetry);
  const bus = config.amqpUrl ? await connectAmqpBus({ url: config.amqpUrl, service: 'gateway', telemetry }) : undefined;
  const gateway = await createGateway({
    telemetry,
    ...caching,
    bus,
    supergraph: config.supergraph,
    subgraphUrlOverrides: config.subgraphUrlOverrides,
    subgraphTimeoutMs: config.subgraphTimeoutMs,
    introspection: config.introspection,
    trustedDocuments: config.trustedDocuments,
    limits: config.limits.document,
    cost: config.cost,
    maxResponseBytes: config.limits.responseBytes,
    explorer: config.explorer,
    debug: config.nodeEnv === 'development',
    maskErrors: config.nodeEnv === 'production',
    watch: config.watch,
  });
  try {
    const running = await gateway.listen(config.port, config.host);
    const explorer = config.explorer ? `${running.url}/explorer` : undefined;
    telemetry.logger.info({ url: `${running.url}/graphql`, explorer, supergraph: config.supergraph }, 'gateway listening');
  } catch (err) {
    // Release the watchers and Apollo before runMain exits on the error.
    await gateway.stop();
    await bus?.close();
    await caching.cacheStore?.close();
    throw err;
  }
  const stoppable = {
    async stop() {
      await gateway.stop();
      await bus?.close();
      await caching.cacheStore?.close();
    },
  };
  return { stoppable, logger: telemetry.logger };
});
