// `npm run start:services`: the production shape on one machine. Each subgraph runs as its own
// process on its own PostgreSQL database (<SERVICE>_DATABASE_URL, default
// postgres://postgres@127.0.0.1:5432/shop_<service>, created when missing), then the gateway.
import { SUBGRAPHS, startServices } from '@shop/stack';

async function main() {
  const services = await startServices();
  process.stdout.write(
    [
      '',
      'Federated shop is up (services mode: one process per service, PostgreSQL)',
      `  gateway    ${services.gatewayUrl}`,
      ...SUBGRAPHS.map((s) => `  ${s.name.padEnd(10)} ${services.subgraphUrls[s.name]}`),
      '',
    ].join('\n'),
  );
  let stopping = false;
  const shutdown = () => {
    if (stopping) return;
    stopping = true;
    void services.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

main().catch((err: unknown) => {
  process.stderr.write(`Start-up failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
