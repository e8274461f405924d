// Who may do what, through the real gateway with every cache and batcher on (Redis, the entity
// cache, the response cache, in-flight sharing, merging): every Mutation field and every field the
// supergraph marks, for an anonymous caller, the owner, another customer and an admin, asserting
// allowed or the exact error code; the same calls sent to the owning subgraph without the
// gateway's signature are refused. Then two users reading their own private data at the same
// instants, with caches warm, never see each other's values.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { Kind, type ObjectTypeDefinitionNode, parse } from 'graphql';
import { type Stack, startStack } from '@shop/stack';
import type { OrdersSubgraph } from '@shop/orders';
import { outboxStatus } from '@shop/events';
import type { Store } from '@shop/store';
import { authDirectivesOf } from '@shop/gateway';
import { type GraphQLResponse, bearer, eventually, graphqlClient, signIn } from '@shop/testing';

jest.setTimeout(120_000);

const REPO_ROOT = join(__dirname, '..');
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const UNAUTHORIZED = 'UNAUTHORIZED_FIELD_OR_TYPE';
const OWNER = 'u00001';
const OTHER = 'u00002';
const ADMIN_EMAIL = 'admin@example.com';
const DEV_PASSWORD = 'shop-dev-password';

type Role = 'anonymous' | 'owner' | 'other' | 'admin';
const ROLES: Role[] = ['anonymous', 'owner', 'other', 'admin'];
/** `ok`: the field answers with data and no error; else the code of the error at its path (the field is null). */
type Verdict = string;

interface Case {
  /** The schema coordinate the case covers (`Mutation.createOrder`, `User.email`). */
  covers: string;
  /** The subgraph that owns it: the unsigned direct call goes there. */
  subgraph: 'accounts' | 'products' | 'inventory' | 'orders' | 'reviews' | 'payments';
  query: string;
  /** Variables; built per role, so each role writes its own fresh objects. */
  variables: (role: Role) => Promise<Record<string, unknown>> | Record<string, unknown>;
  /** The response path whose value or error decides. */
  path: Array<string | number>;
  expect: Record<Role, Verdict>;
  /** Extra checks on an allowed answer. */
  check?: (data: unknown, role: Role) => void;
  /**
   * A subscription: sent as a GraphQL over SSE request; once its answer's headers arrive (the
   * gateway sends them after the check), `trigger` makes the change it waits for, and the first
   * `next` decides (a refusal is a `next` with the errors).
   */
  trigger?: (variables: Record<string, unknown>) => Promise<void>;
}

let stack: Stack;
const tokens = {} as Record<Exclude<Role, 'anonymous'>, string>;
const headersOf = (role: Role): Record<string, string> => (role === 'anonymous' ? {} : bearer(tokens[role]));
let gateway: ReturnType<typeof graphqlClient>;

/** The owner's and the admin's writes set up objects the other roles then try to touch. */
const as = async <T = Record<string, unknown>>(role: Role, query: string, variables: Record<string, unknown> = {}) => {
  const res = await gateway.query<T>(query, variables, headersOf(role));
  if (res.errors?.length) throw new Error(`${role}: ${JSON.stringify(res.errors)}`);
  return res.data as T;
};
/** A draft order of the customer's; its id as createOrder gave it (the key after the customer's slot). */
const createdOrderOf = async (customer: 'owner' | 'other'): Promise<string> =>
  (await as<{ createOrder: { id: string } }>(customer, 'mutation ($key: ID) { createOrder(id: $key) { id } }', { key: randomUUID() }))
    .createOrder.id;
const draftOrderOf = async (customer: 'owner', withLine = false): Promise<string> => {
  const id = await createdOrderOf(customer);
  if (withLine) await as(customer, 'mutation ($id: ID!) { addOrderLine(orderId: $id, productId: "p00001", quantity: 1) { id } }', { id });
  return id;
};

