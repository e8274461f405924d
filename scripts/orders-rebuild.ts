// `npm run orders:rebuild [-- --shard <id>]`: drops orders' read models (order_view,
// customer_orders, checkout_view) and rebuilds them from event zero, in one transaction per
// shard, then prints what it replayed. Every shard the slot map names, or only the one given
// (s0, s1...). It opens the first shard the way the service does: ORDERS_DATABASE_URL (services
// mode) or the SQLite file under DATA_DIR (embedded); the map there names the others. Safe while
// the service runs: readers see the old models until each shard commits.
import { loadShardingConfig, loadSubgraphConfig } from '@shop/config';
import { openOrdersShards } from '@shop/orders';
import { redact, sqliteFileFor } from '@shop/store';
import { createTelemetry } from '@shop/telemetry';
import { UsageError, parseCli, runCli } from './lib/cli';

const USAGE = 'usage: npm run orders:rebuild [-- --shard <id>]';

async function main(argv: string[]): Promise<number> {
  const { values } = parseCli(USAGE, { args: argv, options: { shard: { type: 'string' } } });
  const config = loadSubgraphConfig('orders', 4005);
  const telemetry = createTelemetry({ service: 'orders', logLevel: config.logLevel });
  const store = config.databaseUrl ? { postgresUrl: config.databaseUrl } : { sqlitePath: sqliteFileFor(config.dataDir, 'orders') };
  const opened = await openOrdersShards({ telemetry, store, slotMap: loadShardingConfig().slotMap });
  try {
    const chosen = values.shard === undefined ? opened.shards : opened.shards.filter((s) => s.id === values.shard);
    if (chosen.length === 0)
      throw new UsageError(`no shard ${JSON.stringify(values.shard)}: the map has ${opened.shards.map((s) => s.id).join(', ')}\n${USAGE}`);
    for (const shard of chosen) {
      const report = await shard.orders.rebuild();
      const where = /^postgres/.test(shard.location) ? redact(shard.location) : shard.location;
      process.stdout.write(
        `rebuilt orders' read models of shard ${shard.id} from ${report.events} events (position ${report.position}) in ${report.ms} ms: ${where}\n`,
      );
    }
  } finally {
    await opened.close();
  }
  return 0;
}

runCli('orders:rebuild', main, { exit: true });
