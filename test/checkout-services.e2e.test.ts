// The checkout saga's acceptance of issue #15 in the services mode: every subgraph and the gateway
// in its own process, each on a fresh PostgreSQL database of its own, talking through RabbitMQ
// under a namespace of this run's own. Customers sign in through the gateway and check out
// through it. The logic is in checkout.e2e.test.ts (embedded); here the same saga with real
// processes: no oversell under 200 concurrent checkouts, SIGKILLs of orders, inventory and
// payments in the middle of 200 more (nothing charged twice, including when the provider timed out
// after charging), and payments frozen for longer than the reservation hold.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { DEV_PASSWORD } from '@shop/accounts';
import { chance } from '@shop/payments';
import { SEED_ADMIN, prng, seedUsers } from '@shop/seed';
import { REPO_ROOT, type Services, type SubgraphName, startServices } from '@shop/stack';
import { type GraphQLResponse, requireService, signIn, tempPostgres } from '@shop/testing';
import { ShopClient } from './lib/shop-client';

jest.setTimeout(240_000);

const SUBGRAPHS = ['accounts', 'products', 'inventory', 'reviews', 'orders', 'payments'] as const;
const USERS = 210;
const DEBUG = Boolean(process.env.CHECKOUT_DEBUG);

/** Fast deadlines and sweeps, so a test waits for the saga and not for its timers. */
const FAST = {
  CHECKOUT_STEP_TIMEOUT_MS: '1000',
  CHECKOUT_MAX_STEP_TIMEOUT_MS: '4000',
  CHECKOUT_TIMER_INTERVAL_MS: '200',
  RESERVATION_SWEEP_INTERVAL_MS: '200',
  PSP_LATENCY_MS: '5',
  RATE_LIMIT_POINTS: '0',
  SUPERGRAPH_WATCH: 'false',
  // A killed subgraph: its fields fail fast once the breaker opens, and it is tried again soon.
  BREAKER_HALF_OPEN_MS: '500',
  SUBGRAPH_TIMEOUT_MS: '5000',
  SEED_USERS: String(USERS),
  SEED_PRODUCTS: '20',
  SEED_REVIEWS: '20',
};

interface OrderState {
  id: string;
  status: string;
  total: number;
  lines: Array<{ product: { id: string } | null; quantity: number }>;
  checkout: {
    id: string;
    status: string;
    reason: string | null;
    steps: Array<{ name: string; status: string; attempts: number; error: string | null }>;
  } | null;
  payment: { status: string; amount: number } | null;
}

const ORDER_STATE = `query ($id: ID!) { order(id: $id) { id status total lines { product { id } quantity }
  checkout { id status reason steps { name status attempts error } }
  payment { status amount } } }`;

const TERMINAL_CHECKOUT = ['CONFIRMED', 'REJECTED', 'REVERSED'];
const TERMINAL_ORDER = ['CONFIRMED', 'REJECTED', 'CANCELLED'];
const ended = (o: OrderState) => Boolean(o.checkout && TERMINAL_CHECKOUT.includes(o.checkout.status) && TERMINAL_ORDER.includes(o.status));

const user = (i: number) => `u${String(i).padStart(5, '0')}`;
const emails = new Map([SEED_ADMIN, ...seedUsers({ users: USERS, products: 20, reviews: 20 })].map((u) => [u.id, u.email]));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `fn` over `items`, at most `n` at a time; results in the items' order. */
async function limited<T, R>(items: readonly T[], n: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await fn(items[i] as T, i);
      }
    }),
  );
  return results;
}

/** One row of the provider simulator's ledger (subgraphs/payments/src/data/psp-ledger.ts). */
interface LedgerRow {
  idempotency_key: string;
  call: string | null;
  authorization_ref: string | null;
  amount: number | null;
  calls: number;
  status_calls: number;
  outcome: string | null;
  reference: string | null;
}

/** The services started for one describe, the databases under them and a client for each customer. */
class Shop extends ShopClient {
  private readonly pools = new Map<SubgraphName, pg.Pool>();
  /** Why checkout calls were not accepted (and sent again), by error code. */
  readonly refusals = new Map<string, number>();

