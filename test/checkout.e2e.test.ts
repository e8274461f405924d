// The checkout saga end to end in the embedded mode (in-process bus, SQLite), through the
// gateway as clients use it: orders orchestrates, inventory reserves, payments charges the
// simulated provider. The logic here; the crash tests run the services mode.
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { SEED_ADMIN } from '@shop/seed';
import { STACK_TEST_ENV, type Stack, startStack } from '@shop/stack';
import { bearer } from '@shop/testing';
import { ShopClient } from './lib/shop-client';

jest.setTimeout(180_000);

/** Fast deadlines and sweeps, so a test waits for the saga and not for its timers. */
const FAST = {
  CHECKOUT_STEP_TIMEOUT_MS: '1000',
  CHECKOUT_TIMER_INTERVAL_MS: '100',
  RESERVATION_SWEEP_INTERVAL_MS: '100',
  PSP_LATENCY_MS: '2',
  RATE_LIMIT_POINTS: '0',
};

interface OrderState {
  id: string;
  status: string;
  total: number;
  checkout: {
    id: string;
    status: string;
    reason: string | null;
    outOfStock: Array<{ product: { id: string } | null; requested: number; available: number }> | null;
    steps: Array<{ name: string; status: string; attempts: number }>;
  } | null;
  payment: { status: string; amount: number } | null;
}

const ORDER_STATE = `query ($id: ID!) { order(id: $id) { id status total
  checkout { id status reason outOfStock { product { id } requested available } steps { name status attempts } }
  payment { status amount } } }`;

async function startShop(env: Record<string, string>, users = 30): Promise<Shop> {
  const stack = await startStack({
    env: { ...STACK_TEST_ENV, ...FAST, ...env },
    store: () => ({ sqlitePath: ':memory:' }),
    ports: { gateway: 0, accounts: 0, products: 0, inventory: 0, reviews: 0, orders: 0, payments: 0 },
    host: '127.0.0.1',
    logger: pino({ level: 'silent' }),
    seed: { users, products: 20, reviews: 40 },
  });
  return new Shop(stack);
}

