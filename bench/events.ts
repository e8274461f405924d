// `npm run bench:events`: event propagation from a write to the projections it feeds, in the
// services mode (one process per service, PostgreSQL, RabbitMQ over loopback). Not a test.
//
//   npm run bench:events                          500 events/s for 15 s, then steps up to find the
//                                                 highest rate the consumers keep up with
//   npm run bench:events -- --quick               500 events/s for 5 s, no steps
//   npm run bench:events -- --rates 500,1000 --seconds 10
//   npm run bench:events -- --writer http         writes through products' GraphQL API instead
//
// products is the writer, at a fixed (open-loop) rate: each write commits a product and its
// ProductCreated in one transaction (ProductsRepository.create, what `createProduct` runs). By
// default (`--writer direct`) the bench process hosts products itself (its store, outbox relay and
// RabbitMQ connection, as its process would) and calls the repository, so the rate measures the
// event pipeline rather than GraphQL request handling; `--writer http` runs products as a process
// and sends `createProduct` mutations. inventory (a stock record) and reviews (its catalogue
// projection) are processes of their own and apply every event. Latency per event and consumer:
// the consumer's inbox row (written in the transaction that applies the event) minus the event's
// occurredAt (stamped in the writer's transaction, before its commit), so it covers commit, relay,
// broker and the apply itself; the consumers' own `event_propagation_seconds` histogram (observed
// after the apply commits) is read alongside as a cross-check. Writes bench/results/events-<time>.json.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { connect } from 'amqplib';
import { z } from 'zod';
import pg from 'pg';
import { type AmqpBus, connectAmqpBus } from '@shop/events';
import { createProducts } from '@shop/products';
import { ProductsRepository } from '@shop/products';
import { type Identity, type StoreSubgraph, gatewayHeaders } from '@shop/server';
import { REPO_ROOT, type Services, startServices } from '@shop/stack';
import { dropPostgresDatabase } from '@shop/testing';
import { createTelemetry } from '@shop/telemetry';
import pino from 'pino';
import { summarise as summariseLatency } from './lib/common';
import { parseOptionValues, runBench } from './lib/harness';
import { load1 } from './lib/sampling';

const CONSUMERS = ['inventory', 'reviews'] as const;
/** Who `--writer http` writes as: a caller whose token carries catalog:write, as the gateway would sign it. */
const CATALOGUE_WRITER: Identity = { sub: 'bench', roles: ['customer'], scopes: ['catalog:write'] };
type Consumer = (typeof CONSUMERS)[number];
const SERVICES = ['products', ...CONSUMERS] as const;
type Service = (typeof SERVICES)[number];

interface Latency {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

interface StageResult {
  targetRate: number;
  seconds: number;
  writes: number;
  writeErrors: number;
  /** Writes per second actually sent and committed (the writer may fall behind its schedule). */
  achievedRate: number;
  /** Every event applied by every consumer before the deadline. */
  complete: boolean;
  /** Per consumer: latency in ms (inbox row minus occurredAt) and the rate it applied events at. */
  consumers: Record<
    Consumer,
    { latencyMs: Latency; appliedRate: number; histogram: { le25ms: number; le50ms: number; le100ms: number; count: number } }
  >;
  /** Latency over both consumers' applications together. */
  allMs: Latency;
  /** Write to the relay's mark (after the broker confirmed): the outbox's share of the latency. */
  relayMs: Latency;
  /** The machine's 1-minute load average at the end of the stage (other work shares the cores). */
  loadAverage: number;
}

/** Nearest-rank percentiles (common.ts's), NaN where there is nothing to rank (JSON writes null) and a mean of 0. */
const summarise = (values: number[]): Latency =>
  values.length === 0
    ? { count: 0, p50: Number.NaN, p95: Number.NaN, p99: Number.NaN, max: Number.NaN, mean: 0 }
    : (summariseLatency(values) as Latency);

/** The `event_propagation_seconds` buckets of one consumer process. */
async function histogram(url: string, service: string): Promise<Record<string, number>> {
  const text = await (await fetch(url.replace(/graphql$/, 'metrics'))).text();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line.includes(`service="${service}"`)) continue;
    const bucket = /^event_propagation_seconds_bucket\{.*le="([^"]+)".*\} (\S+)$/.exec(line);
    if (bucket) out[bucket[1] as string] = Number(bucket[2]);
    const count = /^event_propagation_seconds_count\{.*\} (\S+)$/.exec(line);
    if (count) out.count = Number(count[1]);
  }
  return out;
}