  private constructor(
    readonly services: Services,
    readonly databases: Record<SubgraphName, { url: string; drop: () => Promise<void> }>,
    readonly env: Record<string, string>,
  ) {
    super(services.gatewayUrl, (userId) => {
      const email = emails.get(userId);
      return email ? signIn(services.gatewayUrl, email, DEV_PASSWORD) : Promise.reject(new Error(`no seed user ${userId}`));
    });
  }

  static async start(name: string, env: Record<string, string>): Promise<Shop> {
    await requireService('postgres');
    await requireService('amqp');
    const databases = Object.fromEntries(SUBGRAPHS.map((s) => [s, tempPostgres(`co_${name}_${s}`)])) as Shop['databases'];
    const all = { ...FAST, AMQP_NAMESPACE: `co-${name}-${randomBytes(4).toString('hex')}`, LOG_LEVEL: DEBUG ? 'warn' : 'error', ...env };
    const started = Date.now();
    let services: Services;
    try {
      services = await startServices({
        stdio: DEBUG ? 'inherit' : 'ignore',
        ports: { gateway: 0, accounts: 0, products: 0, inventory: 0, reviews: 0, orders: 0, payments: 0 },
        databaseUrl: (s) => databases[s].url,
        env: all,
      });
    } catch (err) {
      await Promise.all(Object.values(databases).map((d) => d.drop()));
      throw err;
    }
    console.log(`checkout services (${name}): seven processes ready in ${Date.now() - started} ms`);
    return new Shop(services, databases, all);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.end()));
    await this.services.stop();
    await Promise.all(Object.values(this.databases).map((d) => d.drop()));
  }

  /** A query on a service's own database: what the test reads behind the services' backs. */
  async sql<R extends pg.QueryResultRow>(service: SubgraphName, text: string, values: unknown[] = []): Promise<R[]> {
    let pool = this.pools.get(service);
    if (!pool) this.pools.set(service, (pool = new pg.Pool({ connectionString: this.databases[service].url, max: 2 })));
    return (await pool.query<R>(text, values)).rows;
  }

  /** Signs every one of `users` in through the gateway (a few at a time: argon2 is meant to be slow). */
  async signInAll(users: readonly string[]): Promise<void> {
    const started = Date.now();
    await limited(users, 4, (u) => this.token(u));
    console.log(`  ${users.length} customers signed in through the gateway in ${Date.now() - started} ms`);
  }

  /**
   * Starts the checkout, sending the same key again until the gateway answers (orders may be down
   * or restarting): what a client does, and the same key must give one checkout.
   */
  async checkout(userId: string, orderId: string, key: string, within = 60_000): Promise<{ id: string; sent: number }> {
    const until = Date.now() + within;
    for (let sent = 1; ; sent++) {
      const res = await this.try<{ checkout: { id: string } }>(
        userId,
        'mutation ($id: ID!, $key: String!) { checkout(orderId: $id, idempotencyKey: $key) { id } }',
        { id: orderId, key },
      ).catch((err: unknown) => ({ errors: [{ message: String(err) }], data: null }) as GraphQLResponse<{ checkout: { id: string } }>);
      if (res.data?.checkout) return { id: res.data.checkout.id, sent };
      for (const e of res.errors ?? []) {
        const code = String(e.extensions?.code ?? e.message.slice(0, 60));
        this.refusals.set(code, (this.refusals.get(code) ?? 0) + 1);
        if (DEBUG && code === 'INTERNAL_SERVER_ERROR') console.log(JSON.stringify(e));
      }
      if (Date.now() > until) throw new Error(`checkout of ${orderId} not accepted within ${within} ms: ${JSON.stringify(res.errors)}`);
      // Backing off (with jitter), as a client should: 200 clients resending at once would be a load test of their own.
      await sleep(Math.min(2000, 100 * 2 ** sent) * (0.5 + Math.random() / 2));
    }
  }

  async state(userId: string, orderId: string): Promise<OrderState> {
    return (await this.as<{ order: OrderState }>(userId, ORDER_STATE, { id: orderId })).order;
  }

  /**
   * Waits (polling through the gateway, a few orders at a time, bounded) until every order's
   * checkout has ended; returns the orders then and when the last one was seen ended. Errors
   * while a subgraph restarts are polled through.
   */
  async settled(owned: ReadonlyArray<{ userId: string; orderId: string }>, within: number): Promise<{ orders: OrderState[]; at: number }> {
    const until = Date.now() + within;
    const done = new Map<string, OrderState>();
    let last: Record<string, string> = {};
    for (;;) {
      const pending = owned.filter((o) => !done.has(o.orderId));
      await limited(pending, 8, async ({ userId, orderId }) => {
        const res = await this.try<{ order: OrderState }>(userId, ORDER_STATE, { id: orderId }).catch(() => undefined);
        const order = res?.data?.order;
        if (order && !res.errors?.length && ended(order)) done.set(orderId, order);
        else last[orderId] = order ? `${order.status}/${order.checkout?.status}` : JSON.stringify(res?.errors ?? 'no answer');
      });
      if (done.size === owned.length) return { orders: owned.map((o) => done.get(o.orderId) as OrderState), at: Date.now() };
      if (Date.now() > until) {
        const open = owned.filter((o) => !done.has(o.orderId));
        throw new Error(
          `${open.length} checkout(s) did not end within ${within} ms, e.g. ${JSON.stringify(open.slice(0, 5).map((o) => [o.orderId, last[o.orderId]]))}\n` +
            (await this.diagnose(open.slice(0, 3).map((o) => o.orderId))),
        );
      }
      last = {};
      await sleep(250);
    }
  }

  /** What orders holds on checkouts that did not end: their streams, timers and views, for the failure message. */
  async diagnose(orderIds: readonly string[]): Promise<string> {
    const lines: string[] = [];
    try {
      const keys = await this.sql<{ checkout_id: string; order_id: string }>(
        'orders',
        'select checkout_id, order_id from checkout_keys where order_id = any($1)',
        [orderIds],
      );
      for (const { checkout_id: id, order_id: orderId } of keys) {
        const events = await this.sql<{ version: number; type: string; payload: string; recorded_at: string }>(
          'orders',
          'select version, type, payload, recorded_at from es_events where stream_id = $1 order by version',
          [`checkout:${id}`],
        );
        const timers = await this.sql('orders', 'select * from checkout_timers where checkout_id = $1', [id]);
        const view = await this.sql('orders', 'select status, steps, version, ended_at from checkout_view where id = $1', [id]);
        lines.push(`${orderId} / ${id}: timers ${JSON.stringify(timers)}, view ${JSON.stringify(view)}`);
        for (const e of events.slice(0, 12)) lines.push(`  ${e.version} ${e.recorded_at} ${e.type} ${e.payload.slice(0, 300)}`);
        if (events.length > 12) lines.push(`  ... ${events.length - 12} more, the last: ${JSON.stringify(events.at(-1))}`);
        lines.push(`  payments: ${JSON.stringify(await this.sql('payments', 'select * from payments where checkout_id = $1', [id]))}`);
        for (const op of await this.sql('payments', 'select * from payment_operations where checkout_id = $1 order by seq', [id]))
          lines.push(`  operation: ${JSON.stringify(op)}`);
        const keys = await this.sql('payments', 'select * from psp_simulator_ledger where idempotency_key like $1', [`${id}:%`]);
        for (const k of keys) lines.push(`  psp: ${JSON.stringify(k)}`);
      }
      lines.push(`checkpoints ${JSON.stringify(await this.sql('orders', 'select * from es_checkpoints'))}`);
      lines.push(`now ${new Date().toISOString()}`);
    } catch (err) {
      lines.push(`diagnosis failed: ${String(err)}`);
    }
    return lines.join('\n');
  }

  /** The simulator's ledger: what the provider did, one row per idempotency key (`<checkoutId>:<call>`). */
  async ledger(): Promise<LedgerRow[]> {
    const rows = await this.sql<LedgerRow>('payments', 'select * from psp_simulator_ledger');
    return rows.map((r) => ({
      ...r,
      calls: Number(r.calls),
      status_calls: Number(r.status_calls),
      amount: r.amount === null ? null : Number(r.amount),
    }));
  }

  /** `npm run sagas -- stuck` against this run's orders database. */
  sagasStuck(): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn('npm', ['run', '-s', 'sagas', '--', 'stuck'], {
        cwd: REPO_ROOT,
        env: { ...process.env, ORDERS_DATABASE_URL: this.databases.orders.url, LOG_LEVEL: 'error' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.once('error', reject);
      child.once('exit', (code) => resolve({ code, stdout, stderr }));
    });
  }
}

