// `npm start`: the whole platform in one process (the embedded mode). The stack reads the
// environment through the same mappings as the services mode, so every variable of the README's
// table applies. Every subgraph gets its own SQLite file under DATA_DIR (default
// .data/<service>/), seeded on first start, unless <SERVICE>_DATABASE_URL names a PostgreSQL
// database; the gateway serves the committed supergraph with routing URLs pointed at the stack's
// own subgraphs (SUBGRAPH_<NAME>_URL sends it elsewhere).
//
// Tracing starts first (when OTEL_* asks for it), before the modules it instruments load; in this
// mode every subgraph shares the process's service.name and its spans carry shop.service.
import { startTraced } from '@shop/tracing';

startTraced('shop-embedded', async () => {
  const [{ runMain }, { SUBGRAPHS, startStack }] = await Promise.all([import('@shop/server'), import('@shop/stack')]);
  runMain(async () => {
    const started = Date.now();
    // On a terminal, readable log lines; piped or in a container, JSON lines.
    const stack = await startStack({ env: process.env, processMetrics: true, prettyLogs: process.stdout.isTTY === true });
    const { gateway: gatewayConfig, subgraphs: subgraphConfigs } = stack.config;
    const stores = SUBGRAPHS.some((s) => subgraphConfigs[s.name].databaseUrl)
      ? 'PostgreSQL and SQLite'
      : `data in ${subgraphConfigs.accounts.dataDir}/`;
    const gatewayBase = stack.gatewayUrl.replace(/\/graphql$/, '');
    const routed = stack.options.gateway.subgraphUrlOverrides ?? {};
    const lines = [
      '',
      `Federated shop is up (embedded mode, ${((Date.now() - started) / 1000).toFixed(1)} s, ${stores})`,
      `  gateway    ${stack.gatewayUrl}`,
      ...(gatewayConfig.explorer ? [`  explorer   ${gatewayBase}/explorer`] : []),
      `  metrics    ${gatewayBase}/metrics   health ${gatewayBase}/health   ready ${gatewayBase}/ready`,
      ...SUBGRAPHS.map((s) => {
        const route = routed[s.name.toUpperCase()];
        const elsewhere = route && route !== stack.subgraphUrls[s.name] ? `   (the gateway routes to ${route})` : '';
        return `  ${s.name.padEnd(10)} ${stack.subgraphUrls[s.name]}${elsewhere}`;
      }),
      '',
      'Press Ctrl-C to stop (in-flight requests finish first).',
      '',
    ];
    process.stdout.write(lines.join('\n'));
    return { stoppable: stack, logger: stack.telemetry.gateway.logger };
  });
});
