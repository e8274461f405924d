// `npm run bench:subscriptions`: many subscribers on one gateway, each following its own order
// over its own WebSocket, while every order changes. Not a test (test/subscriptions-load.e2e.test.ts
// runs it and checks the deliveries).
//
//   npm run bench:subscriptions                                 1,000 subscribers, 2 changes each
//   npm run bench:subscriptions -- --subscribers 200 --changes 1
//   npm run bench:subscriptions -- --write docs/subscriptions.md  the report between the file's
//                                                               <!-- subscriptions:start/end --> markers
//   npm run bench:subscriptions -- --json                       one JSON line on stdout (for the test)
//
// The embedded stack runs in this process (in-memory stores and bus: the gateway's work, not
// the broker's, is what is measured); the subscribers run in a child process, so the memory of
// their sockets is not counted. Memory per subscription: this process's V8 heap after a full GC
// with every subscription open, minus the same before any (run under --expose-gc, which the npm
// script sets), divided by the subscribers. Latency per delivered change: when the subscriber had
// it, minus when the `addOrderLine` that made it was answered (so it covers the outbox relay, the
// bus, the gateway's run of the subscription through orders, products, inventory and accounts,
// and the socket), p50/p95/p99 over every change.
import { fork } from 'node:child_process';
import { cpus } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import pino from 'pino';
import { STACK_TEST_ENV, startStack } from '@shop/stack';
import { bearer, graphqlClient } from '@shop/testing';
import type { ClientJob, ClientMessage, Received } from './children/subscription-clients';
import { summarise } from './lib/common';
import { parseOptionValues, runBench } from './lib/harness';
import { writeBetweenMarkers } from '../scripts/lib/cli';

const USAGE =
  'usage: npm run bench:subscriptions -- [--subscribers N] [--changes N] [--users N] [--concurrency N | --rate W] [--write <file>] [--json]';

const Options = z.object({
  subscribers: z.coerce.number().int().min(1).max(20_000).default(1000),
  changes: z.coerce.number().int().min(1).max(20).default(2),
  users: z.coerce.number().int().min(1).max(1000).default(100),
  concurrency: z.coerce.number().int().min(1).max(500).default(50),
  /** Writes per second, open loop (each at its time, whatever the ones before it); 0: as fast as `concurrency` allows. */
  rate: z.coerce.number().min(0).max(5000).default(0),
  write: z.string().optional(),
  json: z.boolean().default(false),
});

export interface SubscriptionLoadReport {
  subscribers: number;
  changes: number;
  users: number;
  /** Changes the subscribers should have seen (subscribers x changes) and saw. */
  expected: number;
  delivered: number;
  /** Deliveries of a version a subscriber had already had, or of an order it does not follow. */
  duplicates: number;
  strangers: number;
  /** Subscribers whose versions did not arrive in increasing order. */
  outOfOrder: number;
  /** Results with errors, and subscriptions refused or ended early. */
  errors: number;
  closedEarly: number;
  heapPerSubscriptionKb: number;
  latencyMs: ReturnType<typeof summarise>;
  writesPerSecond: number;
  concurrency: number;
  rate: number;
  cpus: number;
}

const now = () => performance.timeOrigin + performance.now();
const gc = (globalThis as { gc?: () => void }).gc;
const collect = () => {
  gc?.();
  gc?.();
  return process.memoryUsage();
};

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i] as T);
      }
    }),
  );
  return out;
}

