// `npm run bench:orders`: orders' append throughput and latency over 1, 2 and 4 PostgreSQL shards,
// and throughput while slots move to a new shard on another server. Not a test.
//
//   npm run bench:orders                     16 writers for 10 s on 1, 2 and 4 shards, then 4 shards
//                                            with slots 64-127 moved to a fifth on the second server
//                                            mid-run; writes the JSON and docs/sharding.md's Measurements
//   npm run bench:orders -- --quick          the same for 4 s each; the JSON only
//   npm run bench:orders -- --smoke          the harness end to end (numbers are noise); the JSON only
//   npm run bench:orders -- --shards 1,4 --writers 32 --seconds 20 --no-move
//   npm run bench:orders -- --report bench/results/orders-<time>.json   regenerate the docs section only
//
// Each cell creates its own databases (tempPostgres: fresh, dropped after), runs createOrders in
// this process over them (`shards: [...urls]`, seeded customers and products, a MemoryBus so every
// shard's relay publishes), and drives it closed loop: each writer creates an order for a random
// seed customer and adds its lines, one command at a time, through `ShardedOrders.execute` (what
// the GraphQL mutations call: routing by the slot the id carries, the ownership check in the
// append's transaction, the read models brought up to date before it returns). GraphQL, HTTP and
// the gateway are left out on purpose: they cost the same whatever the shard count.
import { readFileSync, statSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { z } from 'zod';
import { formatSlots, parseSlots, slotOf } from '@shop/eventstore';
import { MemoryBroker, MemoryBus } from '@shop/events';
import {
  type MoveReport,
  type OrdersRepository,
  type OrdersSubgraph,
  addShard,
  createOrders,
  moveSlots,
  openForResharding,
  orderIdFor,
} from '@shop/orders';
import { productId, userId } from '@shop/seed';
import { createTelemetry } from '@shop/telemetry';
import { requireSecondPostgres, requireService, secondPostgresUrl, services, tempPostgres } from '@shop/testing';
import pino from 'pino';
import { UsageError } from '../scripts/lib/cli';
import { summarise } from './lib/common';
import { parseRunOptions, regenerateFrom, runBench, runRecord, writeResults } from './lib/harness';
import { load1, ownCpuSeconds, round2, sampleLoadAverage } from './lib/sampling';
import { type CellResult, type MoveResult, type OrdersBenchResults, type Phase, assertOrdersResults } from './lib/orders-results';
import { DOCS_PATH, writeMeasurements } from './lib/orders-report';
/** A command on an order, as ShardedOrders.execute takes it (the domain's type is not exported by @shop/orders). */
type OrderCommand = Exclude<Parameters<OrdersRepository['execute']>[1], (...args: never[]) => unknown>;

const USAGE = `usage: npm run bench:orders -- [--quick | --smoke] [--shards <n,n,...>] [--writers <n>] [--seconds <s>]
       [--users <n>] [--products <n>] [--lines <n>] [--move-slots <slots>] [--no-move] [--out <file>] [--no-docs]
       npm run bench:orders -- --report <results.json>
  (default)            16 writers for 10 s on 1, 2 and 4 shards, then the move; writes
                       bench/results/orders-<time>.json and docs/sharding.md's Measurements
  --quick              the same for 4 s each; the JSON only
  --smoke              the harness end to end (1 s, 2 writers; numbers are noise); the JSON only
  --shards <list>      shard counts to measure (default 1,2,4)
  --writers <n>        concurrent writers, each one command at a time (default 16)
  --seconds <s>        each cell's measured duration, and each phase's (before, after) of the move
  --users <n>          seed customers the orders are spread over (default 2000)
  --products <n>       seed products the lines are drawn from (default 100)
  --lines <n>          AddOrderLine commands after each CreateOrder (default 2)
  --move-slots <list>  the slots moved in the move cell, 4 shards (default 64-127: all of s1's)
  --no-move            skip the move cell
  --out <file>         where to write the results JSON (default bench/results/orders-<time>.json)
  --no-docs            do not regenerate docs/sharding.md (a default run does)
  --report <file>      regenerate docs/sharding.md's Measurements from a results JSON and exit`;

const positiveInt = z.coerce.number().int().positive();
const args = {
  shards: z
    .string()
    .transform((v) => v.split(',').map(Number))
    .pipe(z.array(z.number().int().min(1).max(8)).nonempty())
    .optional(),
  writers: positiveInt.max(256).optional(),
  seconds: z.coerce.number().positive().finite().optional(),
  users: positiveInt.max(100_000).optional(),
  products: positiveInt.max(10_000).optional(),
  lines: z.coerce.number().int().min(0).max(10).optional(),
  'move-slots': z.string().optional(),
  'no-move': z.boolean(),
};

type Mode = OrdersBenchResults['mode'];

interface Options {
  mode: Mode;
  shardCounts: number[];
  writers: number;
  seconds: number;
  warmupSeconds: number;
  users: number;
  products: number;
  lines: number;
  moveSlots: number[] | undefined;
  out: string | undefined;
  writeDocs: boolean;
  report: string | undefined;
}

function parseOptions(argv: string[]): Options {
  const a = parseRunOptions(
    USAGE,
    argv,
    {
      shards: { type: 'string' },
      writers: { type: 'string' },
      seconds: { type: 'string' },
      users: { type: 'string' },
      products: { type: 'string' },
      lines: { type: 'string' },
      'move-slots': { type: 'string' },
      'no-move': { type: 'boolean', default: false },
    },
    args,
  );
  const mode = a.mode;
  let slots: number[] | undefined;
  try {
    slots = a['no-move'] ? undefined : parseSlots(a['move-slots'] ?? '64-127');
  } catch (err) {
    throw new UsageError(`--move-slots: ${(err as Error).message}\n${USAGE}`);
  }
  const given = a.shards !== undefined || a.writers !== undefined || a.seconds !== undefined || a.lines !== undefined;
  return {
    mode,
    shardCounts: a.shards ?? [1, 2, 4],
    writers: a.writers ?? (mode === 'smoke' ? 2 : 16),
    seconds: a.seconds ?? { smoke: 1, quick: 4, full: 10 }[mode],
    warmupSeconds: { smoke: 0.5, quick: 1, full: 2 }[mode],
    users: a.users ?? (mode === 'smoke' ? 200 : 2000),
    products: a.products ?? 100,
    lines: a.lines ?? 2,
    moveSlots: slots,
    out: a.out,
    // Only a full default run's numbers go into the docs; a partial one would read as the measurement.
    writeDocs: mode === 'full' && !a['no-docs'] && !given && !a['no-move'] && a['move-slots'] === undefined,
    report: a.report,
  };
}

/** `ORDERS_MAP_REFRESH_MS` and `ORDERS_FENCE_WAIT_MS` as the service defaults them; the move's grace as the brief for the bench. */
const MAP_REFRESH_MS = 1000;
const FENCE_WAIT_MS = 5000;
const GRACE_MS = 500;

const log = (line: string) => process.stderr.write(`${line}\n`);

/** One command as a writer saw it (times in ms from performance.now()). */
interface Sample {
  command: 'CreateOrder' | 'AddOrderLine';
  slot: number;
  start: number;
  end: number;
  /** The error code, or undefined when it succeeded. */
  error: string | undefined;
  shard: string | undefined;
}

const codeOf = (err: unknown): string => {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : err instanceof Error ? err.name : 'unknown';
};

/** The machine's busy and total jiffies (first line of /proc/stat); undefined where unreadable. */
function cpuTicks(): { busy: number; total: number } | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((s, x) => s + x, 0);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

/** What a cell's resources cost: bench CPU, machine busy share, load average. Call the result to stop sampling. */
function meter() {
  const ticks = cpuTicks();
  const cpu = ownCpuSeconds();
  const began = performance.now();
  const loadAverage = sampleLoadAverage();
  return () => {
    const used = ownCpuSeconds() - cpu;
    const after = cpuTicks();
    return {
      benchCpuCores: round2((used * 1000) / (performance.now() - began)),
      machineBusy: ticks && after && after.total > ticks.total ? round2((after.busy - ticks.busy) / (after.total - ticks.total)) : null,
      loadAverage: loadAverage(),
    };
  };
}

/**
 * Closed-loop writers on one subgraph: each creates an order for a random seed customer and adds
 * `lines` lines, one command at a time, until `running()` is false (checked before each order).
 * Order ids are `o<slot>-<tag>-<writer>-<n>`, so the cell's events can be found on every shard.
 */
async function writers(
  subgraph: OrdersSubgraph,
  options: Pick<Options, 'writers' | 'users' | 'products' | 'lines'>,
  tag: string,
  running: () => boolean,
): Promise<Sample[]> {
  const samples: Sample[] = [];
  let random = 0x2545f491 ^ tag.length;
  // A small xorshift: the same customers and products every run, whatever the timing.
  const next = (n: number) => {
    random ^= random << 13;
    random ^= random >>> 17;
    random ^= random << 5;
    return (random >>> 0) % n;
  };
  const run = async (
    command: Sample['command'],
    orderId: string,
    slot: number,
    build: (repo: OrdersRepository) => OrderCommand | Promise<OrderCommand>,
  ): Promise<boolean> => {
    const start = performance.now();
    let shard: string | undefined;
    try {
      await subgraph.orders.execute(
        orderId,
        async (repo) => {
          // The shard the router chose (the last one, when a moved slot made it retry).
          shard = subgraph.shards().find((s) => s.orders === repo)?.info.id;
          return build(repo);
        },
        { correlationId: `bench-${tag}` },
      );
      samples.push({ command, slot, start, end: performance.now(), error: undefined, shard });
      return true;
    } catch (err) {
      samples.push({ command, slot, start, end: performance.now(), error: codeOf(err), shard: undefined });
      return false;
    }
  };
  await Promise.all(
    Array.from({ length: options.writers }, async (_, w) => {
      for (let n = 0; running(); n++) {
        const customerId = userId(1 + next(options.users));
        const orderId = orderIdFor(customerId, `${tag}-${w}-${n}`);
        const slot = slotOf(customerId);
        if (!(await run('CreateOrder', orderId, slot, () => ({ type: 'CreateOrder', orderId, customerId })))) continue;
        for (let l = 0; l < options.lines && running(); l++) {
          const product = productId(1 + next(options.products));
          const quantity = 1 + next(3);
          const ok = await run('AddOrderLine', orderId, slot, async (repo) => ({
            type: 'AddOrderLine',
            productId: product,
            quantity,
            unitPrice: await repo.priceOf(product),
          }));
          if (!ok) break;
        }
      }
    }),
  );
  return samples;
}

/** The checks of a cell: its events over every shard (by the tag in their stream ids), and every shard's outbox. */
async function check(urls: string[], tag: string, commandsOk: number): Promise<CellResult['checks']> {
  const streams = new Map<string, { shards: number; events: number; maxVersion: number }>();
  let unpublished = 0;
  let events = 0;
  for (const url of urls) {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ stream_id: string; n: string; max: number; min: number }>(
        `select stream_id, count(*) as n, max(version) as max, min(version) as min from es_events where stream_id like $1 group by stream_id`,
        [`o__-${tag}-%`],
      );
      for (const r of rows) {
        const s = streams.get(r.stream_id) ?? { shards: 0, events: 0, maxVersion: 0 };
        streams.set(r.stream_id, { shards: s.shards + 1, events: s.events + Number(r.n), maxVersion: Math.max(s.maxVersion, r.max) });
        events += Number(r.n);
      }
      const out = await client.query<{ n: string }>('select count(*) as n from outbox where published_at is null');
      unpublished += Number(out.rows[0]?.n ?? 0);
    } finally {
      await client.end();
    }
  }
  const streamsOnTwoShards = [...streams.values()].filter((s) => s.shards > 1).length;
  const gappedStreams = [...streams.values()].filter((s) => s.events !== s.maxVersion).length;
  return {
    commandsOk,
    events,
    streamsOnTwoShards,
    gappedStreams,
    unpublished,
    consistent: events === commandsOk && streamsOnTwoShards === 0 && gappedStreams === 0 && unpublished === 0,
  };
}

