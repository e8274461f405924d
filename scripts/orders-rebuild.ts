// `npm run orders:rebuild`: drops orders' read models (order_view, customer_orders) and rebuilds
// them from event zero, in one transaction, then prints what it replayed. It opens orders' own
// store the way the service does: ORDERS_DATABASE_URL (services mode) or the SQLite file under
// DATA_DIR (embedded). Safe while the service runs: readers see the old models until it commits.
import { loadSubgraphConfig } from '@shop/config';
import { openOrdersRepository } from '@shop/orders';
import { runMain } from '@shop/server';
import { redact, sqliteFileFor } from '@shop/store';
import { createTelemetry } from '@shop/telemetry';

runMain(async () => {
  const config = loadSubgraphConfig('orders', 4005);
  const telemetry = createTelemetry({ service: 'orders', logLevel: config.logLevel });
  const store = config.databaseUrl ? { postgresUrl: config.databaseUrl } : { sqlitePath: sqliteFileFor(config.dataDir, 'orders') };
  const repository = await openOrdersRepository({ telemetry, store });
  const { orders } = repository;
  try {
    const report = await orders.rebuild();
    const where = config.databaseUrl ? redact(config.databaseUrl) : store.sqlitePath;
    process.stdout.write(
      `rebuilt orders' read models from ${report.events} events (position ${report.position}) in ${report.ms} ms: ${where}\n`,
    );
  } finally {
    await repository.close();
  }
  process.exit(0);
});