const checkoutOf = (key: string) => key.slice(0, key.lastIndexOf(':'));
const approved = (rows: readonly LedgerRow[], call: string) => rows.filter((r) => r.call === call && r.outcome === 'approved');
const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);

/**
 * Which call under a key did the provider's work, by the simulator's own dice (a function of its
 * seed, the key and the call's number under the key): true when that call timed out, i.e. the
 * provider charged and payments never heard so ("timed out but actually charged").
 */
function timedOutAfterCharging(row: LedgerRow, seed: string, timeoutRate: number, chargedRate: number): boolean {
  if (row.outcome !== 'approved') return false;
  for (let n = 1; n <= row.calls; n++) {
    const timeout = chance(seed, row.idempotency_key, n, 'timeout') < timeoutRate;
    if (!timeout) return false;
    if (chance(seed, row.idempotency_key, n, 'charged') < chargedRate) return true;
  }
  return false;
}

/**
 * Money invariants from the provider's side, over the whole ledger: each checkout authorized and
 * captured at most once, every order charged by one checkout at most, and no authorization left
 * held (each one captured or voided by the end).
 */
async function expectNoDoubleCharge(shop: Shop, orderOfCheckout: ReadonlyMap<string, string>): Promise<LedgerRow[]> {
  const ledger = await shop.ledger();
  const perCheckout = new Map<string, { authorize: number; capture: number }>();
  for (const r of ledger) {
    if (r.outcome !== 'approved' || (r.call !== 'authorize' && r.call !== 'capture')) continue;
    const c = perCheckout.get(checkoutOf(r.idempotency_key)) ?? { authorize: 0, capture: 0 };
    c[r.call] += 1;
    perCheckout.set(checkoutOf(r.idempotency_key), c);
  }
  expect([...perCheckout.values()].filter((c) => c.authorize > 1 || c.capture > 1)).toEqual([]);
  // Every ledger key belongs to a checkout this test started; one order, one charge.
  const charges = new Map<string, number>();
  for (const r of approved(ledger, 'capture')) {
    const order = orderOfCheckout.get(checkoutOf(r.idempotency_key));
    expect(order).toBeDefined();
    charges.set(order as string, (charges.get(order as string) ?? 0) + 1);
  }
  expect([...charges.values()].filter((n) => n > 1)).toEqual([]);
  // Each capture and void acts on an authorization of its own checkout; none is left held.
  const authorizations = new Map(approved(ledger, 'authorize').map((r) => [r.reference as string, checkoutOf(r.idempotency_key)]));
  const finished = new Set<string>();
  for (const r of [...approved(ledger, 'capture'), ...approved(ledger, 'void')]) {
    expect([r.idempotency_key, authorizations.get(r.authorization_ref as string)]).toEqual([
      r.idempotency_key,
      checkoutOf(r.idempotency_key),
    ]);
    finished.add(r.authorization_ref as string);
  }
  expect([...authorizations.keys()].filter((ref) => !finished.has(ref))).toEqual([]);
  expect(approved(ledger, 'refund')).toEqual([]);
  return ledger;
}