class Shop extends ShopClient {
  constructor(readonly stack: Stack) {
    super(stack.gatewayUrl, (user) => stack.token(user, user === SEED_ADMIN.id ? { roles: ['customer', 'admin'] } : {}));
  }
  async checkout(user: string, orderId: string, key: string = randomUUID()): Promise<{ id: string; status: string }> {
    const data = await this.as<{ checkout: { id: string; status: string } }>(
      user,
      'mutation ($id: ID!, $key: String!) { checkout(orderId: $id, idempotencyKey: $key) { id status } }',
      { id: orderId, key },
    );
    return data.checkout;
  }
  async state(user: string, orderId: string): Promise<OrderState> {
    return (await this.as<{ order: OrderState }>(user, ORDER_STATE, { id: orderId })).order;
  }
  /** Waits (polling, bounded) until the order's checkout has ended, and returns the order then. */
  async settled(user: string, orderId: string, within = 60_000): Promise<OrderState> {
    const until = Date.now() + within;
    for (;;) {
      const state = await this.state(user, orderId);
      const ended = state.checkout && ['CONFIRMED', 'REJECTED', 'REVERSED'].includes(state.checkout.status);
      if (ended && ['CONFIRMED', 'REJECTED', 'CANCELLED'].includes(state.status)) return state;
      if (Date.now() > until) throw new Error(`order ${orderId} did not settle within ${within} ms: ${JSON.stringify(state)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

const user = (i: number) => `u${String(i).padStart(5, '0')}`;

describe('checkout, embedded', () => {
  let shop: Shop;
  beforeAll(async () => {
    shop = await startShop({}, 220);
  });
  afterAll(() => shop?.stack.stop());

  it('reserves, authorizes, commits, captures and confirms', async () => {
    await shop.setStock('p00001', 10);
    const orderId = await shop.order(user(1), [['p00001', 3]]);
    const started = await shop.checkout(user(1), orderId);
    expect(started.status).toBe('RUNNING');
    const order = await shop.settled(user(1), orderId);
    expect(order.status).toBe('CONFIRMED');
    expect(order.checkout?.status).toBe('CONFIRMED');
    expect(order.checkout?.steps.map((s) => `${s.name}:${s.status}`)).toEqual([
      'reserveStock:DONE',
      'authorizePayment:DONE',
      'commitStock:DONE',
      'capturePayment:DONE',
    ]);
    expect(order.payment).toEqual({ status: 'CAPTURED', amount: order.total });
    expect(await shop.stock('p00001')).toEqual({ quantityAvailable: 7, quantityOnHand: 7, quantityReserved: 0 });
  });

  it('returns the same checkout for the same key, sequentially and concurrently: one saga, one payment', async () => {
    await shop.setStock('p00002', 10);
    const first = await shop.order(user(2), [['p00002', 1]]);
    const a = await shop.checkout(user(2), first, 'same-key');
    const b = await shop.checkout(user(2), first, 'same-key');
    expect(b.id).toBe(a.id);

    const second = await shop.order(user(3), [['p00002', 1]]);
    const results = await Promise.all(Array.from({ length: 10 }, () => shop.checkout(user(3), second, 'concurrent-key')));
    expect(new Set(results.map((r) => r.id)).size).toBe(1);
    for (const id of [first, second]) expect((await shop.settled(user(id === first ? 2 : 3), id)).payment?.status).toBe('CAPTURED');
    // The key is the customer's, for one order: on another order it is refused.
    const third = await shop.order(user(2), [['p00002', 1]]);
    const reused = await shop.client.query(
      'mutation ($id: ID!) { checkout(orderId: $id, idempotencyKey: "same-key") { id } }',
      { id: third },
      bearer(await shop.token(user(2))),
    );
    expect(reused.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    expect((await shop.stock('p00002')).quantityAvailable).toBe(8);
  });

  it('rejects OUT_OF_STOCK with the short lines, holding and charging nothing', async () => {
    await shop.setStock('p00003', 1);
    await shop.setStock('p00004', 5);
    const orderId = await shop.order(user(4), [
      ['p00003', 2],
      ['p00004', 1],
    ]);
    await shop.checkout(user(4), orderId);
    const order = await shop.settled(user(4), orderId);
    expect(order.status).toBe('REJECTED');
    expect(order.checkout).toMatchObject({
      status: 'REJECTED',
      reason: 'OUT_OF_STOCK',
      outOfStock: [{ product: { id: 'p00003' }, requested: 2, available: 1 }],
    });
    expect(order.payment).toBeNull();
    // All or nothing: the line that could be had was not held either.
    expect(await shop.stock('p00003')).toEqual({ quantityAvailable: 1, quantityOnHand: 1, quantityReserved: 0 });
    expect(await shop.stock('p00004')).toEqual({ quantityAvailable: 5, quantityOnHand: 5, quantityReserved: 0 });
  });

  it('never oversells: 200 concurrent checkouts of 1 unit for 50 available', async () => {
    const sagas = async (outcome: string, reason: string) =>
      (await shop.stack.registry.getSingleMetric('sagas_total')?.get())?.values.find(
        (v) => v.labels.outcome === outcome && v.labels.reason === reason,
      )?.value ?? 0;
    const before = { confirmed: await sagas('CONFIRMED', ''), outOfStock: await sagas('REJECTED', 'OUT_OF_STOCK') };
    await shop.setStock('p00005', 50);
    const buyers = Array.from({ length: 200 }, (_, i) => user(11 + i));
    const orders = await Promise.all(buyers.map((u) => shop.order(u, [['p00005', 1]])));
    await Promise.all(buyers.map((u, i) => shop.checkout(u, orders[i] as string)));
    const settled = await Promise.all(buyers.map((u, i) => shop.settled(u, orders[i] as string, 120_000)));
    const confirmed = settled.filter((o) => o.status === 'CONFIRMED');
    const rejected = settled.filter((o) => o.status === 'REJECTED');
    expect(confirmed.length).toBe(50);
    expect(rejected.length).toBe(150);
    expect(rejected.every((o) => o.checkout?.reason === 'OUT_OF_STOCK')).toBe(true);
    expect(confirmed.every((o) => o.payment?.status === 'CAPTURED' && o.payment.amount === o.total)).toBe(true);
    expect(rejected.every((o) => o.payment === null)).toBe(true);
    expect(await shop.stock('p00005')).toEqual({ quantityAvailable: 0, quantityOnHand: 0, quantityReserved: 0 });
    // sagas_total counts each ending once.
    expect((await sagas('CONFIRMED', '')) - before.confirmed).toBe(50);
    expect((await sagas('REJECTED', 'OUT_OF_STOCK')) - before.outOfStock).toBe(150);
  });

  it('refunds and restocks when a confirmed order is cancelled (the reverse saga)', async () => {
    await shop.setStock('p00006', 4);
    const orderId = await shop.order(user(5), [['p00006', 4]]);
    await shop.checkout(user(5), orderId);
    expect((await shop.settled(user(5), orderId)).status).toBe('CONFIRMED');
    expect((await shop.stock('p00006')).quantityAvailable).toBe(0);
    const cancelled = await shop.as<{ cancelOrder: { status: string } }>(
      user(5),
      'mutation ($id: ID!) { cancelOrder(orderId: $id) { status } }',
      {
        id: orderId,
      },
    );
    expect(cancelled.cancelOrder.status).toBe('CANCELLED');
    const order = await shop.settled(user(5), orderId);
    expect(order.checkout?.status).toBe('REVERSED');
    expect(order.checkout?.steps.slice(-2).map((s) => `${s.name}:${s.status}`)).toEqual(['refundPayment:DONE', 'restock:DONE']);
    expect(order.payment?.status).toBe('REFUNDED');
    expect(await shop.stock('p00006')).toEqual({ quantityAvailable: 4, quantityOnHand: 4, quantityReserved: 0 });
  });

  it('lets no stranger check out an order or follow its checkout', async () => {
    await shop.setStock('p00007', 3);
    const orderId = await shop.order(user(6), [['p00007', 1]]);
    const stranger = await shop.client.query(
      'mutation ($id: ID!) { checkout(orderId: $id, idempotencyKey: "x") { id } }',
      { id: orderId },
      bearer(await shop.token(user(7))),
    );
    expect(stranger.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    await shop.checkout(user(6), orderId);
    const follow = await shop.client.query(ORDER_STATE, { id: orderId }, bearer(await shop.token(user(7))));
    expect(follow.data?.order).toBeNull();
    expect(follow.errors?.[0]?.extensions?.code).toBe('UNAUTHORIZED_FIELD_OR_TYPE');
    await shop.settled(user(6), orderId);
  });
});

describe('checkout, embedded, with a provider that declines 30% of payments', () => {
  let shop: Shop;
  beforeAll(async () => {
    shop = await startShop({ PSP_DECLINE_RATE: '0.3', PSP_SEED: 'declines' }, 60);
  });
  afterAll(() => shop?.stack.stop());

  it('releases the stock of every declined checkout; captured money is the confirmed totals', async () => {
    await shop.setStock('p00008', 100);
    const buyers = Array.from({ length: 40 }, (_, i) => user(1 + i));
    const quantity = (i: number) => 1 + (i % 2);
    const orders = await Promise.all(buyers.map((u, i) => shop.order(u, [['p00008', quantity(i)]])));
    await Promise.all(buyers.map((u, i) => shop.checkout(u, orders[i] as string)));
    const settled = await Promise.all(buyers.map((u, i) => shop.settled(u, orders[i] as string)));
    const confirmed = settled.filter((o) => o.status === 'CONFIRMED');
    const declined = settled.filter((o) => o.status === 'REJECTED');
    expect(declined.length).toBeGreaterThan(0);
    expect(confirmed.length).toBeGreaterThan(0);
    expect(confirmed.length + declined.length).toBe(40);
    expect(declined.every((o) => o.checkout?.reason === 'PAYMENT_DECLINED' && o.payment?.status === 'DECLINED')).toBe(true);
    const confirmedUnits = confirmed.reduce((sum, o) => sum + quantity(orders.indexOf(o.id)), 0);
    expect(await shop.stock('p00008')).toEqual({
      quantityAvailable: 100 - confirmedUnits,
      quantityOnHand: 100 - confirmedUnits,
      quantityReserved: 0,
    });
    const captured = settled.filter((o) => o.payment?.status === 'CAPTURED').reduce((sum, o) => sum + (o.payment?.amount ?? 0), 0);
    expect(captured).toBe(confirmed.reduce((sum, o) => sum + o.total, 0));
  });
});

describe('checkout, embedded, with payments slower than the reservation hold', () => {
  let shop: Shop;
  beforeAll(async () => {
    shop = await startShop({ CHECKOUT_RESERVATION_HOLD_MS: '300', PSP_LATENCY_MS: '1500', PSP_CALL_TIMEOUT_MS: '5000' });
  });
  afterAll(() => shop?.stack.stop());

  it('compensates when the hold expires first: TIMED_OUT, the authorization voided, the stock back', async () => {
    await shop.setStock('p00009', 2);
    const orderId = await shop.order(user(1), [['p00009', 2]]);
    await shop.checkout(user(1), orderId);
    // The provider takes 1.5 s: the checkout still runs, and the order cannot be cancelled under it.
    const cancel = await shop.client.query(
      'mutation ($id: ID!) { cancelOrder(orderId: $id) { status } }',
      { id: orderId },
      bearer(await shop.token(user(1))),
    );
    expect(cancel.errors?.[0]?.extensions?.code).toBe('CHECKOUT_IN_PROGRESS');
    const order = await shop.settled(user(1), orderId);
    expect(order.status).toBe('REJECTED');
    expect(order.checkout?.reason).toBe('TIMED_OUT');
    expect(order.checkout?.steps.map((s) => s.name)).toContain('voidPayment');
    expect(['VOIDED', 'FAILED', 'DECLINED']).toContain(order.payment?.status);
    expect(await shop.stock('p00009')).toEqual({ quantityAvailable: 2, quantityOnHand: 2, quantityReserved: 0 });
  });
});