/** An order of the owner's that went through checkout: payments holds its captured payment. Made once. */
let paidOrder: Promise<string> | undefined;
const paidOrderOf = (customer: 'owner'): Promise<string> =>
  (paidOrder ??= (async () => {
    const id = await draftOrderOf(customer, true);
    await as(customer, 'mutation ($id: ID!, $key: String!) { checkout(orderId: $id, idempotencyKey: $key) { id } }', {
      id,
      key: randomUUID(),
    });
    const paid = await eventually(
      () =>
        as<{ order: { payment: { status: string } | null } }>(customer, 'query ($id: ID!) { order(id: $id) { payment { status } } }', {
          id,
        }),
      (data) => data.order.payment?.status === 'CAPTURED',
      30_000,
      100,
    );
    if (paid.order.payment?.status !== 'CAPTURED') throw new Error(`order ${id}'s payment is ${JSON.stringify(paid.order.payment)}`);
    return id;
  })());

const at = (data: unknown, path: Array<string | number>): unknown =>
  path.reduce<unknown>(
    (value, key) => (value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined),
    data,
  );

const samePath = (a: ReadonlyArray<string | number> | undefined, b: ReadonlyArray<string | number>) =>
  a !== undefined && a.length === b.length && a.every((k, i) => k === b[i]);

function verdictOf(res: GraphQLResponse, path: Array<string | number>): Verdict {
  // An error at the path, under it, or at a parent refused before it (the field is null with it).
  const error = res.errors?.find(
    (e) =>
      samePath(e.path, path) ||
      (e.path && (samePath(e.path.slice(0, path.length), path) || samePath(path.slice(0, e.path.length), e.path))),
  );
  if (error) return String(error.extensions?.code);
  if (res.errors?.length) return `unexpected errors: ${JSON.stringify(res.errors)}`;
  const value = at(res.data, path);
  return value === null || value === undefined ? 'null without an error' : 'ok';
}

/**
 * A subscription's first result over GraphQL over SSE: the request, then (its headers mean the
 * check is done) `trigger`, then the first `next` frame read off the stream, which is then closed.
 */
async function firstEvent(
  query: string,
  variables: Record<string, unknown>,
  headers: Record<string, string>,
  trigger: (variables: Record<string, unknown>) => Promise<void>,
): Promise<GraphQLResponse> {
  const aborter = new AbortController();
  const res = await fetch(stack.gatewayUrl, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify({ query, variables }),
    signal: aborter.signal,
  });
  try {
    await trigger(variables);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = '';
    for (;;) {
      const frame = /event: next\ndata: (.*)\n\n/.exec(text);
      if (frame) {
        const body = JSON.parse(frame[1] as string) as Pick<GraphQLResponse, 'data' | 'errors'>;
        return { status: res.status, headers: res.headers, data: body.data, errors: body.errors };
      }
      const { value, done } = await reader.read();
      if (done) throw new Error(`the stream ended without a next: ${JSON.stringify(text)}`);
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    aborter.abort();
  }
}