describe('checkout, services mode: 200 concurrent checkouts of 1 unit for 50 available', () => {
  let shop: Shop;
  beforeAll(async () => {
    shop = await Shop.start('oversell', {});
  }, 180_000);
  afterAll(() => shop?.stop());

  it('confirms exactly 50, rejects 150 OUT_OF_STOCK, charges the 50 once each and holds nothing', async () => {
    const buyers = Array.from({ length: 200 }, (_, i) => user(1 + i));
    await shop.signInAll([SEED_ADMIN.id, ...buyers]);
    await shop.setStock('p00005', 50);
    const orders = await limited(buyers, 20, (u) => shop.order(u, [['p00005', 1]]));

    const started = Date.now();
    const checkouts = await Promise.all(buyers.map((u, i) => shop.checkout(u, orders[i] as string, `k-${u}`)));
    const accepted = Date.now() - started;
    const { orders: settled, at } = await shop.settled(
      buyers.map((u, i) => ({ userId: u, orderId: orders[i] as string })),
      120_000,
    );
    console.log(
      `  no oversell: 200 checkouts accepted by the gateway in ${accepted} ms, all ended ${at - started} ms after the first was sent`,
    );

    expect(settled.map((o, i) => o.checkout?.id === checkouts[i]?.id)).toEqual(settled.map(() => true));
    const confirmed = settled.filter((o) => o.status === 'CONFIRMED');
    const rejected = settled.filter((o) => o.status === 'REJECTED');
    console.log(
      `  no oversell: ${confirmed.length} CONFIRMED, ${rejected.length} REJECTED (${rejected.filter((o) => o.checkout?.reason === 'OUT_OF_STOCK').length} OUT_OF_STOCK)`,
    );
    expect(confirmed.length).toBe(50);
    expect(rejected.length).toBe(150);
    expect(rejected.filter((o) => o.checkout?.reason !== 'OUT_OF_STOCK')).toEqual([]);
    expect(confirmed.filter((o) => !(o.payment?.status === 'CAPTURED' && o.payment.amount === o.total))).toEqual([]);
    expect(rejected.filter((o) => o.payment !== null)).toEqual([]);
    expect(await shop.stock('p00005')).toEqual({ quantityAvailable: 0, quantityOnHand: 0, quantityReserved: 0 });

    // Behind the services: inventory holds no reservation; the provider captured the 50 and nothing else.
    const reservations = await shop.sql<{ order_id: string; status: string }>('inventory', 'select order_id, status from reservations');
    const byOrder = new Map(reservations.map((r) => [r.order_id, r.status]));
    expect(reservations.filter((r) => r.status === 'HELD')).toEqual([]);
    expect(rejected.filter((o) => byOrder.get(o.id) !== 'REJECTED').map((o) => [o.id, byOrder.get(o.id)])).toEqual([]);
    expect(confirmed.filter((o) => byOrder.get(o.id) !== 'COMMITTED').map((o) => [o.id, byOrder.get(o.id)])).toEqual([]);
    const orderOfCheckout = new Map(settled.map((o) => [o.checkout?.id as string, o.id]));
    const ledger = await expectNoDoubleCharge(shop, orderOfCheckout);
    const captures = approved(ledger, 'capture');
    expect(captures).toHaveLength(50);
    expect(sum(captures.map((r) => r.amount ?? 0))).toBe(sum(confirmed.map((o) => o.total)));
    const rejectedCheckouts = new Set(rejected.map((o) => o.checkout?.id));
    expect(ledger.filter((r) => rejectedCheckouts.has(checkoutOf(r.idempotency_key)))).toEqual([]);
  });
});