const USAGE = 'usage: npm run bench:events -- [--quick] [--rates <n,n,...>] [--seconds <s>] [--step-seconds <s>] [--writer direct|http]';

const positive = z.coerce.number().positive().finite();
const Args = z.object({
  quick: z.boolean(),
  rates: z
    .string()
    .transform((v) => v.split(',').map(Number))
    .pipe(z.array(z.number().positive().finite()))
    .optional(),
  seconds: positive.optional(),
  'step-seconds': positive.default(8),
  writer: z.enum(['direct', 'http']),
});

function parseBenchArgs(argv: string[]) {
  const args = parseOptionValues(
    USAGE,
    argv,
    {
      quick: { type: 'boolean', default: false },
      rates: { type: 'string' },
      seconds: { type: 'string' },
      'step-seconds': { type: 'string' },
      writer: { type: 'string', default: 'direct' },
    },
    Args,
  );
  return {
    writer: args.writer,
    rates: args.rates ?? (args.quick ? [500] : [500, 1000, 1500, 2000, 3000, 4000]),
    firstSeconds: args.seconds ?? (args.quick ? 5 : 15),
    stepSeconds: args['step-seconds'],
  };
}

async function main(argv: string[]): Promise<void> {
  const { writer, rates, firstSeconds, stepSeconds } = parseBenchArgs(argv);

  const run = randomBytes(4).toString('hex');
  const namespace = `bench${run}`;
  const dbUrl = (s: Service) => `postgres://postgres@127.0.0.1:5432/bench_events_${s}_${run}`;
  const pools = Object.fromEntries(SERVICES.map((s) => [s, new pg.Pool({ connectionString: dbUrl(s), max: 2 })])) as Record<
    Service,
    pg.Pool
  >;
  let services: Services | undefined;
  let inProcess: { products: StoreSubgraph<unknown>; bus: AmqpBus } | undefined;
  const amqpUrl = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
  const cleanup = async () => {
    await inProcess?.products.stop();
    await inProcess?.bus.close();
    await services?.stop();
    await Promise.all(Object.values(pools).map((p) => p.end()));
    await Promise.all(SERVICES.map((s) => dropPostgresDatabase(dbUrl(s)).catch(() => undefined)));
    const conn = await connect(amqpUrl).catch(() => undefined);
    if (conn) {
      const ch = await conn.createChannel();
      for (const q of [...SERVICES, 'gateway']) {
        await ch.deleteQueue(`${namespace}.${q}`).catch(() => undefined);
        await ch.deleteQueue(`${namespace}.${q}.dlq`).catch(() => undefined);
      }
      await ch.deleteExchange(`${namespace}.events`).catch(() => undefined);
      await conn.close();
    }
  };
  process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));

  try {
    process.stderr.write(
      `starting ${writer === 'http' ? 'products, ' : ''}inventory and reviews (services mode, namespace ${namespace})...\n`,
    );
    services = await startServices({
      only: writer === 'http' ? SERVICES : CONSUMERS,
      gateway: false,
      ports: { products: 0, inventory: 0, reviews: 0 },
      databaseUrl: (name) => dbUrl(name as Service),
      env: {
        LOG_LEVEL: 'warn',
        AMQP_NAMESPACE: namespace,
        SEED_USERS: '10',
        SEED_PRODUCTS: '100',
        SEED_REVIEWS: '100',
        HOT_CACHE: 'false',
      },
      stdio: 'inherit',
    });
    const started = services;
    let create: (i: number) => Promise<boolean>;
    if (writer === 'direct') {
      const telemetry = createTelemetry({ service: 'products', logger: pino({ level: 'warn' }) });
      const bus = await connectAmqpBus({ url: amqpUrl, service: 'products', telemetry, namespace });
      const products = (await createProducts({
        telemetry,
        store: { postgresUrl: dbUrl('products') },
        seed: { users: 10, products: 100, reviews: 100 },
        bus,
      })) as StoreSubgraph<unknown>;
      inProcess = { products, bus };
      const repository = new ProductsRepository(products.store as never, { source: 'products', committed: () => products.relay?.kick() });
      create = (i) =>
        repository
          .create({ name: `Bench ${run} ${i}`, description: 'bench', price: 1000, weight: 500, category: 'bench' })
          .then(() => true);
    } else {
      const productsUrl = started.subgraphUrls.products;
      create = (i) =>
        fetch(productsUrl, {
          method: 'POST',
          // The subgraph answers only requests the gateway signed: signed with the run's secret, for a
          // caller with catalog:write (createProduct needs it).
          headers: {
            'content-type': 'application/json',
            ...gatewayHeaders(started.subgraphSecret, productsUrl, body(i), { identity: CATALOGUE_WRITER }),
          },
          body: body(i),
        }).then(async (res) => {
          const json = (await res.json()) as { errors?: unknown };
          return res.ok && !json.errors;
        });
    }
    const body = (i: number) =>
      JSON.stringify({
        query:
          'mutation($n: String!) { createProduct(input: { name: $n, description: "bench", price: 1000, weight: 500, category: "bench" }) { id } }',
        variables: { n: `Bench ${run} ${i}` },
      });
    let serial = 0;

    /** Sends `rate` writes a second for `seconds`, open loop: each on its schedule whatever the others do (at most 256 in flight). */
    const drive = async (rate: number, seconds: number) => {
      const total = Math.round(rate * seconds);
      const inflight = new Set<Promise<void>>();
      let errors = 0;
      const t0 = performance.now();
      for (let i = 0; i < total; i++) {
        const wait = t0 + (i * 1000) / rate - performance.now();
        if (wait >= 1) await delay(wait);
        if (inflight.size >= 256) await Promise.race(inflight);
        const p: Promise<void> = create(serial++)
          .then((ok) => void (ok || errors++))
          .catch(() => void errors++)
          .finally(() => inflight.delete(p));
        inflight.add(p);
      }
      await Promise.all(inflight);
      return { total, errors, seconds: (performance.now() - t0) / 1000 };
    };

    const lastPosition = async () =>
      Number((await pools.products.query<{ p: string | null }>('select max(position) as p from outbox')).rows[0]?.p ?? 0);

    const stage = async (rate: number, seconds: number): Promise<StageResult> => {
      const before = await lastPosition();
      const histBefore = Object.fromEntries(
        await Promise.all(CONSUMERS.map(async (c) => [c, await histogram(started.subgraphUrls[c], c)] as const)),
      ) as Record<Consumer, Record<string, number>>;
      const written = await drive(rate, seconds);
      const events = (
        await pools.products.query<{ id: string; occurred_at: string; published_at: string | null }>(
          'select id, occurred_at, published_at from outbox where position > $1 and type = $2',
          [before, 'ProductCreated'],
        )
      ).rows;
      const ids = events.map((e) => e.id);
      const occurred = new Map(events.map((e) => [e.id, Date.parse(e.occurred_at)]));
      // Wait (bounded) until both consumers applied every event of the stage.
      const deadline = Date.now() + 120_000;
      let complete = false;
      while (Date.now() < deadline) {
        const counts = await Promise.all(
          CONSUMERS.map(async (c) =>
            Number((await pools[c].query<{ n: string }>('select count(*) as n from inbox where event_id = any($1)', [ids])).rows[0]?.n),
          ),
        );
        if (counts.every((n) => n === ids.length)) {
          complete = true;
          break;
        }
        await delay(100);
      }
      const all: number[] = [];
      const consumers = {} as StageResult['consumers'];
      for (const c of CONSUMERS) {
        const rows = (
          await pools[c].query<{ event_id: string; handled_at: string }>(
            'select event_id, handled_at from inbox where event_id = any($1)',
            [ids],
          )
        ).rows;
        const handled = rows.map((r) => Date.parse(r.handled_at));
        const latencies = rows.map((r) => Date.parse(r.handled_at) - (occurred.get(r.event_id) as number));
        all.push(...latencies);
        const span = (Math.max(...handled) - Math.min(...handled)) / 1000;
        const h = await histogram(started.subgraphUrls[c], c);
        const d = (k: string) => (h[k] ?? 0) - (histBefore[c][k] ?? 0);
        const count = d('count');
        consumers[c] = {
          latencyMs: summarise(latencies),
          appliedRate: Math.round(rows.length / Math.max(span, 1e-3)),
          histogram: { le25ms: d('0.025') / count, le50ms: d('0.05') / count, le100ms: d('0.1') / count, count },
        };
      }
      return {
        targetRate: rate,
        seconds,
        writes: written.total,
        writeErrors: written.errors,
        achievedRate: Math.round((written.total - written.errors) / written.seconds),
        complete,
        consumers,
        allMs: summarise(all),
        loadAverage: load1(),
        relayMs: summarise(
          (
            await pools.products.query<{ occurred_at: string; published_at: string }>(
              'select occurred_at, published_at from outbox where id = any($1)',
              [ids],
            )
          ).rows.map((r) => Date.parse(r.published_at) - Date.parse(r.occurred_at)),
        ),
      };
    };

    const line = (s: StageResult) =>
      `| ${s.targetRate} | ${s.achievedRate} | ${s.writeErrors} | ${s.allMs.p50} | ${s.allMs.p95} | ${s.allMs.p99} | ${s.allMs.max} | ${s.relayMs.p50} / ${s.relayMs.p99} | ` +
      `${CONSUMERS.map((c) => `${(s.consumers[c].histogram.le100ms * 100).toFixed(1)}%`).join(' / ')} | ${s.complete ? 'yes' : 'NO'} | ${s.loadAverage} |`;
    const header =
      '| target events/s | achieved writes/s | errors | p50 ms | p95 ms | p99 ms | max ms | relay p50 / p99 ms | applied within 100 ms (histogram: inventory / reviews) | all applied | load |\n|---|---|---|---|---|---|---|---|---|---|---|';

    process.stderr.write('warm-up: 200 events/s for 3 s (not reported)...\n');
    await stage(200, 3);
    const results: StageResult[] = [];
    process.stdout.write(`${header}\n`);
    for (const [i, rate] of rates.entries()) {
      const result = await stage(rate, i === 0 ? firstSeconds : stepSeconds);
      results.push(result);
      process.stdout.write(`${line(result)}\n`);
      // Kept up: the writer met the rate and the consumers drained it without a growing backlog.
      const keptUp = result.complete && result.writeErrors === 0 && result.achievedRate >= 0.95 * rate && result.allMs.p99 < 1000;
      if (!keptUp) break;
    }
    const keptUp = results.filter((r) => r.complete && r.writeErrors === 0 && r.achievedRate >= 0.95 * r.targetRate && r.allMs.p99 < 1000);
    const under100 = keptUp.filter((r) => r.allMs.p99 < 100);
    const summary = {
      at500: results.find((r) => r.targetRate === 500)?.allMs,
      maxSustainedEventsPerSecond: Math.max(0, ...keptUp.map((r) => r.achievedRate)),
      maxEventsPerSecondWithP99Under100ms: Math.max(0, ...under100.map((r) => r.achievedRate)),
    };
    process.stdout.write(`\n${JSON.stringify(summary)}\n`);
    const report = {
      kind: 'events-propagation',
      at: new Date().toISOString(),
      machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
      setup: `products writes (${writer === 'direct' ? 'ProductsRepository.create in the bench process, with its own outbox relay and RabbitMQ connection' : 'createProduct over HTTP to its own process'}); inventory and reviews consume as separate processes (services mode); PostgreSQL; RabbitMQ on loopback`,
      writer,
      measure:
        "consumer inbox handled_at minus event occurredAt, per event and consumer; histogram = the consumers' event_propagation_seconds (after commit)",
      summary,
      stages: results,
    };
    const dir = join(REPO_ROOT, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `events-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
    process.stderr.write(`wrote ${file}\n`);
  } finally {
    await cleanup();
  }
}

runBench('bench:events', main);
