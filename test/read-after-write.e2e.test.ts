import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kind, type ObjectTypeDefinitionNode, type TypeNode, parse } from 'graphql';
import pino from 'pino';
import { orderIdFor, seedOrderId } from '@shop/orders';
import { SEED_ADMIN } from '@shop/seed';
import { type Stack, startStack } from '@shop/stack';
import { type GraphQLClient, bearer, graphqlClient } from '@shop/testing';

/**
 * Read after write, for every mutation of the supergraph: warm every cache with a read of what the
 * mutation will change, run the mutation selecting only `__typename`, read again through the
 * gateway. The first read after the write must show it (issue #13: a setStock without `id` in its
 * selection used to evict nothing, and the next read served the old stock for 30 s). Each case
 * runs as the caller the write needs (the user themself, the customer, the admin), its reads too:
 * private answers, cached per caller, must show the write as well.
 */

const supergraph = parse(readFileSync(join(__dirname, '..', 'supergraph.graphql'), 'utf8'));
const mutationType = supergraph.definitions.find(
  (d): d is ObjectTypeDefinitionNode => d.kind === Kind.OBJECT_TYPE_DEFINITION && d.name.value === 'Mutation',
)!;
const mutationFields = mutationType.fields!.map((f) => f.name.value);
const namedTypeOf = (t: TypeNode): string => (t.kind === Kind.NAMED_TYPE ? t.name.value : namedTypeOf(t.type));

interface Case {
  /** Who writes and reads (setup included): a seed user's id or the admin's; absent, anonymous. */
  as?: string;
  /** Arguments of the mutation (GraphQL literal syntax); `n` makes them unique per run; `setup` holds the setup writes' data. */
  args: (n: number, setup: Data[]) => string;
  /** Writes the case needs first (with full selections), e.g. an order to add a line to. */
  setup?: (n: number) => string[];
  /** A read through the gateway of what the mutation changes: run before (warming) and after. */
  read: (n: number) => string;
  /**
   * Whether the read shows the write. It must not before (or the case proves nothing), and must
   * after. Absent for a mutation that changes nothing a read can show (a session's sign-in,
   * refresh, sign-out): then the read after it must equal the read before.
   */
  shows?: (data: Record<string, unknown>, n: number) => boolean;
}

type Data = Record<string, unknown>;
const at = (data: Data, path: string): unknown =>
  path.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), data);
const ids = (connection: unknown): string[] =>
  ((connection as { edges?: Array<{ node: { id?: string; email?: string; name?: string } }> } | null)?.edges ?? []).map(
    (e) => e.node.id ?? e.node.email ?? e.node.name ?? '',
  );

// Seed ids the cases change; each case its own, so one case's write cannot make another pass.
const USER = (k: number) => `u0000${k}`;
/** The id of the order USER(k) creates with the key `rw-<n>`: the key after the customer's slot. */
const RW_ORDER = (k: number, n: number) => orderIdFor(USER(k), `rw-${n}`);
const ORDER_READ = (n: number) =>
  `{ user(id: "${USER(2)}") { orders(first: 100) { edges { node { id status total lines { quantity } } } } } order(id: "${RW_ORDER(2, n)}") { id status total } }`;
const node = (data: Data, n: number) =>
  (at(data, 'user.orders.edges') as Array<{ node: { id: string; status: string; total: number; lines: unknown[] } }> | undefined)?.find(
    (e) => e.node.id === RW_ORDER(2, n),
  )?.node;

// Sessions: a user signed up in setup, and the refresh token its sign-up returned.
const SIGNED_UP = (n: number) => `su-${n}@example.test`;
const SIGN_UP = (n: number) =>
  `mutation { signUp(email: "${SIGNED_UP(n)}", password: "rw password ${n}", name: "Signed Up ${n}") { accessToken refreshToken user { id } } }`;
const refreshTokenOf = (setup: Data[]) => JSON.stringify(at(setup[0] ?? {}, 'signUp.refreshToken'));
const SIGNED_UP_READ = () => '{ users(first: 100) { edges { node { id name } } } }';
const ADMIN = SEED_ADMIN.id;