/** The crash suite's seed: its orders, kill moments and the provider's dice. CHECKOUT_CRASH_SEED tries others. */
const CRASH_SEED = Number(process.env.CHECKOUT_CRASH_SEED ?? 15);
/** The provider's misbehaviour in the crash suite: some calls go unanswered, half of those after charging. */
const PSP = { seed: `crash-suite-${CRASH_SEED}`, timeoutRate: 0.2, chargedRate: 0.5 };

describe('checkout, services mode: SIGKILL of orders, inventory and payments during 200 checkouts', () => {
  let shop: Shop;
  beforeAll(async () => {
    shop = await Shop.start('crash', {
      PSP_SEED: PSP.seed,
      PSP_TIMEOUT_RATE: String(PSP.timeoutRate),
      PSP_TIMEOUT_CHARGED_RATE: String(PSP.chargedRate),
      PSP_DECLINE_RATE: '0.1',
      // A call unanswered for 300 ms has an unknown outcome (a dead worker's lease: 2 x 300 ms + 5 s).
      PSP_CALL_TIMEOUT_MS: '300',
      CHECKOUT_RESERVATION_HOLD_MS: '8000',
    });
  }, 180_000);
  afterAll(() => shop?.stop());

  it('ends every saga; no oversell, stock and money add up, nobody is charged twice', async () => {
    const stock: Record<string, number> = { p00001: 60, p00002: 40, p00003: 30 };
    const products = Object.keys(stock);
    const buyers = Array.from({ length: 200 }, (_, i) => user(1 + i));
    await shop.signInAll([SEED_ADMIN.id, ...buyers]);
    for (const [p, q] of Object.entries(stock)) await shop.setStock(p, q);
    // Seeded: the same orders and the same kill moments on every run.
    const rand = prng(CRASH_SEED);
    const linesOf = buyers.map(() => {
      const first = Math.floor(rand() * products.length);
      const count = rand() < 0.3 ? 2 : 1;
      return Array.from(
        { length: count },
        (_, j) => [products[(first + j) % products.length] as string, 1 + Math.floor(rand() * 2)] as const,
      );
    });
    const orders = await limited(buyers, 20, (u, i) => shop.order(u, linesOf[i] ?? []));
    const owned = buyers.map((u, i) => ({ userId: u, orderId: orders[i] as string }));
    const kills = (['orders', 'inventory', 'payments'] as const).map((name) => ({ name, at: 300 + Math.floor(rand() * 3000) }));

    const started = Date.now();
    const crashes = Promise.all(
      kills.map(async ({ name, at }) => {
        await sleep(at);
        const killed = Date.now();
        await shop.services.kill(name, 'SIGKILL');
        await shop.services.restart(name);
        return `${name} killed at +${killed - started} ms, ready again ${Date.now() - killed} ms later`;
      }),
    );
    const checkouts = await Promise.all(owned.map((o) => shop.checkout(o.userId, o.orderId, `k-${o.userId}`, 90_000)));
    const accepted = Date.now() - started;
    const killed = await crashes;
    const { orders: settled, at } = await shop.settled(owned, 120_000);
    const settleMs = at - started;

    // The same key gave one checkout, however often the client had to send it.
    expect(settled.filter((o, i) => o.checkout?.id !== checkouts[i]?.id)).toEqual([]);
    const confirmed = settled.filter((o) => o.status === 'CONFIRMED');
    const rejected = settled.filter((o) => o.status === 'REJECTED');
    const reasons: Record<string, number> = {};
    for (const o of rejected) reasons[o.checkout?.reason ?? '-'] = (reasons[o.checkout?.reason ?? '-'] ?? 0) + 1;
    /** Where the timed-out ones failed: the step and why. */
    const timeouts: Record<string, number> = {};
    for (const o of rejected.filter((r) => r.checkout?.reason === 'TIMED_OUT')) {
      const failed = o.checkout?.steps.find((s) => s.status === 'FAILED');
      const where = `${failed?.name}: ${failed?.error}`;
      timeouts[where] = (timeouts[where] ?? 0) + 1;
    }
    console.log(
      [
        `  crashes: ${killed.join('; ')}`,
        `  crashes: 200 checkouts accepted in ${accepted} ms (${sum(checkouts.map((c) => c.sent - 1))} resent with the same key after ${JSON.stringify(Object.fromEntries(shop.refusals))}), all ended ${settleMs} ms after the first was sent`,
        `  crashes: ${confirmed.length} CONFIRMED, ${rejected.length} REJECTED ${JSON.stringify(reasons)}; TIMED_OUT at ${JSON.stringify(timeouts)}`,
      ].join('\n'),
    );
    // Sent again while orders was down or busy, never refused for a fault of its own (a retry
    // before the first request projected its checkout used to be INTERNAL_SERVER_ERROR).
    expect(shop.refusals.get('INTERNAL_SERVER_ERROR') ?? 0).toBe(0);
    expect(confirmed.length + rejected.length).toBe(200);
    expect(confirmed.length).toBeGreaterThan(0);
    expect(reasons.OUT_OF_STOCK ?? 0).toBeGreaterThan(0);

    // Stock: what was confirmed left the shelf, nothing else did, nothing is held.
    const confirmedUnits: Record<string, number> = Object.fromEntries(products.map((p) => [p, 0]));
    for (const o of confirmed)
      for (const l of o.lines) confirmedUnits[l.product?.id as string] = (confirmedUnits[l.product?.id as string] ?? 0) + l.quantity;
    for (const p of products) {
      expect([p, confirmedUnits[p]! <= stock[p]!]).toEqual([p, true]);
      expect([p, await shop.stock(p)]).toEqual([
        p,
        { quantityAvailable: stock[p]! - confirmedUnits[p]!, quantityOnHand: stock[p]! - confirmedUnits[p]!, quantityReserved: 0 },
      ]);
    }
    const reservations = await shop.sql<{ order_id: string; status: string }>('inventory', 'select order_id, status from reservations');
    expect(reservations.filter((r) => r.status === 'HELD')).toEqual([]);
    const committed = new Set(reservations.filter((r) => r.status === 'COMMITTED').map((r) => r.order_id));
    expect(rejected.filter((o) => committed.has(o.id)).map((o) => o.id)).toEqual([]);

    // Money, as the graph shows it: each confirmed order captured for its total, no rejected one.
    expect(confirmed.filter((o) => !(o.payment?.status === 'CAPTURED' && o.payment.amount === o.total))).toEqual([]);
    expect(rejected.filter((o) => o.payment?.status === 'CAPTURED' || o.payment?.status === 'REFUNDED')).toEqual([]);

    // Money, as the provider's ledger has it.
    const orderOfCheckout = new Map(settled.map((o) => [o.checkout?.id as string, o.id]));
    const ledger = await expectNoDoubleCharge(shop, orderOfCheckout);
    const captures = approved(ledger, 'capture');
    expect(sum(captures.map((r) => r.amount ?? 0))).toBe(sum(confirmed.map((o) => o.total)));
    const rejectedCheckouts = new Set(rejected.map((o) => o.checkout?.id));
    expect(captures.filter((r) => rejectedCheckouts.has(checkoutOf(r.idempotency_key)))).toEqual([]);
    // The provider timed out after doing the work: payments learned it by asking for the key's
    // status (never by calling again under another key), and the money ended captured or voided.
    const charged = ledger.filter((r) => timedOutAfterCharging(r, PSP.seed, PSP.timeoutRate, PSP.chargedRate));
    const chargedAuthorizations = charged.filter((r) => r.call === 'authorize');
    const statuses = ledger.filter((r) => r.status_calls > 0).length;
    console.log(
      `  crashes: the provider timed out after doing the work ${charged.length} time(s) (${chargedAuthorizations.length} authorizations, ${charged.filter((r) => r.call === 'capture').length} captures); status asked for ${statuses} key(s); ${captures.length} captures for ${sum(captures.map((r) => r.amount ?? 0))} cents`,
    );
    expect(chargedAuthorizations.length).toBeGreaterThan(0);
    const payments = new Map(
      (await shop.sql<{ checkout_id: string; status: string }>('payments', 'select checkout_id, status from payments')).map((p) => [
        p.checkout_id,
        p.status,
      ]),
    );
    for (const r of chargedAuthorizations) {
      const checkoutId = checkoutOf(r.idempotency_key);
      const confirmedOrder = confirmed.some((o) => o.checkout?.id === checkoutId);
      expect([checkoutId, payments.get(checkoutId)]).toEqual([
        checkoutId,
        confirmedOrder ? 'CAPTURED' : expect.stringMatching(/^(VOIDED|FAILED)$/),
      ]);
    }

    // Nothing is left for an operator.
    const stuck = await shop.sagasStuck();
    expect([stuck.code, stuck.stdout.split('\n')[0]]).toEqual([0, expect.stringMatching(/^0 stuck checkout/)]);
  });
});