export async function runSubscriptionLoad(options: z.output<typeof Options>): Promise<SubscriptionLoadReport> {
  if (!gc) throw new Error('run with --expose-gc (npm run bench:subscriptions does): memory is read after a full GC');
  const perUser = Math.ceil(options.subscribers / options.users);
  const stack = await startStack({
    // One process holds the gateway and every subgraph: its event loop lags with the subgraphs'
    // work too, so the lag check of load shedding is off (the in-flight cap stays).
    env: { ...STACK_TEST_ENV, RATE_LIMIT_POINTS: '0', SHED_EVENT_LOOP_DELAY_MS: '0' },
    store: () => ({ sqlitePath: ':memory:' }),
    ports: { gateway: 0, accounts: 0, products: 0, inventory: 0, reviews: 0, orders: 0, payments: 0 },
    host: '127.0.0.1',
    logger: pino({ level: 'silent' }),
    seed: { users: options.users, products: 20, reviews: 0 },
    // The caps are per user and per connection; the bench's users each follow perUser orders.
    subscriptions: { perUser: Math.max(50, perUser), total: Math.max(20_000, options.subscribers) },
  });
  const child = fork(path.join(__dirname, 'children', 'subscription-clients.ts'), [], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  const replies: ClientMessage[] = [];
  const waiters: Array<() => void> = [];
  child.on('message', (m: ClientMessage) => {
    replies.push(m);
    waiters.splice(0).forEach((w) => w());
  });
  const reply = async <K extends ClientMessage['kind']>(kind: K): Promise<Extract<ClientMessage, { kind: K }>> => {
    for (;;) {
      const i = replies.findIndex((r) => r.kind === kind);
      if (i >= 0) return replies.splice(i, 1)[0] as Extract<ClientMessage, { kind: K }>;
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  try {
    const client = graphqlClient(stack.gatewayUrl);
    const users = Array.from({ length: options.users }, (_, i) => `u${String(i + 1).padStart(5, '0')}`);
    const tokens = new Map(await Promise.all(users.map(async (u) => [u, await stack.token(u)] as const)));
    const as = async <T>(user: string, query: string, variables: Record<string, unknown>): Promise<T> => {
      const res = await client.query<T>(query, variables, bearer(tokens.get(user) as string));
      if (res.errors?.length) throw new Error(`${user}: ${JSON.stringify(res.errors)}`);
      return res.data as T;
    };
    const owners = Array.from({ length: options.subscribers }, (_, i) => users[i % users.length] as string);
    const orders = await mapLimit(owners, options.concurrency, async (user) => ({
      user,
      id: (await as<{ createOrder: { id: string } }>(user, 'mutation { createOrder { id } }', {})).createOrder.id,
    }));

    const before = collect();
    const job: ClientJob = {
      kind: 'subscribe',
      url: stack.gatewayUrl.replace(/^http/, 'ws'),
      subscriptions: orders.map((o) => ({ orderId: o.id, token: tokens.get(o.user) as string })),
    };
    child.send(job);
    await reply('subscribed');
    const until = Date.now() + 120_000;
    while (stack.gateway.subscriptions() < options.subscribers) {
      if (Date.now() > until) throw new Error(`only ${stack.gateway.subscriptions()} of ${options.subscribers} subscriptions within 120 s`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const after = collect();

    // Every order changes `changes` times; each change's answer time is when its event is due.
    const answered = new Map<string, number>();
    const started = now();
    const products = Array.from({ length: 20 }, (_, i) => `p${String(i + 1).padStart(5, '0')}`);
    const writes = orders.flatMap((o, i) =>
      Array.from({ length: options.changes }, (_, c) => ({ ...o, product: products[(i + c) % 20] as string })),
    );
    const write = async (w: (typeof writes)[number]) => {
      const data = await as<{ addOrderLine: { version: number } }>(
        w.user,
        'mutation ($id: ID!, $p: ID!) { addOrderLine(orderId: $id, productId: $p, quantity: 1) { version } }',
        { id: w.id, p: w.product },
      );
      answered.set(`${w.id}\0${data.addOrderLine.version}`, now());
    };
    if (options.rate > 0) {
      // Open loop: change c of order i at (c x orders + i) / rate s; an order's next change comes
      // a whole round later, after its previous one was answered.
      const sent: Array<Promise<void>> = [];
      const ordered = Array.from({ length: options.changes }, (_, c) => orders.map((_o, i) => writes[i * options.changes + c])).flat();
      for (const [k, w] of ordered.entries()) {
        const due = started + (k / options.rate) * 1000;
        if (due > now()) await new Promise((resolve) => setTimeout(resolve, due - now()));
        if (w) sent.push(write(w));
      }
      await Promise.all(sent);
    } else {
      // One order's changes in sequence (their versions follow), `concurrency` orders at once.
      const byOrder = new Map<string, typeof writes>();
      for (const w of writes) byOrder.set(w.id, [...(byOrder.get(w.id) ?? []), w]);
      await mapLimit([...byOrder.values()], options.concurrency, async (sequence) => {
        for (const w of sequence) await write(w);
      });
    }
    const writeSeconds = (now() - started) / 1000;

    // Until every subscriber has had every change (or 60 s pass without one more arriving).
    const received: Received[] = [];
    let closedEarly = 0;
    let quietSince = Date.now();
    while (received.filter((r) => r.version !== null).length < answered.size && Date.now() - quietSince < 60_000) {
      child.send({ kind: 'report' });
      const report = await reply('report');
      closedEarly = report.closedEarly;
      if (report.received.length > 0) quietSince = Date.now();
      received.push(...report.received);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    const following = new Set(orders.map((o) => o.id));
    const seen = new Set<string>();
    const lastVersion = new Map<string, number>();
    let duplicates = 0;
    let strangers = 0;
    let outOfOrder = 0;
    let errors = 0;
    const latencies: number[] = [];
    for (const r of received) {
      if (r.errors) errors++;
      if (r.version === null) continue;
      if (!following.has(r.orderId)) strangers++;
      const key = `${r.orderId}\0${r.version}`;
      if (seen.has(key)) {
        duplicates++;
        continue;
      }
      seen.add(key);
      if ((lastVersion.get(r.orderId) ?? 0) > r.version) outOfOrder++;
      lastVersion.set(r.orderId, r.version);
      const at = answered.get(key);
      if (at !== undefined) latencies.push(Math.max(0, r.at - at));
    }
    const delivered = [...answered.keys()].filter((k) => seen.has(k)).length;
    return {
      subscribers: options.subscribers,
      changes: options.changes,
      users: options.users,
      expected: answered.size,
      delivered,
      duplicates,
      strangers,
      outOfOrder,
      errors,
      closedEarly,
      heapPerSubscriptionKb: Math.round(((after.heapUsed - before.heapUsed) / options.subscribers / 1024) * 10) / 10,
      latencyMs: summarise(latencies),
      writesPerSecond: Math.round(answered.size / writeSeconds),
      concurrency: options.concurrency,
      rate: options.rate,
      cpus: cpus().length,
    };
  } finally {
    child.send({ kind: 'stop' });
    await new Promise((resolve) => child.once('exit', resolve));
    await stack.stop();
  }
}

export function formatSubscriptionReport(r: SubscriptionLoadReport): string {
  const l = r.latencyMs;
  return [
    `${r.subscribers} subscribers on one gateway (one WebSocket each, ${r.users} users), each following its own order; every order changed ${r.changes} times (${r.expected} changes, ${r.rate > 0 ? `sent at ${r.rate} writes/s, answered at ${r.writesPerSecond}/s` : `as fast as ${r.concurrency} orders at once allow: ${r.writesPerSecond} writes/s`}), on ${r.cpus} cores.`,
    '',
    '| | |',
    '|---|---|',
    `| changes delivered | ${r.delivered} of ${r.expected} |`,
    `| delivered twice, to a stranger, out of order | ${r.duplicates}, ${r.strangers}, ${r.outOfOrder} |`,
    `| results with errors, subscriptions ended early | ${r.errors}, ${r.closedEarly} |`,
    `| gateway heap per subscription (after full GC) | ${r.heapPerSubscriptionKb} KB |`,
    `| write answered → subscriber has it, p50 / p95 / p99 / max | ${l.p50} / ${l.p95} / ${l.p99} / ${l.max} ms |`,
  ].join('\n');
}

async function main(argv: string[]): Promise<void> {
  const options = parseOptionValues(
    USAGE,
    argv,
    {
      subscribers: { type: 'string' },
      changes: { type: 'string' },
      users: { type: 'string' },
      concurrency: { type: 'string' },
      rate: { type: 'string' },
      write: { type: 'string' },
      json: { type: 'boolean' },
    },
    Options,
  );
  if (options.json) {
    process.stdout.write(`${JSON.stringify(await runSubscriptionLoad(options))}\n`);
    return;
  }
  // For the docs, two runs: at a steady rate (fan-out latency), then as fast as the writes go
  // (where the runs fall behind and latency is queueing).
  const runs = options.write
    ? [
        { title: `At a steady ${options.rate || 50} writes/s`, rate: options.rate || 50 },
        { title: `As fast as ${options.concurrency} orders written at once allow`, rate: 0 },
      ]
    : [{ title: '', rate: options.rate }];
  const sections: string[] = [];
  for (const run of runs) {
    const report = await runSubscriptionLoad({ ...options, rate: run.rate });
    sections.push(`${run.title ? `### ${run.title}\n\n` : ''}${formatSubscriptionReport(report)}`);
  }
  const text = `${sections.join('\n\n')}\n\nProduced by \`npm run bench:subscriptions -- --write docs/subscriptions.md\`.`;
  process.stdout.write(`${text}\n`);
  if (options.write) process.stdout.write(`written to ${await writeBetweenMarkers(options.write, 'subscriptions', text)}\n`);
}

if (require.main === module) runBench('bench:subscriptions', main);