/** Waits (up to 10 s) until every shard's relay has published its outbox. */
async function drained(urls: string[]): Promise<void> {
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    let pending = 0;
    for (const url of urls) {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const { rows } = await client.query<{ n: string }>('select count(*) as n from outbox where published_at is null');
        pending += Number(rows[0]?.n ?? 0);
      } finally {
        await client.end();
      }
    }
    if (pending === 0) return;
    await delay(200);
  }
}

const errorsOf = (samples: Sample[]) => {
  const out: Record<string, number> = {};
  for (const s of samples) if (s.error) out[s.error] = (out[s.error] ?? 0) + 1;
  return out;
};
const perShardOf = (samples: Sample[]) => {
  const out: Record<string, number> = {};
  for (const s of samples) if (!s.error && s.shard) out[s.shard] = (out[s.shard] ?? 0) + 1;
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true })));
};
const latencies = (samples: Sample[]) => samples.filter((s) => !s.error).map((s) => s.end - s.start);

/** A running orders subgraph over fresh databases, and what stops it and drops them. */
async function openCell(urls: string[], options: Options) {
  const telemetry = createTelemetry({ service: 'orders', logger: pino({ level: 'error' }) });
  const broker = new MemoryBroker();
  const bus = new MemoryBus({ service: 'orders', telemetry, broker });
  const subgraph = await createOrders({
    telemetry,
    store: { postgresUrl: urls[0] },
    shards: urls,
    seed: { users: options.users, products: options.products, reviews: 0 },
    bus,
    mapRefreshMs: MAP_REFRESH_MS,
    fenceWaitMs: FENCE_WAIT_MS,
  });
  return { subgraph, telemetry, bus };
}