const CASES: Case[] = [
  {
    covers: 'User.email',
    subgraph: 'accounts',
    query: 'query ($id: ID!) { user(id: $id) { id name email } }',
    variables: () => ({ id: OWNER }),
    path: ['user', 'email'],
    expect: { anonymous: UNAUTHORIZED, owner: 'ok', other: UNAUTHORIZED, admin: 'ok' },
  },
  {
    covers: 'Query.me',
    subgraph: 'accounts',
    query: '{ me { id } }',
    variables: () => ({}),
    path: ['me'],
    expect: { anonymous: UNAUTHORIZED, owner: 'ok', other: 'ok', admin: 'ok' },
    check: (data, role) => expect(at(data, ['me', 'id'])).toBe(role === 'owner' ? OWNER : role === 'other' ? OTHER : 'admin'),
  },
  {
    covers: 'User.orders',
    subgraph: 'orders',
    query: 'query ($id: ID!) { user(id: $id) { id orders(first: 5) { edges { node { id } } } } }',
    variables: () => ({ id: OWNER }),
    path: ['user', 'orders'],
    expect: { anonymous: UNAUTHORIZED, owner: 'ok', other: UNAUTHORIZED, admin: 'ok' },
  },
  {
    covers: 'Query.order',
    subgraph: 'orders',
    query: 'query ($id: ID!) { order(id: $id) { id total customer { id } } }',
    variables: async () => ({ id: await draftOrderOf('owner', true) }),
    path: ['order'],
    expect: { anonymous: UNAUTHORIZED, owner: 'ok', other: UNAUTHORIZED, admin: 'ok' },
  },
  {
    // Following an order: its customer or orders:admin; the change is the owner's.
    covers: 'Subscription.orderUpdated',
    subgraph: 'orders',
    query: 'subscription ($id: ID!) { orderUpdated(id: $id) { id version customer { id } } }',
    variables: async () => ({ id: await draftOrderOf('owner', true) }),
    trigger: async ({ id }) => {
      await as('owner', 'mutation ($id: ID!) { addOrderLine(orderId: $id, productId: "p00002", quantity: 1) { id } }', { id });
    },
    path: ['orderUpdated'],
    expect: { anonymous: UNAUTHORIZED, owner: 'ok', other: UNAUTHORIZED, admin: 'ok' },
    check: (data) => expect((data as { orderUpdated: { version: number } }).orderUpdated.version).toBeGreaterThan(2),
  },
  {
    // Following an order's checkout: its customer or orders:admin; the owner starts the checkout.
    covers: 'Subscription.checkoutProgress',
    subgraph: 'orders',
    query: 'subscription ($id: ID!) { checkoutProgress(orderId: $id) { id status } }',
    variables: async () => ({ id: await draftOrderOf('owner', true) }),
    trigger: async ({ id }) => {
      await as('owner', 'mutation ($id: ID!, $k: String!) { checkout(orderId: $id, idempotencyKey: $k) { id } }', { id, k: randomUUID() });
    },
    path: ['checkoutProgress'],
    expect: { anonymous: UNAUTHORIZED, owner: 'ok', other: UNAUTHORIZED, admin: 'ok' },
    check: (data) => expect((data as { checkoutProgress: { status: string } }).checkoutProgress.status).toBe('RUNNING'),
  },
  {
    // Every customer's orders, from every shard: support staff's view (the orders:admin scope).
    covers: 'Query.orders',
    subgraph: 'orders',
    query: '{ orders(first: 5) { edges { node { id customer { id } } } } }',
    variables: () => ({}),
    path: ['orders'],
    expect: { anonymous: UNAUTHORIZED, owner: UNAUTHORIZED, other: UNAUTHORIZED, admin: 'ok' },
    check: (data) => expect(at(data, ['orders', 'edges'])).toHaveLength(5),
  },
  {
    // Anonymous callers and other customers are refused the order itself (orders' check) before
    // payments is asked; payments' own check for them is in its suite.
    covers: 'Order.payment',
    subgraph: 'payments',
    query: 'query ($id: ID!) { order(id: $id) { id payment { status amount } } }',
    variables: async () => ({ id: await paidOrderOf('owner') }),
    path: ['order', 'payment'],
    expect: { anonymous: UNAUTHORIZED, owner: 'ok', other: UNAUTHORIZED, admin: 'ok' },
    check: (data) => expect(at(data, ['order', 'payment', 'status'])).toBe('CAPTURED'),
  },
  {
    covers: 'Mutation.createOrder',
    subgraph: 'orders',
    query: 'mutation ($customer: ID) { createOrder(customerId: $customer) { id customer { id } } }',
    variables: () => ({ customer: OWNER }),
    path: ['createOrder'],
    expect: { anonymous: UNAUTHORIZED, owner: 'ok', other: 'FORBIDDEN', admin: 'ok' },
    check: (data) => expect(at(data, ['createOrder', 'customer', 'id'])).toBe(OWNER),
  },
  {
    covers: 'Mutation.addOrderLine',
    subgraph: 'orders',
    query: 'mutation ($id: ID!) { addOrderLine(orderId: $id, productId: "p00002", quantity: 2) { id lines { quantity } } }',
    variables: async () => ({ id: await draftOrderOf('owner') }),
    path: ['addOrderLine'],
    expect: { anonymous: UNAUTHORIZED, owner: 'ok', other: 'FORBIDDEN', admin: 'ok' },
  },
  {
    covers: 'Mutation.removeOrderLine',
    subgraph: 'orders',
    query: 'mutation ($id: ID!) { removeOrderLine(orderId: $id, productId: "p00001") { id lines { quantity } } }',
    variables: async () => ({ id: await draftOrderOf('owner', true) }),
    path: ['removeOrderLine'],
    expect: { anonymous: UNAUTHORIZED, owner: 'ok', other: 'FORBIDDEN', admin: 'ok' },
  },
  {
    covers: 'Mutation.placeOrder',
    subgraph: 'orders',
    query: 'mutation ($id: ID!) { placeOrder(orderId: $id) { id status } }',
    variables: async () => ({ id: await draftOrderOf('owner', true) }),
    path: ['placeOrder'],
    expect: { anonymous: UNAUTHORIZED, owner: 'ok', other: 'FORBIDDEN', admin: 'ok' },
  },
  {
    covers: 'Mutation.cancelOrder',
    subgraph: 'orders',
    query: 'mutation ($id: ID!) { cancelOrder(orderId: $id, reason: "test") { id status } }',
    variables: async () => ({ id: await draftOrderOf('owner', true) }),
    path: ['cancelOrder'],
    expect: { anonymous: UNAUTHORIZED, owner: 'ok', other: 'FORBIDDEN', admin: 'ok' },
  },
  {
    covers: 'Mutation.checkout',
    subgraph: 'orders',
    query: 'mutation ($id: ID!, $key: String!) { checkout(orderId: $id, idempotencyKey: $key) { id status } }',
    variables: async () => ({ id: await draftOrderOf('owner', true), key: randomUUID() }),
    path: ['checkout'],
    expect: { anonymous: UNAUTHORIZED, owner: 'ok', other: 'FORBIDDEN', admin: 'ok' },
  },
  {
    covers: 'Mutation.createProduct',
    subgraph: 'products',
    query: 'mutation { createProduct(input: { name: "Lamp", description: "Bright", price: 1000, weight: 500, category: "home" }) { id } }',
    variables: () => ({}),
    path: ['createProduct'],
    expect: { anonymous: UNAUTHORIZED, owner: UNAUTHORIZED, other: UNAUTHORIZED, admin: 'ok' },
  },
  {
    covers: 'Mutation.updateProduct',
    subgraph: 'products',
    query: 'mutation { updateProduct(id: "p00003", input: { price: 1 }) { id price } }',
    variables: () => ({}),
    path: ['updateProduct'],
    expect: { anonymous: UNAUTHORIZED, owner: UNAUTHORIZED, other: UNAUTHORIZED, admin: 'ok' },
  },
  {
    covers: 'Mutation.discontinueProduct',
    subgraph: 'products',
    query: 'mutation { discontinueProduct(id: "p00004") { id discontinued } }',
    variables: () => ({}),
    path: ['discontinueProduct'],
    expect: { anonymous: UNAUTHORIZED, owner: UNAUTHORIZED, other: UNAUTHORIZED, admin: 'ok' },
  },
  {
    covers: 'Mutation.setStock',
    subgraph: 'inventory',
    query: 'mutation { setStock(productId: "p00005", quantity: 7) { id quantityAvailable } }',
    variables: () => ({}),
    path: ['setStock'],
    expect: { anonymous: UNAUTHORIZED, owner: UNAUTHORIZED, other: UNAUTHORIZED, admin: 'ok' },
  },
  {
    covers: 'Mutation.addReview',
    subgraph: 'reviews',
    query: 'mutation { addReview(input: { productId: "p00006", body: "Works", rating: 4 }) { id author { id } } }',
    variables: () => ({}),
    path: ['addReview'],
    expect: { anonymous: UNAUTHORIZED, owner: 'ok', other: 'ok', admin: 'ok' },
    // The author is whoever is signed in: there is no author argument to forge.
    check: (data, role) =>
      expect(at(data, ['addReview', 'author', 'id'])).toBe(role === 'owner' ? OWNER : role === 'other' ? OTHER : 'admin'),
  },
  {
    covers: 'Mutation.createUser',
    subgraph: 'accounts',
    query: 'mutation ($email: String!) { createUser(input: { name: "New", email: $email }) { id } }',
    variables: () => ({ email: `new-${randomUUID()}@example.com` }),
    path: ['createUser'],
    expect: { anonymous: UNAUTHORIZED, owner: UNAUTHORIZED, other: UNAUTHORIZED, admin: 'ok' },
  },
  {
    covers: 'Mutation.updateUser',
    subgraph: 'accounts',
    query: 'mutation ($id: ID!) { updateUser(id: $id, input: { name: "Renamed" }) { id name } }',
    variables: () => ({ id: OWNER }),
    path: ['updateUser'],
    expect: { anonymous: UNAUTHORIZED, owner: 'ok', other: 'FORBIDDEN', admin: 'ok' },
  },
  {
    covers: 'Mutation.signUp',
    subgraph: 'accounts',
    query: 'mutation ($email: String!) { signUp(email: $email, password: "a long password", name: "Newcomer") { accessToken } }',
    variables: () => ({ email: `signup-${randomUUID()}@example.com` }),
    path: ['signUp'],
    expect: { anonymous: 'ok', owner: 'ok', other: 'ok', admin: 'ok' },
  },
  {
    covers: 'Mutation.signIn',
    subgraph: 'accounts',
    query: 'mutation ($email: String!, $password: String!) { signIn(email: $email, password: $password) { accessToken } }',
    variables: () => ({ email: ADMIN_EMAIL, password: DEV_PASSWORD }),
    path: ['signIn'],
    expect: { anonymous: 'ok', owner: 'ok', other: 'ok', admin: 'ok' },
  },
  {
    covers: 'Mutation.refresh',
    subgraph: 'accounts',
    query: 'mutation ($token: String!) { refresh(refreshToken: $token) { accessToken } }',
    variables: async () => ({ token: await freshRefreshToken() }),
    path: ['refresh'],
    expect: { anonymous: 'ok', owner: 'ok', other: 'ok', admin: 'ok' },
  },
  {
    covers: 'Mutation.signOut',
    subgraph: 'accounts',
    query: 'mutation ($token: String!) { signOut(refreshToken: $token) }',
    variables: async () => ({ token: await freshRefreshToken() }),
    path: ['signOut'],
    expect: { anonymous: 'ok', owner: 'ok', other: 'ok', admin: 'ok' },
  },
];

