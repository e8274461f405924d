import { SEED_ADMIN, defaultSeedSizes, seedProducts, seedUsers } from '@shop/seed';
import type { GraphQLClient, GraphQLResponse } from '@shop/testing';

const products = new Map([...seedProducts(defaultSeedSizes)].map((p) => [p.id, p]));
const users = new Map([...seedUsers(defaultSeedSizes)].map((u) => [u.id, u]));
const pid = (i: number) => `p${String(i).padStart(5, '0')}`;

type OrderResult = {
  id: string;
  version: number;
  total: number;
  lines: Array<{ product: { id: string }; quantity: number; unitPrice: number }>;
};
const ADD = `mutation($o: ID!, $p: ID!, $v: Int) { addOrderLine(orderId: $o, productId: $p, quantity: 1, expectedVersion: $v) { id version total lines { product { id } quantity unitPrice } } }`;

/** What happened to concurrent writers: first-time winners, conflicts seen, retries it took. */
export interface RaceReport {
  firstTimeWinners: number;
  conflicts: number;
  retries: number;
}

/**
 * One client per product adds a line to one order at the same moment (with `firstVersion` as
 * expectedVersion, or none); every loser retries without a version (the server reloads and
 * decides again) until it gets in. Any error other than CONCURRENCY_CONFLICT fails the test.
 */
async function race(client: GraphQLClient, orderId: string, productIds: string[], firstVersion: number | null): Promise<RaceReport> {
  const report: RaceReport = { firstTimeWinners: 0, conflicts: 0, retries: 0 };
  const attempt = async (productId: string, v: number | null) => {
    const res: GraphQLResponse<{ addOrderLine: OrderResult }> = await client.query(ADD, { o: orderId, p: productId, v });
    if (res.data?.addOrderLine) return true;
    expect(res.errors?.map((e) => e.extensions?.code)).toEqual(['CONCURRENCY_CONFLICT']);
    report.conflicts++;
    return false;
  };
  const first = await Promise.all(productIds.map((p) => attempt(p, firstVersion)));
  report.firstTimeWinners = first.filter(Boolean).length;
  await Promise.all(
    productIds
      .filter((_, i) => !first[i])
      .map(async (p) => {
        for (let n = 0; n < 200; n++) {
          report.retries++;
          if (await attempt(p, null)) return;
        }
        throw new Error(`writer for ${p} never got in`);
      }),
  );
  return report;
}

/**
 * Orders through the gateway: the same on the embedded stack (SQLite) and services mode
 * (PostgreSQL). Each customer acts on their own orders, signed in (`as` gives a client with a
 * user's token).
 */
