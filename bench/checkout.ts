// `npm run bench:checkout`: the checkout saga's throughput and time to a terminal state, in the
// services mode (one process per service, PostgreSQL, RabbitMQ over loopback). Not a test.
//
//   npm run bench:checkout                        per decline rate (0, then 0.3): 10 checkouts/s
//                                                 offered for 30 s, then 16 customers checking out
//                                                 one after another for 30 s; writes the JSON and
//                                                 the Measurements section of docs/checkout.md
//   npm run bench:checkout -- --quick             the same loads for 10 s each, JSON only
//   npm run bench:checkout -- --smoke             a few checkouts per stage (the harness end to end, for a test)
//   npm run bench:checkout -- --rate 10,40 --seconds 20 --decline-rates 0
//   npm run bench:checkout -- --report bench/results/checkout-<time>.json   regenerate the docs section only
//
// Customers (seed users) sign in through the gateway and their draft orders are created up front,
// untimed. Then each checkout is the `checkout` mutation through the gateway with the customer's
// token, at a fixed offered rate (open loop: each on its schedule whatever the others do) or from a
// fixed number of customers each waiting for their checkout to end before the next (closed loop).
// Time to a terminal state: from the mutation's start (this process's clock) to the checkout's
// endedAt in orders' store, the time of the decision that appended CheckoutConfirmed or
// CheckoutRejected together with the order's OrderConfirmed or OrderRejected (orders' clock: the
// same machine). The bench finds ended checkouts by reading orders' read model (checkout_view) in
// one query per poll for every checkout still open, never by a request per checkout, so the
// measurement adds almost no load and its poll interval does not enter the latency. Payments runs
// as its own services instance so that its PSP_DECLINE_RATE can change between stages (a restart,
// as an operator would change it, then a warm-up); every other process runs once for the whole
// bench. Each load runs at every decline rate in turn before the next load.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { connect } from 'amqplib';
import pg from 'pg';
import { Pool } from 'undici';
import { z } from 'zod';
import { loadCheckoutConfig, loadPaymentsProviderConfig } from '@shop/config';
import { DEV_PASSWORD } from '@shop/accounts';
import { orderIdFor } from '@shop/orders';
import { SEED_ADMIN, productId, seedUsers } from '@shop/seed';
import { SUBGRAPHS, type Services, type SubgraphName, freePort, startServices } from '@shop/stack';
import { dropPostgresDatabase, services as testServices } from '@shop/testing';
import { type CheckoutBenchResults, type LoadSpec, type StageResult, assertCheckoutResults } from './lib/checkout-results';
import { DOCS_PATH, writeMeasurements } from './lib/checkout-report';
import { summarise } from './lib/common';
import { parseRunOptions, regenerateFrom, runBench, runRecord, writeResults } from './lib/harness';
import { load1, ownCpuSeconds, round2, sampleLoadAverage } from './lib/sampling';
import { cpuSeconds } from './lib/procs';
import { type BenchRedis, startRedis } from './lib/redis';

const USAGE = `usage: npm run bench:checkout -- [--quick | --smoke] [--rate <n,n,...>] [--concurrency <n,n,...>] [--seconds <s>]
       [--decline-rates <r,r,...>] [--customers <n>] [--products <n>] [--lines <n>] [--out <file>] [--no-docs]
       npm run bench:checkout -- --report <results.json>
  (default)            per decline rate (0, 0.3): 10 checkouts/s for 30 s, then 16 in flight for 30 s;
                       writes bench/results/checkout-<time>.json and docs/checkout.md's Measurements
  --quick              the same loads for 10 s each; the JSON only
  --smoke              the harness end to end (a few checkouts per stage; numbers are noise); the JSON only
  --rate <list>        offered checkouts per second (open loop), one load each
  --concurrency <list> checkouts in flight (closed loop: each customer waits for the end of one before the next)
  --seconds <s>        each load's duration
  --decline-rates <l>  PSP_DECLINE_RATE of each stage, 0 to 1 (default 0,0.3)
  --customers <n>      seed users who sign in and check out (default 100)
  --products <n>       products the orders' lines are drawn from, stock set high (default 100)
  --lines <n>          lines per order, 1 unit each (default 2)
  --out <file>         where to write the results JSON (default bench/results/checkout-<time>.json)
  --no-docs            do not regenerate docs/checkout.md (a default run does)
  --report <file>      regenerate docs/checkout.md's Measurements from a results JSON and exit`;

const list = z
  .string()
  .transform((v) => v.split(',').map(Number))
  .pipe(z.array(z.number().positive().finite()).nonempty());