async function freshRefreshToken(): Promise<string> {
  const data = await as<{ signIn: { refreshToken: string } }>(
    'anonymous',
    'mutation ($email: String!, $password: String!) { signIn(email: $email, password: $password) { refreshToken } }',
    { email: ADMIN_EMAIL, password: DEV_PASSWORD },
  );
  return data.signIn.refreshToken;
}

beforeAll(async () => {
  stack = await startStack({
    ports: { gateway: 0, accounts: 0, products: 0, inventory: 0, reviews: 0, orders: 0 },
    host: '127.0.0.1',
    logger: pino({ level: 'silent' }),
    seed: { users: 50, products: 50, reviews: 200 },
    // Every cache on, in Redis, under a prefix of this run's own; its calls may take 5 s, so that
    // the response cache's test counts what it keeps, not Redis timing out on a starved CI machine.
    cache: { kind: 'redis', url: REDIS_URL, prefix: `authz-test-${randomUUID()}`, timeoutMs: 5_000 },
  });
  gateway = graphqlClient(stack.gatewayUrl);
  tokens.owner = await stack.token(OWNER);
  tokens.other = await stack.token(OTHER);
  // The admin signs in as a person would: the seed's admin account and the development password.
  tokens.admin = await signIn(stack.gatewayUrl, ADMIN_EMAIL, DEV_PASSWORD);
});

