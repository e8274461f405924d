import { join } from 'node:path';
import { loadSubgraphConfig } from '@shop/config';
import { runMain } from '@shop/server';
import { createTelemetry } from '@shop/telemetry';
import { createProducts } from './server';

runMain(async () => {
  const config = loadSubgraphConfig('products', 4002);
  const telemetry = createTelemetry({ service: config.service, logLevel: config.logLevel, processMetrics: true });
  const subgraph = await createProducts({
    telemetry,
    store: config.databaseUrl
      ? { postgresUrl: config.databaseUrl }
      : { sqlitePath: join(config.dataDir, config.service, `${config.service}.sqlite`) },
    seed: config.seed,
    pageMax: config.pageMax,
    debug: config.nodeEnv !== 'production',
  });
  await subgraph.listen(config.port, config.host);
  return { stoppable: subgraph, logger: telemetry.logger };
});