/** One case per Mutation field of the supergraph: a new field without one fails the first test. */
const cases: Record<string, Case> = {
  signUp: {
    // Emails are the user's and the admin's to see: the admin reads the list.
    as: ADMIN,
    args: (n) => `email: "signup-${n}@example.test", password: "rw password ${n}", name: "Signed Up ${n}"`,
    read: () => '{ users(first: 100) { edges { node { email } } } }',
    shows: (d, n) => ids(at(d, 'users')).includes(`signup-${n}@example.test`),
  },
  signIn: {
    setup: (n) => [SIGN_UP(n)],
    args: (n) => `email: "${SIGNED_UP(n)}", password: "rw password ${n}"`,
    read: SIGNED_UP_READ,
  },
  refresh: {
    setup: (n) => [SIGN_UP(n)],
    args: (_n, setup) => `refreshToken: ${refreshTokenOf(setup)}`,
    read: SIGNED_UP_READ,
  },
  signOut: {
    setup: (n) => [SIGN_UP(n)],
    args: (_n, setup) => `refreshToken: ${refreshTokenOf(setup)}`,
    read: SIGNED_UP_READ,
  },
  createUser: {
    as: ADMIN,
    args: (n) => `input: { name: "Reader ${n}", email: "rw-${n}@example.test" }`,
    read: () => '{ users(first: 100) { edges { node { email } } } }',
    shows: (d, n) => ids(at(d, 'users')).includes(`rw-${n}@example.test`),
  },
  updateUser: {
    // The user themself: their own (private) email is read back too. Seed order 1 is theirs.
    as: USER(1),
    args: (n) => `id: "${USER(1)}", input: { name: "Renamed ${n}", email: "renamed-${n}@example.test" }`,
    // User through an entity fetch (orders -> accounts) and as a root field.
    read: () => `{ order(id: "${seedOrderId(1)}") { customer { name } } user(id: "${USER(1)}") { name email } }`,
    shows: (d, n) =>
      at(d, 'order.customer.name') === `Renamed ${n}` &&
      at(d, 'user.name') === `Renamed ${n}` &&
      at(d, 'user.email') === `renamed-${n}@example.test`,
  },
  setStock: {
    as: ADMIN,
    args: (n) => `productId: "p00001", quantity: ${1000 + n}`,
    read: () => '{ product(id: "p00001") { quantityAvailable inStock } }',
    shows: (d, n) => at(d, 'product.quantityAvailable') === 1000 + n,
  },
  createOrder: {
    // The customer's own order: it names no customer.
    as: USER(2),
    args: (n) => `id: "rw-${n}"`,
    read: ORDER_READ,
    shows: (d, n) => node(d, n) !== undefined && at(d, 'order.id') === RW_ORDER(2, n),
  },
  addOrderLine: {
    as: USER(2),
    setup: (n) => [`mutation { createOrder(customerId: "${USER(2)}", id: "rw-${n}") { id } }`],
    args: (n) => `orderId: "${RW_ORDER(2, n)}", productId: "p00002", quantity: 2`,
    read: ORDER_READ,
    shows: (d, n) => node(d, n)?.lines.length === 1 && (at(d, 'order.total') as number) > 0,
  },
  removeOrderLine: {
    as: USER(2),
    setup: (n) => [
      `mutation { createOrder(customerId: "${USER(2)}", id: "rw-${n}") { id } }`,
      `mutation { addOrderLine(orderId: "${RW_ORDER(2, n)}", productId: "p00002", quantity: 1) { id } }`,
    ],
    args: (n) => `orderId: "${RW_ORDER(2, n)}", productId: "p00002"`,
    read: ORDER_READ,
    shows: (d, n) => node(d, n)?.lines.length === 0 && at(d, 'order.total') === 0,
  },
  placeOrder: {
    as: USER(2),
    setup: (n) => [
      `mutation { createOrder(customerId: "${USER(2)}", id: "rw-${n}") { id } }`,
      `mutation { addOrderLine(orderId: "${RW_ORDER(2, n)}", productId: "p00002", quantity: 1) { id } }`,
    ],
    args: (n) => `orderId: "${RW_ORDER(2, n)}"`,
    read: ORDER_READ,
    shows: (d, n) => node(d, n)?.status === 'PLACED' && at(d, 'order.status') === 'PLACED',
  },
  cancelOrder: {
    as: USER(2),
    setup: (n) => [`mutation { createOrder(customerId: "${USER(2)}", id: "rw-${n}") { id } }`],
    args: (n) => `orderId: "${RW_ORDER(2, n)}", reason: "changed my mind"`,
    read: ORDER_READ,
    shows: (d, n) => node(d, n)?.status === 'CANCELLED' && at(d, 'order.status') === 'CANCELLED',
  },
  checkout: {
    // Its own customer and only its own order in the read: the saga carries on after the write
    // (PLACED, then CONFIRMED), and must not change what another case reads twice.
    as: USER(6),
    setup: (n) => [
      `mutation { createOrder(customerId: "${USER(6)}", id: "rw-${n}") { id } }`,
      `mutation { addOrderLine(orderId: "${RW_ORDER(6, n)}", productId: "p00006", quantity: 1) { id } }`,
    ],
    args: (n) => `orderId: "${RW_ORDER(6, n)}", idempotencyKey: "rw-${n}"`,
    read: (n) => `{ order(id: "${RW_ORDER(6, n)}") { id status checkout { id } } }`,
    // The checkout has started: the order is placed (or already confirmed) and shows it.
    shows: (d) => at(d, 'order.status') !== 'DRAFT' && at(d, 'order.checkout.id') != null,
  },
  createProduct: {
    as: ADMIN,
    args: (n) => `input: { name: "Lamp ${n}", description: "d", price: 1200, weight: 300, category: "rw-${n}" }`,
    read: (n) => `{ products(first: 5, category: "rw-${n}") { edges { node { name } } } }`,
    shows: (d, n) => ids(at(d, 'products')).includes(`Lamp ${n}`),
  },
  updateProduct: {
    as: ADMIN,
    args: (n) => `id: "p00003", input: { name: "Renamed ${n}", price: ${5000 + n} }`,
    // Root field, and products' entity through reviews (Review.product).
    read: () => '{ product(id: "p00003") { name price shippingEstimate reviews(first: 1) { product { name } } } }',
    shows: (d, n) =>
      at(d, 'product.name') === `Renamed ${n}` &&
      at(d, 'product.price') === 5000 + n &&
      (at(d, 'product.reviews') as Array<{ product: { name: string } }>)[0]?.product.name === `Renamed ${n}`,
  },
  discontinueProduct: {
    as: ADMIN,
    args: () => 'id: "p00004"',
    // Product as a root field and through an entity fetch (reviews -> products).
    read: () => '{ product(id: "p00004") { discontinued reviews(first: 1) { product { discontinued } } } }',
    shows: (d) =>
      at(d, 'product.discontinued') === true &&
      (at(d, 'product.reviews') as Array<{ product: { discontinued: boolean } }>)[0]?.product.discontinued === true,
  },
  addReview: {
    // The author is the caller.
    as: USER(3),
    args: (n) => `input: { productId: "p00005", body: "Read after write ${n}", rating: 4 }`,
    read: () => `{ product(id: "p00005") { reviews(first: 3) { body } } user(id: "${USER(3)}") { reviews(first: 3) { body } } }`,
    shows: (d, n) =>
      (at(d, 'product.reviews') as Array<{ body: string }>)[0]?.body === `Read after write ${n}` &&
      (at(d, 'user.reviews') as Array<{ body: string }>)[0]?.body === `Read after write ${n}`,
  },
};