afterAll(async () => {
  await stack?.stop();
});

describe('the authorization matrix, through the gateway with every cache on', () => {
  it('covers every Mutation field and every field or type the supergraph marks', () => {
    const sdl = readFileSync(join(REPO_ROOT, 'supergraph.graphql'), 'utf8');
    const directives = authDirectivesOf(sdl);
    const mutation = parse(sdl).definitions.find(
      (d): d is ObjectTypeDefinitionNode => d.kind === Kind.OBJECT_TYPE_DEFINITION && d.name.value === 'Mutation',
    );
    const required = new Set([
      ...(mutation?.fields ?? []).map((f) => `Mutation.${f.name.value}`),
      ...directives.fields.keys(),
      ...directives.types.keys(),
    ]);
    expect([...required].filter((c) => !CASES.some((k) => k.covers === c))).toEqual([]);
  });

  it.each(CASES.map((c) => [c.covers, c] as const))('%s: allowed or the exact code, for each caller', async (_name, c) => {
    const seen: Record<string, Verdict> = {};
    for (const role of ROLES) {
      // Twice: the second answer may come from a cache warmed by the first (or by another role).
      for (const round of [1, 2]) {
        const variables = await c.variables(role);
        const res = c.trigger
          ? await firstEvent(c.query, variables, headersOf(role), c.trigger)
          : await gateway.query(c.query, variables, headersOf(role));
        expect(res.status).toBe(200);
        const verdict = verdictOf(res, c.path);
        seen[`${role}#${round}`] = verdict;
        if (verdict === 'ok') c.check?.(res.data, role);
      }
    }
    const expected = Object.fromEntries(ROLES.flatMap((role) => [1, 2].map((round) => [`${role}#${round}`, c.expect[role]])));
    expect(seen).toEqual(expected);
  });

  it.each(CASES.map((c) => [c.covers, c] as const))('%s: refused when sent to the subgraph without the signature', async (_name, c) => {
    const direct = graphqlClient(stack.subgraphUrls[c.subgraph]);
    for (const role of ROLES) {
      const res = await direct.query(c.query, await c.variables(role), headersOf(role));
      expect(res.status).toBe(401);
      expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
  });

  it('gives a list of users their own email and nobody else’s', async () => {
    const res = await gateway.query<{ users: { edges: Array<{ node: { id: string; email: string | null } }> } }>(
      '{ users(first: 5) { edges { node { id email } } } }',
      {},
      headersOf('owner'),
    );
    const nodes = res.data?.users.edges.map((e) => e.node) ?? [];
    expect(nodes.length).toBe(5);
    for (const [i, node] of nodes.entries()) {
      if (node.id === OWNER) expect(node.email).toMatch(/@/);
      else {
        expect(node.email).toBeNull();
        expect(
          res.errors?.some((e) => samePath(e.path, ['users', 'edges', i, 'node', 'email']) && e.extensions?.code === UNAUTHORIZED),
        ).toBe(true);
      }
    }
  });
});

/** The gateway's counters that explain a response cache miss: events consumed, cache errors, response cache results. */
const gatewayCounters = async (): Promise<Map<string, number>> => {
  const out = new Map<string, number>();
  const add = async (metric: string, label: string, keep: (labels: Record<string, string | number>) => boolean) => {
    for (const v of (await stack.registry.getSingleMetric(metric)?.get())?.values ?? []) {
      if (!keep(v.labels as Record<string, string | number>)) continue;
      const key = `${metric}{${String(v.labels[label])}}`;
      out.set(key, (out.get(key) ?? 0) + v.value);
    }
  };
  await add('events_consumed_total', 'type', (l) => l.service === 'gateway');
  await add('cache_errors_total', 'op', (l) => l.service === 'gateway');
  await add('cache_requests_total', 'result', (l) => l.service === 'gateway' && l.cache === 'response');
  return out;
};
const changesSince = (before: Map<string, number>, after: Map<string, number>): string =>
  [...after]
    .map(([key, value]) => [key, value - (before.get(key) ?? 0)] as const)
    .filter(([, delta]) => delta !== 0)
    .map(([key, delta]) => `${key} +${delta}`)
    .join(', ') || 'nothing counted';

describe('two users at the same instants', () => {
  it('never receive each other’s private data, with every cache warm', async () => {
    const orderOf = {
      owner: await draftOrderOf('owner', true),
      other: await createdOrderOf('other'),
    };
    const own = { owner: { id: OWNER, email: '' }, other: { id: OTHER, email: '' } };
    const query = '{ me { id email orders(first: 3) { edges { node { id customer { id } } } } } }';
    for (const who of ['owner', 'other'] as const) {
      const data = await as<{ me: { id: string; email: string } }>(who, query);
      own[who].email = data.me.email;
    }
    expect(own.owner.email).not.toBe(own.other.email);

    // The same document, byte for byte, from both users: only the verified identity tells them apart.
    const rounds = 200;
    const requests: Array<'owner' | 'other'> = Array.from({ length: rounds * 2 }, (_, i) => (i % 2 === 0 ? 'owner' : 'other'));
    const answers = await Promise.all(
      requests.map(async (who) => ({
        who,
        res: await gateway.query<{
          me: { id: string; email: string; orders: { edges: Array<{ node: { id: string; customer: { id: string } } }> } };
        }>(query, {}, headersOf(who)),
      })),
    );
    for (const { who, res } of answers) {
      expect(res.errors).toBeUndefined();
      expect(res.data?.me.id).toBe(own[who].id);
      expect(res.data?.me.email).toBe(own[who].email);
      const customers = new Set(res.data?.me.orders.edges.map((e) => e.node.customer.id));
      expect([...customers].every((c) => c === own[who].id)).toBe(true);
    }
    const orderIds = (who: 'owner' | 'other') =>
      new Set(answers.filter((a) => a.who === who).flatMap((a) => a.res.data?.me.orders.edges.map((e) => e.node.id) ?? []));
    expect(orderIds('owner').has(orderOf.owner)).toBe(true);
    expect(orderIds('other').has(orderOf.owner)).toBe(false);
    expect(orderIds('other').has(orderOf.other)).toBe(true);
  });

  it('are each served their own cached PRIVATE response, under their own id', async () => {
    // `me { id email }` is cacheable for 60 s and PRIVATE (email): the response cache keeps one per user.
    const query = '{ me { id name email } }';
    const accountsRequests = async () =>
      (await stack.registry.getSingleMetric('gateway_subgraph_requests_total')?.get())?.values.find((v) => v.labels.subgraph === 'accounts')
        ?.value ?? 0;
    const expected = {} as Record<'owner' | 'other', unknown>;
    for (const who of ['owner', 'other'] as const) {
      const res = await gateway.query(query, {}, headersOf(who));
      expect(res.headers.get('cache-control')).toMatch(/private/);
      expected[who] = res.data;
    }
    // The matrix's checkouts end later (OrderConfirmed names its customer, whose cached responses
    // it retires): wait until none is open, so that only this test's requests are counted.
    const orders = stack.subgraphs.orders as OrdersSubgraph;
    await eventually(
      async () => (await Promise.all(orders.shards().map((s) => s.orders.openCheckouts()))).flat().length,
      (open) => open === 0,
      30_000,
    );
    // And every event they wrote is published (the gateway evicts on them as they arrive).
    await eventually(
      async () => Promise.all(orders.shards().map(async (s) => (await outboxStatus(s.store as Store<unknown>)).pending)),
      (pending) => pending.every((n) => n === 0),
      30_000,
    );
    // Other services' events (inventory's StockChanged from those checkouts, relayed on their own
    // schedule) may still arrive: one naming a user retires that user's cached response, and one
    // landing while a response is made keeps it from being stored, so a round they land in asks
    // accounts again, rightly. So a round is repeated until one runs undisturbed, at most ten
    // times: with the response cache broken, none would. (Three clean-clone CI runs failed here
    // with every round disturbed. Reproduced under CPU burners, the counters below showed why:
    // cache calls timing out and the cache's breaker bypassing Redis, with no event consumed at
    // all; hence the stack's 5 s cache limit above.)
    const whos: Array<'owner' | 'other'> = Array.from({ length: 400 }, (_, i) => (i % 2 === 0 ? 'owner' : 'other'));
    const asked: number[] = [];
    // What each round saw, printed when none ran undisturbed: the events the gateway consumed (by
    // type), its cache errors (by op), and the response cache's hits, misses and stale entries.
    const rounds: string[] = [];
    for (let round = 0; round < 10 && asked.at(-1) !== 0; round++) {
      const start = await gatewayCounters();
      for (const who of ['owner', 'other'] as const) expected[who] = (await gateway.query(query, {}, headersOf(who))).data;
      const before = await accountsRequests();
      const answers = await Promise.all(whos.map(async (who) => ({ who, res: await gateway.query(query, {}, headersOf(who)) })));
      for (const { who, res } of answers) expect(res.data).toEqual(expected[who]);
      asked.push((await accountsRequests()) - before);
      rounds.push(`round ${round}: accounts asked ${asked.at(-1)}; ${changesSince(start, await gatewayCounters())}`);
    }
    // Every one of the 400 came from the response cache: accounts was not asked again.
    if (asked.at(-1) !== 0) throw new Error(`no round ran undisturbed:\n${rounds.join('\n')}`);
    expect(asked.at(-1)).toBe(0);
    // An anonymous caller, and a third user, get nothing of theirs from that cache.
    expect((await gateway.query(query)).data).toEqual({ me: null });
    const third = await gateway.query<{ me: { id: string } }>(query, {}, bearer(await stack.token('u00003')));
    expect(third.data?.me.id).toBe('u00003');
  });
});
