// The gateway process (index.ts loads it after tracing starts): config from the environment, the
// factory, a port. runMain owns the rest: SIGINT/SIGTERM drain in-flight requests and stop; a
// start-up failure (ConfigError, a supergraph that cannot be read or composed, a port in use)
// prints its message and exits non-zero.
import { runMain } from '@shop/server';
import { createTelemetry } from '@shop/telemetry';
import { gatewayOptionsFromConfig, loadGatewayConfig, openGatewayCacheStore } from './config';
import { connectAmqpBus } from '@shop/events';
import { createGateway } from './gateway';

runMain(async () => {
  const config = loadGatewayConfig();
  const telemetry = createTelemetry({ service: 'gateway', logLevel: config.logLevel, processMetrics: true });
  const cacheStore = openGatewayCacheStore(config, telemetry);
  const bus = config.amqpUrl
    ? await connectAmqpBus({ url: config.amqpUrl, service: 'gateway', telemetry, namespace: config.amqpNamespace })
    : undefined;
  const release = async () => {
    await bus?.close();
    await cacheStore?.close();
  };
  const gateway = await createGateway(gatewayOptionsFromConfig(config, { telemetry, cacheStore, bus }));
  try {
    const running = await gateway.listen(config.port, config.host);
    const explorer = config.explorer ? `${running.url}/explorer` : undefined;
    telemetry.logger.info({ url: `${running.url}/graphql`, explorer, supergraph: config.supergraph }, 'gateway listening');
  } catch (err) {
    // Release the watchers and Apollo before runMain exits on the error.
    await gateway.stop();
    await release();
    throw err;
  }
  const stoppable = {
    async stop() {
      await gateway.stop();
      await release();
    },
  };
  return { stoppable, logger: telemetry.logger };
});