/** Unique per run (ids, names, quantities), small enough for an Int. */
let runs = (Date.now() % 100_000) * 100;

describe('read after write: every Mutation field of the supergraph, minimal selection, every cache on', () => {
  let stack: Stack;
  /** Anonymous, or signed in as a case's `as` (the admin with its role, a customer with theirs). */
  const clientFor = async (as: string | undefined): Promise<GraphQLClient> =>
    as === undefined
      ? graphqlClient(stack.gatewayUrl)
      : graphqlClient(stack.gatewayUrl, { headers: bearer(await stack.token(as, as === ADMIN ? { roles: ['customer', 'admin'] } : {})) });
  beforeAll(async () => {
    stack = await startStack({
      ports: { gateway: 0, accounts: 0, products: 0, inventory: 0, reviews: 0, orders: 0 },
      host: '127.0.0.1',
      logger: pino({ level: 'silent' }),
      seed: { users: 20, products: 20, reviews: 60 },
      // In memory, for every service: the gateway's entity, response and APQ caches and the hot reads.
      cache: { kind: 'memory' },
      bus: { kind: 'memory' },
    });
  });
  afterAll(() => stack?.stop());

  it('has a case for every Mutation field, and every cache is on', () => {
    expect(Object.keys(cases).sort()).toEqual([...mutationFields].sort());
    expect(stack.options.gateway.entityCache).not.toBe(false);
    expect(stack.options.gateway.responseCache).not.toBe(false);
    for (const s of Object.values(stack.options.subgraphs)) expect(s.cacheStore).toBeDefined();
  });

  const read = async (client: GraphQLClient, query: string): Promise<Data> => {
    const res = await client.query<Data>(query);
    expect(res.errors).toBeUndefined();
    return res.data!;
  };

  it.each(mutationFields)('%s: the first read after it shows the write', async (field) => {
    const c = cases[field];
    if (!c) throw new Error(`no read-after-write case for Mutation.${field}`);
    const returnType = namedTypeOf(mutationType.fields!.find((f) => f.name.value === field)!.type);
    const returnsObject = !['Int', 'Float', 'String', 'Boolean', 'ID'].includes(returnType);
    const client = await clientFor(c.as);
    // Three rounds: a stale entry left by the first write would show in the second.
    for (let round = 1; round <= 3; round++) {
      const n = ++runs;
      const setup: Data[] = [];
      for (const write of c.setup?.(n) ?? []) {
        const done = await client.query<Data>(write);
        expect(done.errors).toBeUndefined();
        setup.push(done.data!);
      }
      // Twice: the second answer comes from the caches the first filled.
      const before = await read(client, c.read(n));
      expect(await read(client, c.read(n))).toEqual(before);
      if (round === 1 && c.shows) expect(c.shows(before, n)).toBe(false);
      const res = await client.query(`mutation { ${field}(${c.args(n, setup)})${returnsObject ? ' { __typename }' : ''} }`);
      expect(res.errors).toBeUndefined();
      const after = await read(client, c.read(n));
      if (!c.shows) expect({ field, round, after }).toEqual({ field, round, after: before });
      else expect({ field, round, shows: c.shows(after, n), after }).toEqual({ field, round, shows: true, after });
    }
  });
});
