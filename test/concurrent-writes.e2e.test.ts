import pino from 'pino';
import { orderIdFor } from '@shop/orders';
import { SEED_ADMIN } from '@shop/seed';
import { STACK_TEST_ENV, type Stack, startStack } from '@shop/stack';
import { type GraphQLClient, type GraphQLResponse, bearer, graphqlClient } from '@shop/testing';

/**
 * 200 concurrent writes of each kind through the gateway (every cache on), then every one read
 * back: none lost, none doubled, none answered with an error. Writes that race on one row or
 * stream are the point (the same products' stock, the same users' order lists, the same
 * products' reviews). Catalogue, stock and user writes are the admin's; orders and reviews are
 * each customer's own, signed in as that customer.
 */

const N = 200;
const SEEDED = 20;
const pad = (i: number) => String(i).padStart(5, '0');
const seededUser = (i: number) => `u${pad(1 + (i % SEEDED))}`;
const seededProduct = (i: number) => `p${pad(1 + (i % SEEDED))}`;

describe(`${N} concurrent writes of each kind through the gateway lose nothing`, () => {
  let stack: Stack;
  /** The seeded admin: every role and scope. */
  let client: GraphQLClient;
  /** Signed in as each seeded user: `customer(i)` is `seededUser(i)`. */
  let customers: GraphQLClient[];
  const customer = (i: number) => customers[i % SEEDED]!;
  const tag = `cw${Date.now() % 1_000_000}`;
  const productIds: string[] = [];

  beforeAll(async () => {
    stack = await startStack({
      ports: { gateway: 0, accounts: 0, products: 0, inventory: 0, reviews: 0, orders: 0 },
      host: '127.0.0.1',
      logger: pino({ level: 'silent' }),
      // Load shedding off: one process on a shared CI core lags past the 500 ms default under 200
      // writes at once, and a shed write (503, nothing written) is not what this test counts.
      env: { ...STACK_TEST_ENV, SHED_EVENT_LOOP_DELAY_MS: '0', SHED_MAX_IN_FLIGHT: '0' },
      store: () => ({ sqlitePath: ':memory:' }),
      seed: { users: SEEDED, products: SEEDED, reviews: 60 },
      cache: { kind: 'memory' },
      bus: { kind: 'memory' },
    });
    const as = async (sub: string, roles?: string[]) =>
      graphqlClient(stack.gatewayUrl, { headers: bearer(await stack.token(sub, roles ? { roles } : {})) });
    client = await as(SEED_ADMIN.id, ['customer', 'admin']);
    customers = await Promise.all(Array.from({ length: SEEDED }, (_, u) => as(seededUser(u))));
  });
  afterAll(() => stack?.stop());

  /** Runs all `N` at once; every one must answer without errors. */
  const all = async <T>(write: (i: number) => Promise<GraphQLResponse<T>>): Promise<T[]> => {
    const results = await Promise.all(Array.from({ length: N }, (_, i) => write(i)));
    expect(results.flatMap((r) => r.errors ?? [])).toEqual([]);
    return results.map((r) => r.data!);
  };
  const ok = async <T>(query: string, variables?: Record<string, unknown>, reader = client): Promise<T> => {
    const res = await reader.query<T>(query, variables);
    expect(res.errors).toBeUndefined();
    return res.data!;
  };

  it('createProduct', async () => {
    const created = await all<{ createProduct: { id: string } }>((i) =>
      client.query(
        `mutation($n: String!, $c: String!) { createProduct(input: { name: $n, description: "", price: ${100 + i}, weight: 10, category: $c }) { __typename id } }`,
        { n: `${tag}-${i}`, c: tag },
      ),
    );
    productIds.push(...created.map((c) => c.createProduct.id));
    expect(new Set(productIds).size).toBe(N);
    const names: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 5; page++) {
      const data: {
        products: { edges: Array<{ node: { name: string; price: number } }>; pageInfo: { endCursor: string | null; hasNextPage: boolean } };
      } = await ok(
        'query($c: String, $a: String) { products(first: 100, after: $a, category: $c) { edges { node { name price } } pageInfo { endCursor hasNextPage } } }',
        { c: tag, a: after },
      );
      names.push(...data.products.edges.map((e) => e.node.name));
      if (!data.products.pageInfo.hasNextPage) break;
      after = data.products.pageInfo.endCursor;
    }
    expect(names.sort()).toEqual(Array.from({ length: N }, (_, i) => `${tag}-${i}`).sort());
  });

  it('setStock', async () => {
    expect(productIds).toHaveLength(N);
    await all((i) => client.query(`mutation { setStock(productId: "${productIds[i]}", quantity: ${i}) { __typename } }`));
    const read = await Promise.all(
      productIds.map((id) => ok<{ product: { quantityAvailable: number } }>(`{ product(id: "${id}") { quantityAvailable } }`)),
    );
    expect(read.map((r) => r.product.quantityAvailable)).toEqual(Array.from({ length: N }, (_, i) => i));
  });

  it('createUser', async () => {
    await all((i) =>
      client.query(`mutation { createUser(input: { name: "${tag} ${i}", email: "${tag}-${i}@example.test" }) { __typename } }`),
    );
    const emails: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 10; page++) {
      const data: { users: { edges: Array<{ node: { email: string } }>; pageInfo: { endCursor: string | null; hasNextPage: boolean } } } =
        await ok('query($a: String) { users(first: 100, after: $a) { edges { node { email } } pageInfo { endCursor hasNextPage } } }', {
          a: after,
        });
      emails.push(...data.users.edges.map((e) => e.node.email));
      if (!data.users.pageInfo.hasNextPage) break;
      after = data.users.pageInfo.endCursor;
    }
    expect(emails.filter((e) => e.startsWith(`${tag}-`)).sort()).toEqual(
      Array.from({ length: N }, (_, i) => `${tag}-${i}@example.test`).sort(),
    );
  });

  it("createOrder and addOrderLine (ten orders per customer, each customer's list raced)", async () => {
    // The key each order is created with, and its id: the key after its customer's slot.
    const key = (i: number) => `${tag}-o${i}`;
    const orderId = (i: number) => orderIdFor(seededUser(i), key(i));
    // Each customer opens their own orders (createOrder names no customer: the caller's).
    const created = await all<{ createOrder: { id: string } }>((i) =>
      customer(i).query(`mutation { createOrder(id: "${key(i)}") { __typename id } }`),
    );
    expect(created.map((c) => c.createOrder.id)).toEqual(Array.from({ length: N }, (_, i) => orderId(i)));
    await all((i) =>
      customer(i).query(
        `mutation { addOrderLine(orderId: "${orderId(i)}", productId: "${seededProduct(i)}", quantity: ${1 + (i % 3)}) { __typename } }`,
      ),
    );
    // A second line on every order, racing the first writers' projections of the same customers.
    await all((i) =>
      customer(i).query(
        `mutation { addOrderLine(orderId: "${orderId(i)}", productId: "${seededProduct(i + 1)}", quantity: 1) { __typename } }`,
      ),
    );
    const orders = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        ok<{ order: { version: number; lines: Array<{ product: { id: string }; quantity: number }> } }>(
          `{ order(id: "${orderId(i)}") { version lines { product { id } quantity } } }`,
          undefined,
          customer(i),
        ),
      ),
    );
    orders.forEach((o, i) =>
      expect(o.order).toEqual({
        version: 3,
        lines: [
          { product: { id: seededProduct(i) }, quantity: 1 + (i % 3) },
          { product: { id: seededProduct(i + 1) }, quantity: 1 },
        ],
      }),
    );
    // Every customer's list holds its ten.
    for (let u = 0; u < SEEDED; u++) {
      const data = await ok<{ user: { orders: { edges: Array<{ node: { id: string } }> } } }>(
        `{ user(id: "${seededUser(u)}") { orders(first: 100) { edges { node { id } } } } }`,
        undefined,
        customer(u),
      );
      const mine = data.user.orders.edges.map((e) => e.node.id).filter((id) => id.startsWith(orderIdFor(seededUser(u), `${tag}-`)));
      expect(mine.sort()).toEqual(
        Array.from({ length: N }, (_, i) => i)
          .filter((i) => i % SEEDED === u)
          .map(orderId)
          .sort(),
      );
    }
  });

  it('addReview (ten per product and per author)', async () => {
    // Each review by its author, signed in.
    await all((i) =>
      customer(i).query(
        `mutation { addReview(input: { productId: "${seededProduct(i * 7)}", body: "${tag} review ${i}", rating: ${1 + (i % 5)} }) { __typename } }`,
      ),
    );
    const bodies: string[] = [];
    for (let p = 0; p < SEEDED; p++) {
      const data = await ok<{ product: { reviews: Array<{ body: string }> } }>(
        `{ product(id: "${seededProduct(p)}") { reviews(first: 100) { body } } }`,
      );
      bodies.push(...data.product.reviews.map((r) => r.body).filter((b) => b.startsWith(`${tag} review`)));
    }
    expect(bodies.sort()).toEqual(Array.from({ length: N }, (_, i) => `${tag} review ${i}`).sort());
  });
});
