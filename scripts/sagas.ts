// `npm run sagas`: the checkout sagas in orders' store, for an operator. It opens the store the way
// the service does: ORDERS_DATABASE_URL (services mode) or the SQLite file under DATA_DIR.
//
//   npm run sagas -- stuck [--grace-ms 0] [--json]   open checkouts whose step is past its deadline
//   npm run sagas -- open [--json]                   every checkout not finished
//   npm run sagas -- show <checkout id> [--json]     one checkout: its state and every event
//
// "Stuck" means the step's deadline passed `--grace-ms` ago or more and no decision followed: the
// orders process that would retry it is down, or its sweeper is failing. Running orders again
// resumes every one of them (the deadlines are in the store).
// Exit code: 0 listed (stuck: none found), 1 failed or stuck sagas found, 2 usage error.
import { loadShardingConfig, loadSubgraphConfig } from '@shop/config';
import { type CheckoutView, openOrdersShards } from '@shop/orders';
import { redact, sqliteFileFor } from '@shop/store';
import { createTelemetry } from '@shop/telemetry';
import { UsageError, parseCli, runCli } from './lib/cli';

const USAGE = 'usage: npm run sagas -- stuck [--grace-ms <ms>] [--json] | open [--json] | show <checkout id> [--json]';

const line = (c: CheckoutView, now: number) => {
  const step = c.steps.at(-1);
  const late = c.deadline ? Math.round((now - Date.parse(c.deadline)) / 1000) : 0;
  const where = step ? `${step.name} (attempt ${step.attempts})` : '-';
  return `  ${c.id}  order ${c.orderId}  ${c.status}  at ${where}  deadline ${c.deadline ?? '-'}${late > 0 ? ` (${late} s ago)` : ''}`;
};

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(USAGE, {
    args: argv,
    allowPositionals: true,
    options: { json: { type: 'boolean' }, 'grace-ms': { type: 'string' } },
  });
  const [command, id, ...extra] = positionals;
  if (extra.length > 0 || command === undefined || !['stuck', 'open', 'show'].includes(command)) throw new UsageError(USAGE);
  if ((command === 'show') !== (id !== undefined)) throw new UsageError(USAGE);
  const grace = Number(values['grace-ms'] ?? '0');
  if (!Number.isInteger(grace) || grace < 0) throw new UsageError(`--grace-ms must be a whole number of milliseconds\n${USAGE}`);

  const config = loadSubgraphConfig('orders', 4005);
  const telemetry = createTelemetry({ service: 'orders', logLevel: 'warn' });
  const store = config.databaseUrl ? { postgresUrl: config.databaseUrl } : { sqlitePath: sqliteFileFor(config.dataDir, 'orders') };
  // Every shard the slot map names (the map lives in the first shard's store).
  const repository = await openOrdersShards({ telemetry, store, slotMap: loadShardingConfig().slotMap });
  const { shards } = repository;
  const where = `${shards.length} shard(s) from ${config.databaseUrl ? redact(config.databaseUrl) : store.sqlitePath}`;
  const now = Date.now();
  try {
    if (command === 'show') {
      let found: { checkout: CheckoutView; shard: (typeof shards)[number] } | undefined;
      for (const shard of shards) {
        const checkout = await shard.orders.checkoutById(id!);
        if (checkout) found = { checkout, shard };
      }
      if (!found) throw new Error(`no checkout ${JSON.stringify(id)} in ${where}`);
      const { checkout } = found;
      const events = await found.shard.orders.events.readStream(`checkout:${id!}`);
      if (values.json) process.stdout.write(`${JSON.stringify({ checkout, events }, null, 2)}\n`);
      else {
        process.stdout.write(`${line(checkout, now)}\n`);
        for (const e of events) process.stdout.write(`    v${e.version} ${e.recordedAt} ${e.type} ${JSON.stringify(e.data)}\n`);
      }
      return 0;
    }
    const open = (await Promise.all(shards.map((s) => s.orders.openCheckouts())))
      .flat()
      .sort((a, b) => (a.startedAt < b.startedAt ? -1 : 1));
    const listed = command === 'open' ? open : open.filter((c) => c.deadline !== null && Date.parse(c.deadline) + grace <= now);
    if (values.json) process.stdout.write(`${JSON.stringify(listed, null, 2)}\n`);
    else {
      process.stdout.write(`${listed.length} ${command === 'open' ? 'open' : 'stuck'} checkout(s) in ${where}\n`);
      for (const c of listed) process.stdout.write(`${line(c, now)}\n`);
    }
    return command === 'stuck' && listed.length > 0 ? 1 : 0;
  } finally {
    await repository.close();
  }
}

runCli('sagas', main, { exit: true });