const positiveInt = z.coerce.number().int().positive();
const args = {
  rate: list.optional(),
  concurrency: list.pipe(z.array(z.number().int())).optional(),
  seconds: z.coerce.number().positive().finite().optional(),
  'decline-rates': z
    .string()
    .transform((v) => v.split(',').map(Number))
    .pipe(z.array(z.number().min(0).max(1)).nonempty())
    .optional(),
  customers: positiveInt.optional(),
  products: positiveInt.max(1000).optional(),
  lines: positiveInt.max(10).optional(),
};

type Mode = CheckoutBenchResults['mode'];

interface Options {
  mode: Mode;
  loads: LoadSpec[];
  declineRates: number[];
  customers: number;
  products: number;
  lines: number;
  out: string | undefined;
  writeDocs: boolean;
  report: string | undefined;
  warmup: number;
  /** How long to wait, after a load, for its last checkouts to end. */
  drainMs: number;
}

function parseOptions(argv: string[]): Options {
  const a = parseRunOptions(
    USAGE,
    argv,
    {
      rate: { type: 'string' },
      concurrency: { type: 'string' },
      seconds: { type: 'string' },
      'decline-rates': { type: 'string' },
      customers: { type: 'string' },
      products: { type: 'string' },
      lines: { type: 'string' },
    },
    args,
  );
  const mode = a.mode;
  const seconds = a.seconds ?? { smoke: 2, quick: 10, full: 30 }[mode];
  const given = a.rate !== undefined || a.concurrency !== undefined;
  const rates = a.rate ?? (given ? [] : [{ smoke: 4, quick: 10, full: 10 }[mode]]);
  const concurrency = a.concurrency ?? (given ? [] : [{ smoke: 2, quick: 16, full: 16 }[mode]]);
  return {
    mode,
    loads: [
      ...rates.map((value) => ({ kind: 'rate' as const, value, seconds })),
      ...concurrency.map((value) => ({ kind: 'concurrency' as const, value, seconds })),
    ],
    declineRates: a['decline-rates'] ?? [0, 0.3],
    customers: a.customers ?? (mode === 'smoke' ? 6 : 100),
    products: a.products ?? (mode === 'smoke' ? 10 : 100),
    lines: a.lines ?? 2,
    out: a.out,
    // Only a full run's numbers go into the docs; a partial one would read as the measurement.
    writeDocs: mode === 'full' && !a['no-docs'] && !given && a['decline-rates'] === undefined,
    report: a.report,
    warmup: { smoke: 4, quick: 60, full: 200 }[mode],
    drainMs: mode === 'smoke' ? 60_000 : 180_000,
  };
}

/** What the bench measures with: closed-loop customers learn their checkout ended from the same poller. */
const POLL_MS = 20;
/** Warm-up checkouts per second, after each (re)start of payments: a rate the stack sustains on a busy two-core machine. */
const WARMUP_RATE = 10;

const CHECKOUT = 'mutation Checkout($id: ID!, $key: String!) { checkout(orderId: $id, idempotencyKey: $key) { id status } }';
const ORDER_STATE = 'query CheckoutProgress($id: ID!) { order(id: $id) { id status checkout { id status reason } } }';
const TERMINAL = ['CONFIRMED', 'REJECTED'];

interface GraphQLAnswer<T> {
  data?: T | null;
  errors?: Array<{ message: string; extensions?: { code?: string } }>;
}

/** A GraphQL client over a bounded pool of keep-alive connections to the gateway (the load generator's one client). */
function gatewayClient(gatewayUrl: string) {
  const url = new URL(gatewayUrl);
  const pool = new Pool(url.origin, { connections: 128, keepAliveTimeout: 30_000 });
  return {
    async query<T>(query: string, variables: Record<string, unknown>, token?: string): Promise<GraphQLAnswer<T> & { status: number }> {
      const res = await pool.request({
        path: url.pathname,
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify({ query, variables }),
      });
      const text = await res.body.text();
      try {
        return { status: res.statusCode, ...(JSON.parse(text) as GraphQLAnswer<T>) };
      } catch {
        return { status: res.statusCode, errors: [{ message: `non-JSON response: ${text.slice(0, 200)}` }] };
      }
    },
    close: () => pool.close(),
  };
}
type GatewayClient = ReturnType<typeof gatewayClient>;

/** Runs `fn` over `items`, `width` at a time. */
async function inParallel<T>(items: readonly T[], width: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i] as T, i);
      }
    }),
  );
}

