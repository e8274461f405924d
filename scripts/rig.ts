// `npm run rig`: the multi-host rig's scenario (stack/src/rig.ts), as test/rig.e2e.test.ts runs
// it, printing what clients saw. Needs root, iproute2, HAProxy, and PostgreSQL, Redis and
// RabbitMQ on this machine (TEST_POSTGRES_URL, TEST_REDIS_URL, TEST_AMQP_URL override them).
//
//   npm run rig                                   run it, print the report
//   npm run rig -- --write docs/deployment.md     and put the report between the file's
//                                                 <!-- rig:start --> and <!-- rig:end --> markers
import { parseCli, runCli, writeBetweenMarkers } from './lib/cli';
import { formatRigReport, rigRollout, runRigScenario, startRig } from '@shop/stack';
import { requireService, services, tempPostgres } from '@shop/testing';

const USAGE = 'usage: npm run rig -- [--write <file>]';

async function main(argv: string[]): Promise<number> {
  const { values } = parseCli(USAGE, { args: argv, options: { write: { type: 'string' } } });
  await Promise.all([requireService('postgres'), requireService('redis'), requireService('amqp')]);
  const databases = new Map(
    ['accounts', 'products', 'inventory', 'reviews', 'orders', 'payments'].map((s) => [s, tempPostgres(`rig_${s}`)]),
  );
  const { previous, next } = rigRollout();
  try {
    const rig = await startRig({
      databaseUrl: (name) => databases.get(name)?.url ?? '',
      redisUrl: services.redis,
      amqpUrl: services.amqp,
      supergraphConfig: previous.file,
    });
    let report;
    try {
      report = await runRigScenario(rig, next);
    } finally {
      await rig.close();
    }
    const text = formatRigReport(report);
    process.stdout.write(`${text}\n`);
    if (values.write) process.stdout.write(`written to ${await writeBetweenMarkers(values.write, 'rig', text)}\n`);
    return report.totalErrors === 0 && report.brokenPublishRefused ? 0 : 1;
  } finally {
    previous.remove();
    await Promise.all([...databases.values()].map((db) => db.drop()));
  }
}

runCli('rig', main, { exit: true });
