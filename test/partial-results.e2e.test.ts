// Partial results by design (#13): with one subgraph stopped, a query costs only that subgraph's
// fields: the rest answers, and each field it owed is null with a SUBGRAPH_UNAVAILABLE error at
// its path (the gateway's value-completion plugin places the failed fetch's error there).
import pino from 'pino';
import { type Stack, startStack } from '@shop/stack';
import { type GraphQLClient, eventually, graphqlClient } from '@shop/testing';

const silent = pino({ level: 'silent' });
const freePorts = { gateway: 0, accounts: 0, products: 0, inventory: 0, reviews: 0, orders: 0 };

const USER = '{ user(id: "u00001") { id name reviews(first: 3) { body } } }';
const PRODUCT = '{ product(id: "p00001") { id name inStock reviews(first: 3) { rating } } }';

interface UserData {
  user: { id: string; name: string; reviews: { body: string }[] | null } | null;
}
interface ProductData {
  product: { id: string; name: string; inStock: boolean | null; reviews: { rating: number }[] | null } | null;
}

let stack: Stack;
let client: GraphQLClient;

beforeAll(async () => {
  // No caches: every answer here is the subgraphs' of the moment, not one kept from before the stop.
  stack = await startStack({
    ports: freePorts,
    host: '127.0.0.1',
    logger: silent,
    seed: { users: 10, products: 10, reviews: 100 },
    cache: false,
  });
  client = graphqlClient(stack.gatewayUrl);
});

afterAll(() => stack?.stop());

describe('with reviews stopped', () => {
  let before: { user: UserData; product: ProductData };

  beforeAll(async () => {
    // Just started, a subgraph may still shed load (its event loop lags after seeding): wait for
    // both answers to be whole before stopping reviews.
    const [user, product] = await eventually(
      async () => [await client.query<UserData>(USER), await client.query<ProductData>(PRODUCT)] as const,
      ([u, p]) => !u.errors && !p.errors,
    );
    expect(user.errors).toBeUndefined();
    expect(product.errors).toBeUndefined();
    before = { user: user.data!, product: product.data! };
    // The fixture is worth something only if there are reviews to lose.
    expect(before.user.user?.reviews?.length).toBeGreaterThan(0);
    expect(before.product.product?.reviews?.length).toBeGreaterThan(0);
    await stack.subgraphs.reviews.stop();
  });

  it("a user's name still answers, reviews is null with SUBGRAPH_UNAVAILABLE at [user, reviews]", async () => {
    const { status, data, errors } = await client.query<UserData>(USER);
    expect(status).toBe(200);
    expect(data).toEqual({ user: { id: 'u00001', name: before.user.user!.name, reviews: null } });
    expect(errors).toEqual([
      expect.objectContaining({
        path: ['user', 'reviews'],
        extensions: expect.objectContaining({ code: 'SUBGRAPH_UNAVAILABLE', serviceName: 'reviews' }),
      }),
    ]);
  });

  it("a product's own fields and inventory's still answer, reviews is null with its error at [product, reviews]", async () => {
    const { status, data, errors } = await client.query<ProductData>(PRODUCT);
    expect(status).toBe(200);
    expect(data).toEqual({ product: { ...before.product.product!, reviews: null } });
    expect(errors).toEqual([
      expect.objectContaining({
        path: ['product', 'reviews'],
        extensions: expect.objectContaining({ code: 'SUBGRAPH_UNAVAILABLE', serviceName: 'reviews' }),
      }),
    ]);
  });
});
