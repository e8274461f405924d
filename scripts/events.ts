// `npm run events -- <command>`: operate the event bus of the services mode (RabbitMQ + each
// service's PostgreSQL outbox).
//
//   npm run events -- dead-letters <group> [--json]          a consumer group's dead letters, oldest
//                                                            first (a peek: they stay where they are)
//   npm run events -- redrive <group> [--id <event id>]...   send them back to the group's queue after
//                                                            a fix: all, or only the ids given
//   npm run events -- replay <service> --from <position>     republish a service's events from an
//                                                            outbox position (a new consumer, a rebuilt
//                                                            projection); consumers that have them already
//                                                            skip them through their inbox
//   npm run events -- outbox <service> [--json]              the outbox's positions, pending rows and
//                                                            the service's inbox count
//
// A group is the consuming service (accounts, products, inventory, reviews, orders, payments, gateway). Reads
// AMQP_URL (default amqp://guest:guest@127.0.0.1:5672, as `npm run start:services`),
// AMQP_NAMESPACE (default shop) and <SERVICE>_DATABASE_URL (default
// postgres://postgres@127.0.0.1:5432/shop_<service>). Exit code: 0 done, 1 failed, 2 usage error.
import { UsageError, parseCli, runCli } from './lib/cli';
import pg from 'pg';
import pino from 'pino';
import { commonSubgraphEnv, loadConfig, optionalUrl, z } from '@shop/config';
import { type BusDeadLetter, OutboxRelay, connectAmqpBus, outboxStatus } from '@shop/events';
import { openStore, redact } from '@shop/store';
import { createTelemetry } from '@shop/telemetry';

const USAGE = `usage: npm run events -- dead-letters <group> [--json]
       npm run events -- redrive <group> [--id <event id>]... [--json]
       npm run events -- replay <service> --from <position> [--json]
       npm run events -- outbox <service> [--json]`;

const NAME = /^[a-z][a-z0-9_-]{0,62}$/;

/** The environment this CLI reads, validated once (a bad variable fails naming it). */
function readConfig(service: string | undefined) {
  const dbVar = service ? `${service.toUpperCase()}_DATABASE_URL` : undefined;
  const raw = loadConfig(
    z.object({
      AMQP_URL: optionalUrl('amqp', 'amqps'),
      AMQP_NAMESPACE: commonSubgraphEnv.AMQP_NAMESPACE,
      // Quieter than a service: only problems go to stderr, the answer to stdout.
      LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('warn'),
      ...(dbVar ? { [dbVar]: optionalUrl('postgres', 'postgresql') } : {}),
    }),
  ) as { AMQP_URL: string | undefined; AMQP_NAMESPACE: string; LOG_LEVEL: string } & Record<string, string | undefined>;
  return {
    amqpUrl: raw.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
    namespace: raw.AMQP_NAMESPACE,
    logLevel: raw.LOG_LEVEL,
    databaseUrl: dbVar ? (raw[dbVar] ?? `postgres://postgres@127.0.0.1:5432/shop_${service}`) : undefined,
  };
}

/** Fails when the database does not exist: opening the store would create an empty one. */
async function assertDatabaseExists(url: string, service: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
    const found = await client.query<{ t: string | null }>("select to_regclass('outbox')::text as t");
    if (!found.rows[0]?.t) throw new Error(`${redact(url)} has no outbox table: is it ${service}'s database?`);
  } catch (err) {
    if ((err as { code?: string }).code === '3D000')
      throw new Error(`the database of ${service} does not exist: ${redact(url)} (set ${service.toUpperCase()}_DATABASE_URL)`);
    throw err;
  } finally {
    await client.end().catch(() => undefined);
  }
}

function formatDeadLetters(group: string, dead: BusDeadLetter[]): string {
  const lines = [`${dead.length} dead letter(s) in group ${group}`];
  for (const d of dead) {
    const e = d.event;
    lines.push(`  ${e.id || '(no id)'}  ${e.type}  ${e.aggregateId || '-'} v${e.aggregateVersion}  attempts ${d.attempts}  ${d.deadAt}`);
    lines.push(`      ${d.error}${d.raw !== undefined ? `  raw: ${d.raw.slice(0, 200)}` : ''}`);
  }
  return `${lines.join('\n')}\n`;
}

async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(USAGE, {
    args: argv,
    allowPositionals: true,
    options: {
      id: { type: 'string', multiple: true },
      from: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const usageError = (message: string) => new UsageError(`${message}\n${USAGE}`);
  const [command, name, ...rest] = positionals;
  if (!command || !name || rest.length > 0) throw usageError('expected a command and a group or service name');
  if (!NAME.test(name)) throw usageError(`not a service or group name: ${JSON.stringify(name)}`);
  if (!['dead-letters', 'redrive', 'replay', 'outbox'].includes(command)) throw usageError(`unknown command ${JSON.stringify(command)}`);
  if (values.id && command !== 'redrive') throw usageError('--id goes with redrive');
  if (values.from !== undefined && command !== 'replay') throw usageError('--from goes with replay');
  let from = 0;
  if (command === 'replay') {
    if (values.from === undefined || !/^\d+$/.test(values.from))
      throw usageError('replay needs --from <position> (an integer >= 0; `outbox <service>` shows the positions)');
    from = Number(values.from);
  }

  const usesStore = command === 'replay' || command === 'outbox';
  const config = readConfig(usesStore ? name : undefined);
  const telemetry = createTelemetry({ service: name, logger: pino({ level: config.logLevel }, pino.destination(2)) });
  const print = (json: unknown, text: string) => process.stdout.write(values.json ? `${JSON.stringify(json, null, 2)}\n` : text);

  if (command === 'outbox') {
    const url = config.databaseUrl as string;
    await assertDatabaseExists(url, name);
    const store = await openStore<unknown>({ service: name, telemetry, postgresUrl: url, poolSize: 1 });
    try {
      const status = await outboxStatus(store);
      print(
        status,
        `${name}: ${status.events} event(s) at positions ${status.first ?? '-'}..${status.last ?? '-'}, ${status.pending} pending; ${status.applied} applied from others (inbox)\n`,
      );
    } finally {
      await store.close();
    }
    return 0;
  }

  const bus = await connectAmqpBus({
    url: config.amqpUrl,
    service: `events-cli:${name}`,
    telemetry,
    namespace: config.namespace,
    connectTimeoutMs: 5000,
  });
  try {
    if (command === 'dead-letters') {
      const dead = (await bus.deadLetters(name)) as BusDeadLetter[];
      print(dead, formatDeadLetters(name, dead));
    } else if (command === 'redrive') {
      const redriven = await bus.redrive(name, values.id ? { ids: values.id } : undefined);
      print({ group: name, redriven }, `${redriven} dead letter(s) of ${name} sent back to ${bus.names.queue(name)}\n`);
    } else {
      const url = config.databaseUrl as string;
      await assertDatabaseExists(url, name);
      const store = await openStore<unknown>({ service: name, telemetry, postgresUrl: url, poolSize: 1 });
      try {
        const relay = new OutboxRelay({ store, bus, telemetry });
        const replayed = await relay.replayFrom(from);
        print({ service: name, from, replayed }, `${replayed} event(s) of ${name} republished from position ${from}\n`);
      } finally {
        await store.close();
      }
    }
  } finally {
    await bus.close();
  }
  return 0;
}

runCli('events', run, { exit: true });
