import { join } from 'node:path';
import { loadSubgraphConfig } from '@shop/config';
import { runMain } from '@shop/server';
import { createTelemetry } from '@shop/telemetry';
import { createInventory } from './server';

runMain(async () => {
  const config = loadSubgraphConfig('inventory', 4003);
  const telemetry = createTelemetry({ service: config.service, logLevel: config.logLevel, processMetrics: true });
  const subgraph = await createInventory({
    telemetry,
    store: config.databaseUrl
      ? { postgresUrl: config.databaseUrl }
      : { sqlitePath: join(config.dataDir, config.service, `${config.service}.sqlite`) },
    seed: config.seed,
    debug: config.nodeEnv !== 'production',
  });
  await subgraph.listen(config.port, config.host);
  return { stoppable: subgraph, logger: telemetry.logger };
});