/** Retries `fn` (something that waits on event propagation) until it resolves, or throws its last error after `ms`. */
async function eventually<T>(what: string, fn: () => Promise<T>, ms = 60_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > until) throw new Error(`${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      await delay(200);
    }
  }
}

/**
 * Knows which checkouts have ended: one query of orders' checkout_view per `pollMs` for every
 * checkout still open (its primary key), whatever their number.
 */
class TerminalWatcher {
  private readonly open = new Set<string>();
  private readonly waiters = new Map<string, () => void>();
  /** When the poller first read each checkout as terminal (this process's clock). */
  readonly seenAt = new Map<string, number>();
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly orders: pg.Pool,
    private readonly pollMs: number,
  ) {}

  start(): void {
    this.loop = (async () => {
      while (!this.stopped) {
        await this.tick().catch((err: unknown) => process.stderr.write(`poll failed (retried): ${String(err)}\n`));
        await delay(this.pollMs);
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }

  add(checkoutId: string): void {
    if (!this.seenAt.has(checkoutId)) this.open.add(checkoutId);
  }

  /** Resolves when `checkoutId` has been read as terminal. */
  /** Resolves when `checkoutId` has been read as terminal, or after `timeoutMs` (a stuck checkout must not stop its customer for good). */
  ended(checkoutId: string, timeoutMs: number): Promise<void> {
    this.add(checkoutId);
    if (this.seenAt.has(checkoutId)) return Promise.resolve();
    return new Promise((done) => {
      const timer = setTimeout(() => {
        this.waiters.delete(checkoutId);
        done();
      }, timeoutMs);
      this.waiters.set(checkoutId, () => {
        clearTimeout(timer);
        done();
      });
    });
  }

  /** Waits until nothing is open, or `ms` passed; returns how many are still open. */
  async drain(ms: number): Promise<number> {
    const until = Date.now() + ms;
    while (this.open.size > 0 && Date.now() < until) await delay(this.pollMs);
    return this.open.size;
  }

  private async tick(): Promise<void> {
    if (this.open.size === 0) return;
    const ids = [...this.open];
    const { rows } = await this.orders.query<{ id: string }>('select id from checkout_view where id = any($1) and status = any($2)', [
      ids,
      TERMINAL,
    ]);
    const now = Date.now();
    for (const { id } of rows) {
      this.open.delete(id);
      this.seenAt.set(id, now);
      this.waiters.get(id)?.();
      this.waiters.delete(id);
    }
  }
}

interface DraftOrder {
  id: string;
  customer: string;
}

interface Sent {
  order: DraftOrder;
  /** Date.now() when the mutation was sent. */
  startedAt: number;
  mutationMs: number;
  checkoutId: string | undefined;
}

async function main(argv: string[]): Promise<void> {
  const options = parseOptions(argv);
  if (options.report) {
    regenerateFrom(options.report, assertCheckoutResults, writeMeasurements, DOCS_PATH);
    return;
  }
  const startedAt = new Date();
  const loadAtStart = load1();
  const t0 = performance.now();
  const log = (line: string) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${line}\n`);

  const run = randomBytes(4).toString('hex');
  const workDir = mkdtempSync(join(tmpdir(), 'shop-bench-checkout-'));
  const namespace = `benchco${run}`;
  const base = new URL(testServices.postgres);
  const dbUrl = (s: SubgraphName) => {
    const u = new URL(base);
    u.pathname = `/bench_checkout_${s}_${run}`;
    return u.toString();
  };
  const amqpUrl = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
  const names = SUBGRAPHS.map((s) => s.name);
  let main: Services | undefined;
  let payments: Services | undefined;
  let redis: BenchRedis | undefined;
  let client: GatewayClient | undefined;
  let watcher: TerminalWatcher | undefined;
  const pools: Partial<Record<SubgraphName, pg.Pool>> = {};
  const cleanup = async () => {
    await watcher?.stop();
    await client?.close().catch(() => undefined);
    await main?.stop();
    await payments?.stop();
    await redis?.stop();
    rmSync(workDir, { recursive: true, force: true });
    await Promise.all(Object.values(pools).map((p) => p.end()));
    await Promise.all(names.map((s) => dropPostgresDatabase(dbUrl(s)).catch(() => undefined)));
    const conn = await connect(amqpUrl).catch(() => undefined);
    if (conn) {
      const ch = await conn.createChannel();
      for (const q of [...names, 'gateway']) {
        await ch.deleteQueue(`${namespace}.${q}`).catch(() => undefined);
        await ch.deleteQueue(`${namespace}.${q}.dlq`).catch(() => undefined);
      }
      await ch.deleteExchange(`${namespace}.events`).catch(() => undefined);
      await conn.close();
    }
  };
  let interrupted = false;
  process.once('SIGINT', () => {
    interrupted = true;
    void cleanup().finally(() => process.exit(130));
  });

  try {
    redis = await startRedis(join(workDir, 'redis.log')).catch(() => undefined);
    // Production-like: NODE_ENV=production (masked errors, no introspection), the saga's and the
    // provider's defaults, Redis for the caches when a private redis-server can be started. Two
    // exceptions, both because one machine stands in for many clients: no per-address rate limit
    // (every request comes from 127.0.0.1) and warn-level logs (the processes share two cores).
    const env: Record<string, string> = {
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      RATE_LIMIT_POINTS: '0',
      SUPERGRAPH_WATCH: 'false',
      AMQP_NAMESPACE: namespace,
      SEED_USERS: String(options.customers),
      SEED_PRODUCTS: String(options.products),
      SEED_REVIEWS: '100',
      SUBGRAPH_SECRET: randomBytes(32).toString('hex'),
      ...(redis ? { REDIS_URL: redis.url } : {}),
    };
    const effective = { ...process.env, ...env };
    const checkoutConfig = loadCheckoutConfig(effective);
    const providerConfig = loadPaymentsProviderConfig(effective);
    const paymentsPort = await freePort();
    const startPayments = (declineRate: number) =>
      startServices({
        only: ['payments'],
        gateway: false,
        ports: { payments: paymentsPort },
        databaseUrl: dbUrl,
        env: { ...env, PSP_DECLINE_RATE: String(declineRate) },
        stdio: 'inherit',
      });
    log(`starting the services (namespace ${namespace}; ${options.customers} customers, ${options.products} products)...`);
    payments = await startPayments(options.declineRates[0] as number);
    main = await startServices({
      only: names.filter((n) => n !== 'payments'),
      ports: { gateway: 0, accounts: 0, products: 0, inventory: 0, reviews: 0, orders: 0, payments: paymentsPort },
      databaseUrl: dbUrl,
      env,
      stdio: 'inherit',
    });
    const services = main;
    for (const s of ['orders', 'payments', 'inventory'] as const) pools[s] = new pg.Pool({ connectionString: dbUrl(s), max: 2 });
    const orders = pools.orders as pg.Pool;
    log(`services ready; gateway ${services.gatewayUrl}`);
    const gateway = gatewayClient(services.gatewayUrl);
    client = gateway;

    // Orders learns customers and prices from accounts' and products' events: wait for them.
    await eventually(
      'orders never heard of every seed customer and product',
      async () => {
        const { rows } = await orders.query<{ c: string; p: string }>(
          'select (select count(*) from customers) as c, (select count(*) from product_prices) as p',
        );
        const row = rows[0];
        if (Number(row?.c) < options.customers || Number(row?.p) < options.products)
          throw new Error(`${row?.c} customers, ${row?.p} prices so far`);
      },
      120_000,
    );

    const signIn = async (email: string) => {
      const res = await gateway.query<{ signIn: { accessToken: string } }>(
        'mutation SignIn($email: String!, $password: String!) { signIn(email: $email, password: $password) { accessToken } }',
        { email, password: DEV_PASSWORD },
      );
      const token = res.data?.signIn.accessToken;
      if (!token) throw new Error(`signIn as ${email} failed: HTTP ${res.status} ${JSON.stringify(res.errors)}`);
      return token;
    };
    const admin = await signIn(SEED_ADMIN.email);
    const customers = [...seedUsers({ users: options.customers, products: options.products, reviews: 0 })];
    const tokens = new Map<string, string>();
    await inParallel(customers, 4, async (u) => void tokens.set(u.id, await signIn(u.email)));
    log(`${tokens.size} customers signed in through the gateway`);
    const products = Array.from({ length: options.products }, (_, i) => productId(i + 1));
    await inParallel(products, 8, async (p) => {
      const res = await gateway.query(
        'mutation ($p: ID!, $q: Int!) { setStock(productId: $p, quantity: $q) { id } }',
        { p, q: 1_000_000 },
        admin,
      );
      if (res.errors?.length) throw new Error(`setStock ${p}: ${JSON.stringify(res.errors)}`);
    });

    const ask = async <T>(query: string, variables: Record<string, unknown>, token: string): Promise<T> => {
      const res = await gateway.query<T>(query, variables, token);
      if (res.errors?.length || !res.data) throw new Error(`HTTP ${res.status}: ${JSON.stringify(res.errors)}`);
      return res.data;
    };
    // One request per draft order: createOrder with a key of the bench's, then its lines (root
    // mutation fields run in order) on the order's id, which is that key after the customer's slot.
    const lineFields = Array.from(
      { length: options.lines },
      (_, l) => `l${l}: addOrderLine(orderId: $id, productId: $p${l}, quantity: 1) { id }`,
    ).join(' ');
    const createDraft = `mutation ($key: ID!, $id: ID!, ${Array.from({ length: options.lines }, (_, l) => `$p${l}: ID!`).join(', ')}) { createOrder(id: $key) { id } ${lineFields} }`;
    let serial = 0;
    const makeOrders = async (count: number): Promise<DraftOrder[]> => {
      const made = Array.from({ length: count }, () => {
        const i = serial++;
        const customer = (customers[i % customers.length] as { id: string }).id;
        return { id: orderIdFor(customer, `bco-${run}-${i}`), customer, i };
      });
      await inParallel(made, 16, async (order) => {
        const vars: Record<string, unknown> = {};
        // Products spread over the catalogue: concurrent checkouts share some stock rows, as shoppers do.
        for (let l = 0; l < options.lines; l++) vars[`p${l}`] = products[(order.i * 7 + l * 13) % products.length];
        // A failed attempt may have created the order without all its lines: the next one makes another.
        for (let attempt = 1; ; attempt++) {
          const key = attempt === 1 ? `bco-${run}-${order.i}` : `bco-${run}-${order.i}-${attempt - 1}`;
          order.id = orderIdFor(order.customer, key);
          try {
            const made = await ask<{ createOrder: { id: string } }>(
              createDraft,
              { ...vars, key, id: order.id },
              tokens.get(order.customer) as string,
            );
            if (made.createOrder.id !== order.id) throw new Error(`createOrder made ${made.createOrder.id}, not ${order.id}`);
            return;
          } catch (err) {
            if (attempt === 5)
              throw new Error(`draft order ${order.id}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
            await delay(200);
          }
        }
      });
      return made.map(({ id, customer }) => ({ id, customer }));
    };

    watcher = new TerminalWatcher(orders, POLL_MS);
    watcher.start();
    const terminal = watcher;

    const send = async (order: DraftOrder): Promise<Sent> => {
      const startedAt = Date.now();
      const t = performance.now();
      let checkoutId: string | undefined;
      try {
        const res = await gateway.query<{ checkout: { id: string } }>(
          CHECKOUT,
          { id: order.id, key: `k-${order.id}` },
          tokens.get(order.customer),
        );
        checkoutId = res.errors?.length ? undefined : res.data?.checkout.id;
        if (!checkoutId) process.stderr.write(`checkout ${order.id} refused: HTTP ${res.status} ${JSON.stringify(res.errors)}\n`);
      } catch (err) {
        process.stderr.write(`checkout ${order.id} failed: ${String(err)}\n`);
      }
      const sent = { order, startedAt, mutationMs: performance.now() - t, checkoutId };
      if (checkoutId) terminal.add(checkoutId);
      return sent;
    };

    /** Open loop: `rate` a second on schedule (at most 1,000 mutations in flight). */
    const openLoop = async (pool: DraftOrder[], rate: number): Promise<Sent[]> => {
      const sent: Sent[] = [];
      const inflight = new Set<Promise<void>>();
      const start = performance.now();
      for (const [i, order] of pool.entries()) {
        const wait = start + (i * 1000) / rate - performance.now();
        if (wait >= 1) await delay(wait);
        if (inflight.size >= 1000) await Promise.race(inflight);
        const p: Promise<void> = send(order)
          .then((s) => void sent.push(s))
          .finally(() => inflight.delete(p));
        inflight.add(p);
      }
      await Promise.all(inflight);
      return sent;
    };

    /** Closed loop: `workers` customers, each checking out, waiting for the end, and checking out the next order until `seconds` pass. */
    const closedLoop = async (pool: DraftOrder[], workers: number, seconds: number): Promise<{ sent: Sent[]; exhausted: boolean }> => {
      const sent: Sent[] = [];
      const until = performance.now() + seconds * 1000;
      let next = 0;
      await Promise.all(
        Array.from({ length: workers }, async () => {
          while (performance.now() < until && next < pool.length) {
            const s = await send(pool[next++] as DraftOrder);
            sent.push(s);
            if (s.checkoutId) await terminal.ended(s.checkoutId, options.drainMs);
          }
        }),
      );
      const exhausted = next >= pool.length;
      if (exhausted) log(`  the pool of ${pool.length} draft orders ran out before ${seconds} s`);
      return { sent, exhausted };
    };

    const processes = () => ({ ...services.processes, payments: payments?.processes.payments });
    const cpuNow = (): Record<string, number> | null => {
      const out: Record<string, number> = { bench: ownCpuSeconds() };
      for (const [name, child] of Object.entries(processes())) {
        const s = child?.pid === undefined ? undefined : cpuSeconds(child.pid);
        if (s === undefined) return null;
        out[name] = s;
      }
      return out;
    };

    /** The lowest median start-to-terminal time of a warm-up or a load so far (ms): sizes the closed loops' pools. */
    let quickest = Number.POSITIVE_INFINITY;
    const measure = async (declineRate: number, load: LoadSpec, pool: DraftOrder[]): Promise<StageResult> => {
      const loadAverage = sampleLoadAverage();
      const cpuBefore = cpuNow();
      const began = performance.now();
      const { sent, exhausted } =
        load.kind === 'rate'
          ? { sent: await openLoop(pool, load.value), exhausted: false }
          : await closedLoop(pool, load.value, load.seconds);
      const sendSeconds = (performance.now() - began) / 1000;
      const unfinished = await terminal.drain(options.drainMs);
      const cpuAfter = cpuNow();
      const loadDuring = loadAverage();
      const ids = sent.flatMap((s) => (s.checkoutId ? [s.checkoutId] : []));
      const { rows } = await orders.query<{
        id: string;
        order_id: string;
        status: string;
        reason: string | null;
        amount: string;
        steps: string;
        started_at: string;
        ended_at: string | null;
      }>('select id, order_id, status, reason, amount, steps, started_at, ended_at from checkout_view where id = any($1)', [ids]);
      const byId = new Map(rows.map((r) => [r.id, r]));
      const latencies: number[] = [];
      const byOutcome = new Map<string, number[]>();
      const saga: number[] = [];
      const visible: number[] = [];
      const steps = new Map<string, number[]>();
      const outcomes: Record<string, number> = {};
      let firstStart = Number.POSITIVE_INFINITY;
      let lastEnd = 0;
      for (const s of sent) {
        const row = s.checkoutId ? byId.get(s.checkoutId) : undefined;
        if (!row?.ended_at || !TERMINAL.includes(row.status)) continue;
        const ended = Date.parse(row.ended_at);
        const outcome = row.status === 'CONFIRMED' ? 'CONFIRMED' : (row.reason ?? 'REJECTED');
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
        latencies.push(ended - s.startedAt);
        byOutcome.set(row.status, [...(byOutcome.get(row.status) ?? []), ended - s.startedAt]);
        saga.push(ended - Date.parse(row.started_at));
        const seen = terminal.seenAt.get(row.id);
        if (seen !== undefined) visible.push(Math.max(0, seen - ended));
        for (const step of JSON.parse(row.steps) as Array<{ name: string; startedAt: string; endedAt: string | null }>) {
          if (step.endedAt) steps.set(step.name, [...(steps.get(step.name) ?? []), Date.parse(step.endedAt) - Date.parse(step.startedAt)]);
        }
        firstStart = Math.min(firstStart, s.startedAt);
        lastEnd = Math.max(lastEnd, ended);
      }
      const completed = latencies.length;
      quickest = Math.min(quickest, median(latencies));
      const confirmedRows = rows.filter((r) => r.status === 'CONFIRMED');
      const pay = await (pools.payments as pg.Pool).query<{ n: string; amount: string | null }>(
        "select count(*) as n, sum(amount) as amount from payments where checkout_id = any($1) and status = 'CAPTURED'",
        [ids],
      );
      const reservations = await (pools.inventory as pg.Pool).query<{ status: string; n: string }>(
        'select status, count(*) as n from reservations where checkout_id = any($1) group by status',
        [ids],
      );
      const reservationCount = (status: string) => Number(reservations.rows.find((r) => r.status === status)?.n ?? 0);
      // A sample of orders read back through the gateway, as their customer: what a client would see.
      const sample = sent
        .filter((s) => s.checkoutId && byId.get(s.checkoutId)?.ended_at)
        .filter((_, i, all) => i % Math.max(1, Math.floor(all.length / 20)) === 0);
      let mismatches = 0;
      for (const s of sample) {
        const data = await ask<{ order: { status: string; checkout: { id: string; status: string } | null } | null }>(
          ORDER_STATE,
          { id: s.order.id },
          tokens.get(s.order.customer) as string,
        );
        const row = byId.get(s.checkoutId as string);
        if (data.order?.checkout?.id !== row?.id || data.order?.checkout?.status !== row?.status || data.order?.status !== row?.status)
          mismatches++;
      }
      const checks = {
        confirmed: confirmedRows.length,
        confirmedAmount: confirmedRows.reduce((sum, r) => sum + Number(r.amount), 0),
        capturedPayments: Number(pay.rows[0]?.n ?? 0),
        capturedAmount: Number(pay.rows[0]?.amount ?? 0),
        heldReservations: reservationCount('HELD'),
        committedReservations: reservationCount('COMMITTED'),
        gatewaySample: sample.length,
        gatewayMismatches: mismatches,
      };
      const consistent =
        checks.capturedPayments === checks.confirmed &&
        checks.capturedAmount === checks.confirmedAmount &&
        checks.committedReservations === checks.confirmed &&
        checks.heldReservations === 0 &&
        mismatches === 0;
      const cpuMsPerCheckout =
        cpuBefore && cpuAfter && completed > 0
          ? Object.fromEntries(
              Object.keys(cpuAfter).map((k) => [k, round2((((cpuAfter[k] ?? 0) - (cpuBefore[k] ?? 0)) * 1000) / completed)]),
            )
          : null;
      return {
        declineRate,
        load,
        sent: sent.length,
        mutationErrors: sent.filter((s) => !s.checkoutId).length,
        ranSeconds: round2(sendSeconds),
        poolExhausted: exhausted,
        sentPerSecond: round2(sent.length / sendSeconds),
        completedPerSecond: completed > 0 ? round2(completed / Math.max(1e-3, (lastEnd - firstStart) / 1000)) : 0,
        unfinished,
        outcomes,
        latencyMs: summarise(latencies),
        byOutcome: Object.fromEntries([...byOutcome].map(([k, v]) => [k, summarise(v)])),
        mutationMs: summarise(sent.map((s) => s.mutationMs)),
        sagaMs: summarise(saga),
        steps: Object.fromEntries([...steps].map(([k, v]) => [k, summarise(v)])),
        visibleLagMs: summarise(visible),
        cpuMsPerCheckout,
        loadAverage: loadDuring,
        checks: { ...checks, consistent },
      };
    };

    /**
     * Draft orders a load needs: rate x seconds for an open loop; for a closed loop, what its
     * customers could use if every checkout took the lowest median seen so far (a warm-up's, at a
     * rate the stack sustains: more in flight only takes longer; at most 1 s, should the warm-up
     * have been slow), plus a quarter, so the pool does not run out without making far too many
     * (creating orders is slow on a busy machine).
     */
    const poolSize = (load: LoadSpec) =>
      Math.ceil(
        load.kind === 'rate' ? load.value * load.seconds : (load.value * load.seconds * 1250) / Math.min(1000, Math.max(50, quickest)),
      );
    /** Waits until orders, inventory and payments have relayed every event (the set-up's own traffic has settled). */
    const quiet = () =>
      eventually(
        'outboxes never drained',
        async () => {
          for (const s of ['orders', 'inventory', 'payments'] as const) {
            const { rows } = await (pools[s] as pg.Pool).query<{ n: string }>(
              'select count(*) as n from outbox where published_at is null',
            );
            if (Number(rows[0]?.n) > 0) throw new Error(`${s}: ${rows[0]?.n} events not relayed`);
          }
        },
        120_000,
      );
    const stages: StageResult[] = [];
    const line = (s: StageResult) =>
      `decline ${s.declineRate}, ${s.load.kind === 'rate' ? `${s.load.value}/s offered` : `${s.load.value} in flight`} for ${s.load.seconds} s: ` +
      `${s.sent} sent, ${s.completedPerSecond} completed/s; start to terminal p50 ${s.latencyMs.p50} p95 ${s.latencyMs.p95} ` +
      `p99 ${s.latencyMs.p99} max ${s.latencyMs.max} ms; ${JSON.stringify(s.outcomes)}; unfinished ${s.unfinished}, ` +
      `errors ${s.mutationErrors}; consistent ${s.checks.consistent}; load ${s.loadAverage.mean}`;
    // Load by load, each decline rate in turn (forth, then back: fewer restarts of payments), so
    // that the columns compared side by side ran minutes apart at most, on a machine whose other
    // work comes and goes.
    let running = options.declineRates[0] as number;
    let warmedUp = false;
    for (const [l, load] of options.loads.entries()) {
      for (const declineRate of l % 2 === 0 ? options.declineRates : [...options.declineRates].reverse()) {
        if (declineRate !== running) {
          log(`restarting payments with PSP_DECLINE_RATE=${declineRate}...`);
          await payments.stop();
          payments = await startPayments(declineRate);
          running = declineRate;
          warmedUp = false;
        }
        if (!warmedUp) {
          const warm = await makeOrders(options.warmup);
          await quiet();
          log(`warm-up (PSP_DECLINE_RATE=${declineRate}): ${warm.length} checkouts at ${WARMUP_RATE}/s, not reported`);
          const warmed = await openLoop(warm, WARMUP_RATE);
          await terminal.drain(options.drainMs);
          quickest = Math.min(quickest, await medianLatency(orders, warmed));
          warmedUp = true;
        }
        const size = poolSize(load);
        log(`creating ${size} draft orders (untimed)...`);
        const pool = await makeOrders(size);
        await quiet();
        const stage = await measure(declineRate, load, pool);
        stages.push(stage);
        log(line(stage));
      }
    }

    const results: CheckoutBenchResults = {
      kind: 'checkout',
      ...runRecord(options.mode, argv, startedAt, loadAtStart),
      settings: {
        customers: options.customers,
        products: options.products,
        linesPerOrder: options.lines,
        env: Object.fromEntries(
          Object.entries(env).map(([k, v]) => [
            k,
            k === 'SUBGRAPH_SECRET'
              ? '(generated)'
              : k === 'AMQP_NAMESPACE'
                ? 'benchco<run>'
                : k === 'REDIS_URL'
                  ? '(private redis-server)'
                  : v,
          ]),
        ),
        checkout: {
          stepTimeoutMs: checkoutConfig.stepTimeoutMs,
          maxStepTimeoutMs: checkoutConfig.maxStepTimeoutMs,
          maxAttempts: checkoutConfig.maxAttempts,
          reservationHoldMs: checkoutConfig.reservationHoldMs,
          timerIntervalMs: checkoutConfig.timerIntervalMs,
        },
        provider: {
          latencyMs: providerConfig.latencyMs,
          timeoutRate: providerConfig.timeoutRate,
          maxAttempts: providerConfig.maxAttempts,
          callTimeoutMs: providerConfig.callTimeoutMs,
        },
        postgres: await postgresVersion(orders),
        rabbitmq: await rabbitmqVersion(amqpUrl),
        redis: redis ? 'a private redis-server on loopback, no persistence' : 'none (in-memory caches)',
        pollMs: POLL_MS,
        warmupCheckouts: options.warmup,
        warmupPerSecond: WARMUP_RATE,
      },
      stages: stages,
      notes: options.mode === 'full' ? [] : [`A ${options.mode} run: short loads, its numbers are indicative only`],
    };
    writeResults(results, {
      name: 'checkout',
      out: options.out,
      check: assertCheckoutResults,
      log,
      docs: options.writeDocs ? { path: DOCS_PATH, write: (file) => writeMeasurements(results, file) } : undefined,
    });
  } finally {
    if (!interrupted) await cleanup();
  }
}

const median = (values: number[]) =>
  values.length === 0 ? Number.POSITIVE_INFINITY : ([...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number);

/** The median start-to-terminal time of `sent` (ms). */
async function medianLatency(orders: pg.Pool, sent: Sent[]): Promise<number> {
  const started = new Map(sent.flatMap((s) => (s.checkoutId ? [[s.checkoutId, s.startedAt] as const] : [])));
  const { rows } = await orders.query<{ id: string; ended_at: string | null }>(
    'select id, ended_at from checkout_view where id = any($1)',
    [[...started.keys()]],
  );
  const times = rows.flatMap((r) => (r.ended_at ? [Date.parse(r.ended_at) - (started.get(r.id) as number)] : []));
  return median(times);
}

async function postgresVersion(pool: pg.Pool): Promise<string> {
  const { rows } = await pool.query<{ v: string; fsync: string }>(
    "select current_setting('server_version') as v, current_setting('fsync') as fsync",
  );
  return `PostgreSQL ${rows[0]?.v ?? '?'} (fsync ${rows[0]?.fsync ?? '?'})`;
}

async function rabbitmqVersion(url: string): Promise<string> {
  const conn = await connect(url);
  try {
    const props = (conn as unknown as { connection: { serverProperties?: { version?: string } } }).connection.serverProperties;
    return `RabbitMQ ${props?.version ?? '?'}`;
  } finally {
    await conn.close();
  }
}

runBench('bench:checkout', main);