async function serverFacts(url: string): Promise<{ text: string; dataDirectory: string | undefined }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ v: string; fsync: string }>(
      "select current_setting('server_version') as v, current_setting('fsync') as fsync",
    );
    const dir = await client
      .query<{ d: string }>("select current_setting('data_directory') as d")
      .then((r) => r.rows[0]?.d)
      .catch(() => undefined);
    return { text: `PostgreSQL ${rows[0]?.v ?? '?'} (fsync ${rows[0]?.fsync ?? '?'})`, dataDirectory: dir };
  } finally {
    await client.end();
  }
}

/** Whether two data directories are on one device (stat's dev); null when either cannot be read. */
function sameDevice(a: string | undefined, b: string | undefined): boolean | null {
  try {
    return a && b ? statSync(a).dev === statSync(b).dev : null;
  } catch {
    return null;
  }
}

const serverOf = (url: string) => {
  const u = new URL(url);
  return `${u.hostname}:${u.port || 5432}`;
};

async function measureCell(shards: number, options: Options, run: string): Promise<CellResult> {
  const dbs = Array.from({ length: shards }, (_, i) => tempPostgres(`bench_orders_${run}_${shards}_${i}`));
  const urls = dbs.map((d) => d.url);
  const cell = await openCell(urls, options);
  try {
    const warmEnd = performance.now() + options.warmupSeconds * 1000;
    await writers(cell.subgraph, options, `w${shards}x${run}`, () => performance.now() < warmEnd);
    const tag = `c${shards}x${run}`;
    const stop = meter();
    const end = performance.now() + options.seconds * 1000;
    const samples = await writers(cell.subgraph, options, tag, () => performance.now() < end);
    const cost = stop();
    const ok = samples.filter((s) => !s.error);
    const first = Math.min(...samples.map((s) => s.start));
    const last = Math.max(...samples.map((s) => s.end));
    const seconds = (last - first) / 1000;
    await drained(urls);
    const checks = await check(urls, tag, ok.length);
    return {
      shards,
      seconds: round2(seconds),
      commands: ok.length,
      errors: errorsOf(samples),
      commandsPerSecond: round2(ok.length / seconds),
      ordersPerSecond: round2(ok.filter((s) => s.command === 'CreateOrder').length / seconds),
      latencyMs: summarise(latencies(samples)),
      byCommand: {
        CreateOrder: summarise(latencies(samples.filter((s) => s.command === 'CreateOrder'))),
        AddOrderLine: summarise(latencies(samples.filter((s) => s.command === 'AddOrderLine'))),
      },
      perShard: perShardOf(samples),
      ...cost,
      checks,
    };
  } finally {
    await cell.subgraph.stop().catch((err: unknown) => log(`stopping orders: ${String(err)}`));
    await cell.bus.close().catch(() => undefined);
    for (const db of dbs) await db.drop().catch((err: unknown) => log(`dropping ${db.url}: ${String(err)}`));
  }
}