describe('checkout, services mode: payments frozen for longer than the reservation hold', () => {
  const HOLD_MS = 3000;
  let shop: Shop;
  beforeAll(async () => {
    shop = await Shop.start('expiry', { CHECKOUT_RESERVATION_HOLD_MS: String(HOLD_MS) });
  }, 180_000);
  afterAll(async () => {
    shop?.services.processes.payments?.kill('SIGCONT');
    await shop?.stop();
  });

  it('gives the stock back while payments is down, then rejects TIMED_OUT and charges nothing', async () => {
    const buyers = Array.from({ length: 10 }, (_, i) => user(1 + i));
    await shop.signInAll([SEED_ADMIN.id, ...buyers]);
    await shop.setStock('p00007', 20);
    const orders = await Promise.all(buyers.map((u) => shop.order(u, [['p00007', 2]])));
    const owned = buyers.map((u, i) => ({ userId: u, orderId: orders[i] as string }));

    const payments = shop.services.processes.payments;
    payments?.kill('SIGSTOP');
    const stopped = Date.now();
    let held = 0;
    let restoredAfter = -1;
    try {
      await Promise.all(owned.map((o) => shop.checkout(o.userId, o.orderId, `k-${o.userId}`)));
      // Held while the authorizations wait, then given back by inventory's sweeper after the hold.
      for (;;) {
        const s = await shop.stock('p00007');
        held = Math.max(held, s.quantityReserved);
        if (held > 0 && s.quantityAvailable === 20 && s.quantityReserved === 0) {
          restoredAfter = Date.now() - stopped;
          break;
        }
        if (Date.now() - stopped > 30_000) throw new Error(`stock not back 30 s after payments stopped: ${JSON.stringify(s)}`);
        await sleep(100);
      }
      // Still down, and for longer than the hold.
      expect(payments?.signalCode ?? null).toBeNull();
      expect(payments?.exitCode ?? null).toBeNull();
      await sleep(Math.max(0, HOLD_MS + 1000 - (Date.now() - stopped)));
    } finally {
      payments?.kill('SIGCONT');
    }
    const downMs = Date.now() - stopped;
    // Each of the ten was held, then expired by inventory's sweeper (their rows say so below).
    expect(held).toBeGreaterThan(0);
    expect(restoredAfter).toBeGreaterThanOrEqual(HOLD_MS);
    expect(downMs).toBeGreaterThan(HOLD_MS);

    const { orders: settled, at } = await shop.settled(owned, 60_000);
    console.log(
      `  expiry: payments frozen ${downMs} ms (hold ${HOLD_MS} ms); up to ${held} units held, all 20 back ${restoredAfter} ms after it froze; all 10 checkouts ended ${at - stopped - downMs} ms after it resumed`,
    );
    expect(settled.filter((o) => !(o.status === 'REJECTED' && o.checkout?.reason === 'TIMED_OUT'))).toEqual([]);
    expect(settled.filter((o) => o.payment?.status === 'CAPTURED')).toEqual([]);
    expect(await shop.stock('p00007')).toEqual({ quantityAvailable: 20, quantityOnHand: 20, quantityReserved: 0 });
    const reservations = await shop.sql<{ status: string }>('inventory', 'select status from reservations');
    expect(reservations.map((r) => r.status)).toEqual(Array.from({ length: 10 }, () => 'EXPIRED'));
    const ledger = await expectNoDoubleCharge(shop, new Map(settled.map((o) => [o.checkout?.id as string, o.id])));
    expect(approved(ledger, 'capture')).toEqual([]);
    const stuck = await shop.sagasStuck();
    expect([stuck.code, stuck.stdout.split('\n')[0]]).toEqual([0, expect.stringMatching(/^0 stuck checkout/)]);
  });
});
