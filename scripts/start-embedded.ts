// `npm start`: the whole platform in one process (the embedded mode). Every subgraph gets its own
// SQLite file under DATA_DIR (default .data/<service>/), seeded on first start; the gateway serves
// the committed supergraph with routing URLs pointed at the local ports.
import pino from 'pino';
import { loadSubgraphConfig } from '@shop/config';
import { loadGatewayConfig } from '@shop/gateway/src/config';
import { runMain } from '@shop/server';
import { SUBGRAPHS, type SubgraphName, sqliteUnder, startStack } from '@shop/stack';

runMain(async () => {
  const started = Date.now();
  const gatewayConfig = loadGatewayConfig();
  const configs = Object.fromEntries(SUBGRAPHS.map((s) => [s.name, loadSubgraphConfig(s.name, s.port)])) as Record<
    SubgraphName,
    ReturnType<typeof loadSubgraphConfig>
  >;
  const shared = configs.accounts;
  const logger = pino({ level: gatewayConfig.logLevel });
  const stack = await startStack({
    host: gatewayConfig.host,
    ports: {
      gateway: gatewayConfig.port,
      ...Object.fromEntries(SUBGRAPHS.map((s) => [s.name, configs[s.name].port])),
    },
    store: sqliteUnder(shared.dataDir),
    seed: shared.seed,
    pageMax: shared.pageMax,
    supergraph: gatewayConfig.supergraph,
    cache: !gatewayConfig.layers.cache ? false : gatewayConfig.redisUrl ? { kind: 'redis', url: gatewayConfig.redisUrl } : { kind: 'memory' },
    layers: { dedupe: gatewayConfig.layers.dedupe, merge: gatewayConfig.layers.merge, inflight: gatewayConfig.layers.inflight },
    entityCache: gatewayConfig.layers.entityCache,
    responseCache: gatewayConfig.layers.responseCache,
    logger,
    processMetrics: true,
    introspection: gatewayConfig.introspection,
    trustedDocuments: gatewayConfig.trustedDocuments,
    explorer: gatewayConfig.explorer,
    debug: gatewayConfig.nodeEnv === 'development',
    maskErrors: gatewayConfig.nodeEnv === 'production',
    limits: gatewayConfig.limits.document,
    cost: gatewayConfig.cost,
    maxResponseBytes: gatewayConfig.limits.responseBytes,
    subgraphTimeoutMs: gatewayConfig.subgraphTimeoutMs,
  });
  const gatewayBase = stack.gatewayUrl.replace(/\/graphql$/, '');
  const lines = [
    '',
    `Federated shop is up (embedded mode, ${((Date.now() - started) / 1000).toFixed(1)} s, data in ${shared.dataDir}/)`,
    `  gateway    ${stack.gatewayUrl}`,
    ...(gatewayConfig.explorer ? [`  explorer   ${gatewayBase}/explorer`] : []),
    `  metrics    ${gatewayBase}/metrics   health ${gatewayBase}/health   ready ${gatewayBase}/ready`,
    ...SUBGRAPHS.map((s) => `  ${s.name.padEnd(10)} ${stack.subgraphUrls[s.name]}`),
    '',
    'Press Ctrl-C to stop (in-flight requests finish first).',
    '',
  ];
  process.stdout.write(lines.join('\n'));
  return { stoppable: stack, logger };
});