async function measureMove(options: Options, slots: number[], run: string): Promise<MoveResult> {
  const shards = 4;
  const dbs = Array.from({ length: shards }, (_, i) => tempPostgres(`bench_orders_${run}_move_${i}`));
  const targetDb = tempPostgres(`bench_orders_${run}_move_target`, { server: 'second' });
  const urls = dbs.map((d) => d.url);
  const cell = await openCell(urls, options);
  const resharding = await openForResharding({ telemetry: cell.telemetry, store: { postgresUrl: urls[0] } });
  try {
    const map = cell.subgraph.orders.map;
    const sources = [...new Set(slots.map((s) => map.owners[s]!))];
    // The new shard is in the map, migrated and open in the service before the writers start.
    const target = await addShard(resharding.mapDb, targetDb.url);
    await resharding.shard(target);
    await cell.subgraph.orders.refresh();
    const warmEnd = performance.now() + options.warmupSeconds * 1000;
    await writers(cell.subgraph, options, `wmx${run}`, () => performance.now() < warmEnd);

    const tag = `mx${run}`;
    const moving = new Set(slots);
    const stop = meter();
    const began = performance.now();
    let done = false;
    const writing = writers(cell.subgraph, options, tag, () => !done);
    await delay(options.seconds * 1000);
    const moveFrom = performance.now();
    log(`  moving slots ${formatSlots(slots)} from ${sources.join(',')} to ${target.id} (${serverOf(targetDb.url)})...`);
    const steps: Record<string, number> = {};
    const reports: MoveReport[] = await moveSlots(
      {
        mapDb: resharding.mapDb,
        shard: resharding.shard,
        graceMs: GRACE_MS,
        onProgress: (p) => {
          steps[p.step] ??= Math.round(performance.now() - moveFrom);
        },
      },
      slots,
      target.id,
    );
    const moveTo = performance.now();
    await delay(options.seconds * 1000);
    done = true;
    const samples = await writing;
    const cost = stop();
    const ok = samples.filter((s) => !s.error);
    const phase = (from: number, to: number): Phase => {
      const inside = ok.filter((s) => s.end > from && s.end <= to);
      const seconds = (to - from) / 1000;
      return {
        seconds: round2(seconds),
        commands: inside.length,
        commandsPerSecond: round2(inside.length / seconds),
        latencyMs: summarise(inside.map((s) => s.end - s.start)),
      };
    };
    const last = Math.max(...samples.map((s) => s.end));
    const overlapping = samples.filter((s) => s.end > moveFrom && s.start < moveTo);
    const perSecond: number[] = [];
    const whole = Math.floor((last - began) / 1000);
    for (const s of ok) {
      const i = Math.floor((s.end - began) / 1000);
      if (i >= whole) continue;
      while (perSecond.length <= i) perSecond.push(0);
      perSecond[i]!++;
    }
    await drained([...urls, targetDb.url]);
    const checks = await check([...urls, targetDb.url], tag, ok.length);
    const report = reports.at(-1);
    return {
      shards,
      slots: formatSlots(slots),
      source: sources.join(','),
      target: target.id,
      targetServer: serverOf(targetDb.url),
      before: phase(began, moveFrom),
      during: phase(moveFrom, moveTo),
      after: phase(moveTo, last),
      moveMs: reports.reduce((s, r) => s + r.ms, 0),
      steps,
      fenceMs: Math.max(0, ...reports.map((r) => r.fenceMs)),
      fenceSteps: reports.reduce<MoveReport | undefined>((a, r) => (a && a.fenceMs >= r.fenceMs ? a : r), undefined)?.fenceSteps,
      eventsCopied: reports.reduce((s, r) => s + r.eventsCopied, 0),
      mapVersion: report?.mapVersion ?? 0,
      movingSlots: {
        commands: overlapping.filter((s) => moving.has(s.slot)).length,
        latencyMs: summarise(latencies(overlapping.filter((s) => moving.has(s.slot)))),
      },
      otherSlots: {
        commands: overlapping.filter((s) => !moving.has(s.slot)).length,
        latencyMs: summarise(latencies(overlapping.filter((s) => !moving.has(s.slot)))),
      },
      perSecond,
      moveSpan: { from: round2((moveFrom - began) / 1000), to: round2((moveTo - began) / 1000) },
      errors: errorsOf(samples),
      perShard: perShardOf(samples),
      ...cost,
      checks,
    };
  } finally {
    await cell.subgraph.stop().catch((err: unknown) => log(`stopping orders: ${String(err)}`));
    await resharding.close().catch(() => undefined);
    await cell.bus.close().catch(() => undefined);
    for (const db of [...dbs, targetDb]) await db.drop().catch((err: unknown) => log(`dropping ${db.url}: ${String(err)}`));
  }
}