export function ordersE2eSuite(gatewayUrl: () => string, as: (userId: string) => Promise<GraphQLClient>): void {
  describe('orders through the gateway', () => {
    /** A new order of the signed-in customer (createOrder names no customer: the caller's). */
    const create = async (client: GraphQLClient) => {
      const res = await client.query<{ createOrder: { id: string; version: number } }>('mutation { createOrder { id version } }');
      expect(res.errors).toBeUndefined();
      return res.data!.createOrder.id;
    };
    const read = async (client: GraphQLClient, id: string) =>
      (
        await client.query<{ order: OrderResult & { history: Array<{ version: number; type: string; recordedAt: string }> } }>(
          'query($id: ID!) { order(id: $id) { id version total lines { product { id } quantity unitPrice } history { version type recordedAt } } }',
          { id },
        )
      ).data!.order;

    it("answers a user's orders across accounts, orders and products", async () => {
      const client = await as('u00005');
      const id = await create(client);
      for (const [p, q] of [
        [pid(7), 2],
        [pid(8), 1],
      ] as const) {
        expect((await client.query(ADD.replace('quantity: 1', `quantity: ${q}`), { o: id, p })).errors).toBeUndefined();
      }
      expect((await client.query('mutation($id: ID!) { placeOrder(orderId: $id) { status } }', { id })).errors).toBeUndefined();
      const res = await client.query<{
        user: {
          name: string;
          orders: {
            edges: Array<{
              node: {
                id: string;
                status: string;
                total: number;
                customer: { name: string };
                lines: Array<{ quantity: number; unitPrice: number; product: { name: string; price: number } }>;
              };
            }>;
          };
        };
      }>(
        'query($id: ID!) { user(id: $id) { name orders(first: 1) { edges { node { id status total customer { name } lines { quantity unitPrice product { name price } } } } } } }',
        { id: 'u00005' },
      );
      expect(res.errors).toBeUndefined();
      const node = res.data!.user.orders.edges[0]!.node;
      expect(node).toMatchObject({ id, status: 'PLACED', customer: { name: users.get('u00005')!.name } });
      const p7 = products.get(pid(7))!;
      const p8 = products.get(pid(8))!;
      expect(node.lines).toEqual([
        { quantity: 2, unitPrice: p7.price, product: { name: p7.name, price: p7.price } },
        { quantity: 1, unitPrice: p8.price, product: { name: p8.name, price: p8.price } },
      ]);
      expect(node.total).toBe(2 * p7.price + p8.price);

      // Another signed-in customer passes the gateway's `self` policy; orders itself refuses them.
      const other = await (
        await as('u00007')
      ).query<{ user: { name: string; orders: unknown } }>(
        'query($id: ID!) { user(id: $id) { name orders(first: 1) { edges { node { id } } } } }',
        { id: 'u00005' },
      );
      expect(other.data?.user).toEqual({ name: users.get('u00005')!.name, orders: null });
      expect(other.errors?.map((e) => [e.path, e.extensions?.code])).toEqual([[['user', 'orders'], 'UNAUTHORIZED_FIELD_OR_TYPE']]);
    });

    it('50 concurrent appends to one order: each version taken once, losers get CONCURRENCY_CONFLICT, retries succeed, nothing lost', async () => {
      const client = await as('u00006');
      const id = await create(client);
      const writers = Array.from({ length: 50 }, (_, i) => pid(101 + i));
      const started = Date.now();
      const report = await race(client, id, writers, null);
      const order = await read(client, id);
      expect(order.version).toBe(51);
      expect(order.history.map((h) => h.version)).toEqual(Array.from({ length: 51 }, (_, i) => i + 1));
      expect(order.history.filter((h) => h.type === 'OrderLineAdded')).toHaveLength(50);
      expect(order.lines.map((l) => l.product.id).sort()).toEqual([...writers].sort());
      expect(order.lines.every((l) => l.quantity === 1 && l.unitPrice === products.get(l.product.id)!.price)).toBe(true);
      expect(report.firstTimeWinners).toBeGreaterThanOrEqual(1);
      // Every retry follows exactly one conflict.
      expect(report.conflicts).toBe(report.retries);
      if (process.env.TEST_REPORT)
        process.stderr.write(`50 writers without expectedVersion: ${JSON.stringify(report)} in ${Date.now() - started} ms\n`);

      // The same race with expectedVersion: exactly one of 50 can hold version 51 -> 52.
      const conditional = Array.from({ length: 50 }, (_, i) => pid(201 + i));
      const strict = await race(client, id, conditional, 51);
      expect(strict.firstTimeWinners).toBe(1);
      expect(strict.conflicts).toBeGreaterThanOrEqual(49);
      const after = await read(client, id);
      expect(after.version).toBe(101);
      expect(new Set(after.history.map((h) => h.version)).size).toBe(101);
      expect(after.lines).toHaveLength(100);
      if (process.env.TEST_REPORT) process.stderr.write(`50 writers with expectedVersion: ${JSON.stringify(strict)}\n`);
    }, 120_000);

    it('travels in time through the gateway', async () => {
      const client = await as('u00011');
      const id = await create(client);
      await client.query(ADD, { o: id, p: pid(3) });
      const history = (await read(client, id)).history;
      const past = await client.query<{ order: { version: number; lines: unknown[] } | null }>(
        'query($id: ID!, $t: DateTime) { order(id: $id, asOf: $t) { version lines { quantity } } }',
        {
          id,
          t: history[0]!.recordedAt,
        },
      );
      expect(past.errors).toBeUndefined();
      const sameInstant = history.filter((h) => h.recordedAt === history[0]!.recordedAt).length;
      expect(past.data?.order?.version).toBe(sameInstant);
      if (sameInstant === 1) expect(past.data?.order?.lines).toEqual([]);
    });

    it("captures a line's price from products' events: a price change reaches orders without a call", async () => {
      const product = pid(950);
      const newPrice = products.get(product)!.price + 1234;
      const admin = await as(SEED_ADMIN.id);
      expect(
        (
          await admin.query('mutation($id: ID!, $p: Int!) { updateProduct(id: $id, input: { price: $p }) { price } }', {
            id: product,
            p: newPrice,
          })
        ).errors,
      ).toBeUndefined();
      const client = await as('u00012');
      const id = await create(client);
      // Eventually consistent: until ProductUpdated arrives a new line takes the old price.
      const deadline = Date.now() + 15_000;
      let captured = -1;
      for (;;) {
        const res = await client.query<{ addOrderLine: OrderResult }>(ADD, { o: id, p: product });
        captured = res.data!.addOrderLine.lines[0]!.unitPrice;
        if (captured === newPrice || Date.now() > deadline) break;
        await client.query('mutation($o: ID!, $p: ID!) { removeOrderLine(orderId: $o, productId: $p) { id } }', { o: id, p: product });
        await new Promise((r) => setTimeout(r, 25));
      }
      expect(captured).toBe(newPrice);
    });
  });
}