async function main(argv: string[]): Promise<void> {
  const options = parseOptions(argv);
  if (options.report) {
    regenerateFrom(options.report, assertOrdersResults, writeMeasurements, DOCS_PATH);
    return;
  }
  await requireService('postgres');
  if (options.moveSlots) await requireSecondPostgres();
  const startedAt = new Date();
  const loadAtStart = load1();
  const run = Math.random().toString(36).slice(2, 8);
  const first = await serverFacts(services.postgres);
  const second = options.moveSlots ? await serverFacts(secondPostgresUrl()) : { text: 'not used (--no-move)', dataDirectory: undefined };

  const cells: CellResult[] = [];
  for (const shards of options.shardCounts) {
    log(`${shards} shard(s): ${options.writers} writers for ${options.seconds} s...`);
    const cell = await measureCell(shards, options, run);
    cells.push(cell);
    log(
      `  ${cell.commands} commands, ${cell.commandsPerSecond}/s; p50 ${cell.latencyMs.p50} p99 ${cell.latencyMs.p99} max ${cell.latencyMs.max} ms; ` +
        `errors ${JSON.stringify(cell.errors)}; per shard ${JSON.stringify(cell.perShard)}; bench CPU ${cell.benchCpuCores} cores, ` +
        `machine busy ${cell.machineBusy}; consistent ${cell.checks.consistent}`,
    );
  }
  let move: MoveResult | null = null;
  if (options.moveSlots) {
    log(`the move: 4 shards, ${options.writers} writers, ${options.seconds} s before and after...`);
    move = await measureMove(options, options.moveSlots, run);
    log(
      `  before ${move.before.commandsPerSecond}/s, during ${move.during.commandsPerSecond}/s (${move.during.seconds} s), after ` +
        `${move.after.commandsPerSecond}/s; fence ${move.fenceMs} ms ${JSON.stringify(move.fenceSteps ?? {})}; moving slots max ${move.movingSlots.latencyMs.max} ms; ` +
        `errors ${JSON.stringify(move.errors)}; consistent ${move.checks.consistent}`,
    );
  }

  const results: OrdersBenchResults = {
    kind: 'orders',
    ...runRecord(options.mode, argv, startedAt, loadAtStart),
    settings: {
      writers: options.writers,
      seconds: options.seconds,
      warmupSeconds: options.warmupSeconds,
      users: options.users,
      products: options.products,
      linesPerOrder: options.lines,
      postgres: first.text,
      secondPostgres: second.text,
      sameDevice: options.moveSlots ? sameDevice(first.dataDirectory, second.dataDirectory) : null,
      mapRefreshMs: MAP_REFRESH_MS,
      fenceWaitMs: FENCE_WAIT_MS,
      graceMs: GRACE_MS,
      // As createOrders sizes them: PostgreSQL's connections are shared by every service.
      poolSizes: Object.fromEntries([...new Set([...options.shardCounts, 5])].map((n) => [String(n), Math.max(3, Math.ceil(10 / n))])),
    },
    cells: cells,
    move,
    notes: options.mode === 'full' ? [] : [`A ${options.mode} run: short cells, its numbers are indicative only`],
  };
  writeResults(results, {
    name: 'orders',
    out: options.out,
    check: assertOrdersResults,
    log,
    docs: options.writeDocs ? { path: DOCS_PATH, write: (file) => writeMeasurements(results, file) } : undefined,
  });
}

runBench('bench:orders', main);
