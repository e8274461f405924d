// Subscriptions through the gateway, over graphql-transport-ws (WebSocket) and Server-Sent
// Events (the GraphQL over SSE protocol, distinct connections), each case over both: a customer follows
// their order and sees each change once, in order, with fields from orders, products, inventory
// and accounts resolved per event; a stranger and an anonymous caller are refused; a plain HTTP
// subscription gets a coded error; a draining gateway closes every socket with 1012 and ends
// every SSE stream with SHUTTING_DOWN; an expired token ends them with TOKEN_EXPIRED.
import { randomUUID } from 'node:crypto';
import pino from 'pino';
import WebSocket from 'ws';
import { type Client, createClient } from 'graphql-ws';
import { type Client as SseClient, createClient as createSseClient } from 'graphql-sse';
import { STACK_TEST_ENV, type Stack, startStack } from '@shop/stack';
import { bearer, eventually, graphqlClient } from '@shop/testing';

jest.setTimeout(120_000);

const FAST = {
  CHECKOUT_STEP_TIMEOUT_MS: '1000',
  CHECKOUT_TIMER_INTERVAL_MS: '100',
  RESERVATION_SWEEP_INTERVAL_MS: '100',
  PSP_LATENCY_MS: '2',
  RATE_LIMIT_POINTS: '0',
};
const OWNER = 'u00001';
const STRANGER = 'u00002';
const FOLLOW = `subscription Follow($id: ID!) {
  orderUpdated(id: $id) { id version status total lines { quantity product { id name inStock } } customer { id name } }
}`;

interface Followed {
  id: string;
  version: number;
  status: string;
  total: number;
  lines: Array<{ quantity: number; product: { id: string; name: string; inStock: boolean | null } | null }>;
  customer: { id: string; name: string } | null;
}

let stack: Stack;
let gateway: ReturnType<typeof graphqlClient>;
const clients: Array<Client | SseClient> = [];

/** What both transports' clients offer: subscribe with a sink, get an unsubscribe function. */
type Transport = 'graphql-transport-ws' | 'sse';
type AnyClient = Pick<Client, 'subscribe'>;

beforeAll(async () => {
  stack = await startStack({
    env: { ...STACK_TEST_ENV, ...FAST },
    store: () => ({ sqlitePath: ':memory:' }),
    ports: { gateway: 0, accounts: 0, products: 0, inventory: 0, reviews: 0, orders: 0, payments: 0 },
    host: '127.0.0.1',
    logger: pino({ level: 'silent' }),
    seed: { users: 10, products: 10, reviews: 10 },
    // Pings every second, so the heartbeat test need not wait 15 s (clients answer them by themselves).
    subscriptions: { keepAliveMs: 1000 },
  });
  gateway = graphqlClient(stack.gatewayUrl);
});

afterAll(async () => {
  for (const c of clients) await c.dispose();
  await stack?.stop();
});

const wsUrl = () => stack.gatewayUrl.replace(/^http/, 'ws');

function wsClient(token: string | undefined, extra: Partial<Parameters<typeof createClient>[0]> = {}): Client {
  const client = createClient({
    url: wsUrl(),
    webSocketImpl: WebSocket,
    lazy: true,
    retryAttempts: 0,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    ...extra,
  });
  clients.push(client);
  return client;
}

/** A client of the GraphQL over SSE protocol (distinct connections: one stream per operation). */
function sseClient(token: string | undefined): SseClient {
  const client = createSseClient({
    url: stack.gatewayUrl,
    retryAttempts: 0,
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  clients.push(client);
  return client;
}

const clientOf = (transport: Transport, token: string | undefined): AnyClient => (transport === 'sse' ? sseClient(token) : wsClient(token));

/** The codes a subscription was refused with: graphql-ws's `error` message, or SSE's one `next` with errors. */
function refusalCodes(stream: { error: unknown; results: Array<{ errors?: ReadonlyArray<{ extensions?: Record<string, unknown> }> }> }) {
  const errors = Array.isArray(stream.error)
    ? (stream.error as Array<{ extensions?: Record<string, unknown> }>)
    : stream.results[0]?.errors;
  return errors?.map((e) => e.extensions?.code);
}

/** Subscribes and collects each `next` payload; resolves `done` on complete or error. */
function follow<T>(client: AnyClient, query: string, variables: Record<string, unknown>) {
  const results: Array<{ data?: T | null; errors?: ReadonlyArray<{ message: string; extensions?: Record<string, unknown> }> }> = [];
  let error: unknown;
  let completed = false;
  const stop = client.subscribe<T>(
    { query, variables },
    {
      next: (r) => results.push(r),
      error: (e) => {
        // A close event or a list of GraphQL errors: kept as what a test can compare.
        error = Array.isArray(e)
          ? e
          : { code: (e as { code?: number }).code, reason: (e as { reason?: string }).reason, message: String(e) };
        completed = true;
      },
      complete: () => {
        completed = true;
      },
    },
  );
  return {
    results,
    stop,
    get error() {
      return error;
    },
    get completed() {
      return completed;
    },
  };
}

async function as<T>(user: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const res = await gateway.query<T>(query, variables, bearer(await stack.token(user)));
  if (res.errors?.length) throw new Error(JSON.stringify(res.errors));
  return res.data as T;
}

async function newOrder(user: string): Promise<string> {
  return (await as<{ createOrder: { id: string } }>(user, 'mutation ($k: ID) { createOrder(id: $k) { id } }', { k: randomUUID() }))
    .createOrder.id;
}
const addLine = (user: string, id: string, productId: string, quantity: number) =>
  as(user, 'mutation ($id: ID!, $p: ID!, $q: Int!) { addOrderLine(orderId: $id, productId: $p, quantity: $q) { id } }', {
    id,
    p: productId,
    q: quantity,
  });

/** Waits until the subscription has been checked and registered: its first event would otherwise race it. */
async function subscribed(stream: { results: unknown[]; error: unknown; completed: boolean }, active: () => number, before: number) {
  await eventually(
    async () => ({ active: active(), completed: stream.completed }),
    (s) => s.active > before || s.completed,
    10_000,
  );
}

describe.each<Transport>(['graphql-transport-ws', 'sse'])('orderUpdated over %s', (transport) => {
  it('shows its customer each change once, in order, with fields from orders, products, inventory and accounts', async () => {
    const orderId = await newOrder(OWNER);
    const client = clientOf(transport, await stack.token(OWNER));
    const before = stack.gateway.subscriptions();
    const stream = follow<{ orderUpdated: Followed }>(client, FOLLOW, { id: orderId });
    await subscribed(stream, () => stack.gateway.subscriptions(), before);
    expect(stream.error).toBeUndefined();

    await addLine(OWNER, orderId, 'p00001', 2);
    await addLine(OWNER, orderId, 'p00002', 1);
    await as(OWNER, 'mutation ($id: ID!, $k: String!) { checkout(orderId: $id, idempotencyKey: $k) { id } }', {
      id: orderId,
      k: randomUUID(),
    });
    const last = await eventually(
      async () => stream.results.at(-1)?.data?.orderUpdated,
      (o) => o?.status === 'CONFIRMED' || o?.status === 'REJECTED',
      60_000,
    );
    expect(last?.status).toBe('CONFIRMED');
    const seen = stream.results.map((r) => {
      expect(r.errors).toBeUndefined();
      return r.data?.orderUpdated as Followed;
    });
    // One message per change, versions strictly increasing from the first line added (version 2: created is 1).
    const versions = seen.map((o) => o.version);
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
    expect(new Set(versions).size).toBe(versions.length);
    expect(versions[0]).toBe(2);
    // Two lines added (a draft), the checkout under way (placed), then confirmed.
    const statuses = seen.map((o) => o.status);
    expect(statuses.slice(0, 2)).toEqual(['DRAFT', 'DRAFT']);
    expect(statuses.at(-1)).toBe('CONFIRMED');
    expect(statuses.slice(2, -1).every((s) => s === 'PLACED')).toBe(true);
    expect(statuses.length).toBeGreaterThanOrEqual(4);
    // Each is the order at that change: one line, then two, then placed with the same lines.
    expect(seen[0]?.lines.map((l) => [l.product?.id, l.quantity])).toEqual([['p00001', 2]]);
    expect(seen[1]?.lines.map((l) => [l.product?.id, l.quantity])).toEqual([
      ['p00001', 2],
      ['p00002', 1],
    ]);
    // Fields of other subgraphs, resolved per event: products' name, inventory's inStock, accounts' name.
    for (const o of seen) {
      expect(o.customer?.id).toBe(OWNER);
      expect(typeof o.customer?.name).toBe('string');
      for (const line of o.lines) {
        expect(typeof line.product?.name).toBe('string');
        expect(typeof line.product?.inStock).toBe('boolean');
      }
    }
    expect(seen.at(-1)?.total).toBeGreaterThan(0);
    stream.stop();
  });

  it('shows the checkout each step of the way: every event once, in order, the last one CONFIRMED', async () => {
    const orderId = await newOrder(OWNER);
    await addLine(OWNER, orderId, 'p00001', 1);
    const before = stack.gateway.subscriptions();
    const progress = follow<{
      checkoutProgress: { id: string; status: string; steps: Array<{ name: string; status: string; attempts: number }> } | null;
    }>(
      clientOf(transport, await stack.token(OWNER)),
      'subscription ($id: ID!) { checkoutProgress(orderId: $id) { id status reason steps { name status attempts } } }',
      { id: orderId },
    );
    await subscribed(progress, () => stack.gateway.subscriptions(), before);
    await as(OWNER, 'mutation ($id: ID!, $k: String!) { checkout(orderId: $id, idempotencyKey: $k) { id } }', {
      id: orderId,
      k: randomUUID(),
    });
    await eventually(
      async () => progress.results.at(-1)?.data?.checkoutProgress?.status,
      (status) => status === 'CONFIRMED' || status === 'REJECTED',
      60_000,
    );
    const seen = progress.results.map((r) => {
      expect(r.errors).toBeUndefined();
      return r.data?.checkoutProgress;
    });
    // Started, then every step started and succeeded (each its own message, the steps list growing), then confirmed.
    expect(seen[0]?.status).toBe('RUNNING');
    expect(seen.at(-1)?.status).toBe('CONFIRMED');
    const stepCounts = seen.map((c) => c?.steps.length ?? 0);
    expect(stepCounts).toEqual([...stepCounts].sort((a, b) => a - b));
    const last = seen.at(-1);
    expect(last?.steps.length).toBeGreaterThanOrEqual(2);
    expect(last?.steps.every((s) => s.status === 'DONE')).toBe(true);
    // Every message is a new state (an event delivered twice would repeat one): at least one
    // for started, one per step started and done, and confirmed.
    for (let i = 1; i < seen.length; i++) expect(JSON.stringify(seen[i])).not.toBe(JSON.stringify(seen[i - 1]));
    expect(seen.length).toBeGreaterThanOrEqual(2 + 2 * (last?.steps.length ?? 0) - 1);
    expect(new Set(seen.map((c) => c?.id))).toEqual(new Set([last?.id]));
  });

  it("follows a product's stock, anonymously: each change once, with the levels it made and products' name", async () => {
    const productId = transport === 'sse' ? 'p00009' : 'p00010';
    const before = stack.gateway.subscriptions();
    const stock = follow<{ stockChanged: { id: string; name: string; quantityOnHand: number; inStock: boolean } }>(
      clientOf(transport, undefined),
      'subscription ($id: ID!) { stockChanged(productId: $id) { id name quantityOnHand inStock } }',
      { id: productId },
    );
    await subscribed(stock, () => stack.gateway.subscriptions(), before);
    const admin = await stack.token('u00009', { roles: ['customer', 'admin'] });
    for (const quantity of [5, 0, 7])
      await gateway.query(
        'mutation ($p: ID!, $q: Int!) { setStock(productId: $p, quantity: $q) { id } }',
        { p: productId, q: quantity },
        bearer(admin),
      );
    await eventually(
      async () => stock.results.length,
      (n) => n >= 3,
      15_000,
    );
    expect(stock.results.map((r) => r.errors)).toEqual([undefined, undefined, undefined]);
    expect(stock.results.map((r) => [r.data?.stockChanged.quantityOnHand, r.data?.stockChanged.inStock])).toEqual([
      [5, true],
      [0, false],
      [7, true],
    ]);
    expect(stock.results.every((r) => r.data?.stockChanged.id === productId && typeof r.data.stockChanged.name === 'string')).toBe(true);
  });

  it('follows a product anonymously: each update once, as it is then; an unknown product is NOT_FOUND', async () => {
    const productId = transport === 'sse' ? 'p00007' : 'p00008';
    const before = stack.gateway.subscriptions();
    const changes = follow<{ productChanged: { id: string; name: string; price: number; inStock: boolean | null } }>(
      clientOf(transport, undefined),
      'subscription ($id: ID!) { productChanged(id: $id) { id name price inStock } }',
      { id: productId },
    );
    await subscribed(changes, () => stack.gateway.subscriptions(), before);
    const admin = await stack.token('u00009', { roles: ['customer', 'admin'] });
    for (const price of [1234, 5678])
      await gateway.query(
        'mutation ($p: ID!, $price: Int!) { updateProduct(id: $p, input: { price: $price }) { id } }',
        { p: productId, price },
        bearer(admin),
      );
    await eventually(
      async () => changes.results.length,
      (n) => n >= 2,
      15_000,
    );
    expect(changes.results.map((r) => [r.errors, r.data?.productChanged.price])).toEqual([
      [undefined, 1234],
      [undefined, 5678],
    ]);
    expect(changes.results.every((r) => typeof r.data?.productChanged.name === 'string')).toBe(true);

    const unknown = follow(clientOf(transport, undefined), 'subscription { productChanged(id: "p99999") { id } }', {});
    await eventually(
      async () => unknown.completed,
      (done) => done,
      10_000,
    );
    expect(refusalCodes(unknown)).toEqual(['NOT_FOUND']);
  });

  it('refuses a stranger and an anonymous caller, and a plain HTTP subscription, each with its code', async () => {
    const orderId = await newOrder(OWNER);
    const stranger = follow(clientOf(transport, await stack.token(STRANGER)), FOLLOW, { id: orderId });
    const anonymous = follow(clientOf(transport, undefined), FOLLOW, { id: orderId });
    await eventually(
      async () => [stranger.completed, anonymous.completed],
      (done) => done.every(Boolean),
      10_000,
    );
    expect(refusalCodes(stranger)).toEqual(['UNAUTHORIZED_FIELD_OR_TYPE']);
    expect(refusalCodes(anonymous)).toEqual(['UNAUTHORIZED_FIELD_OR_TYPE']);
    // Nothing (more) reaches them when the order changes.
    const before = [stranger.results.length, anonymous.results.length];
    await addLine(OWNER, orderId, 'p00003', 1);
    expect([stranger.results.length, anonymous.results.length]).toEqual(before);
    expect(stranger.results.every((r) => r.data === undefined || r.data === null)).toBe(true);

    const res = await gateway.query(FOLLOW, { id: orderId }, bearer(await stack.token(OWNER)));
    expect(res.errors?.map((e) => e.extensions?.code)).toEqual(['SUBSCRIPTION_TRANSPORT_REQUIRED']);
  });

  it('a token that expires ends its subscriptions with TOKEN_EXPIRED (and closes a socket with 4401)', async () => {
    const orderId = await newOrder(OWNER);
    // A token that lives two seconds.
    const token = await stack.token(OWNER, { expiresInS: 2 });
    const closes: number[] = [];
    const client =
      transport === 'sse'
        ? clientOf(transport, token)
        : wsClient(token, { on: { closed: (e) => closes.push((e as { code: number }).code) } });
    const stream = follow(client, FOLLOW, { id: orderId });
    await eventually(
      async () => stream.completed && (transport === 'sse' || closes.length > 0),
      (done) => done,
      15_000,
    );
    expect(closes).toEqual(transport === 'sse' ? [] : [4401]);
    expect(stream.results.at(-1)?.errors?.map((e) => e.extensions?.code)).toEqual(['TOKEN_EXPIRED']);
  });
});

describe('hostile WebSocket clients', () => {
  /** Opens a raw graphql-transport-ws socket, sends `messages`, and resolves with how it closed (or the HTTP status that refused it). */
  function raw(path: string, messages: string[]): Promise<{ code?: number; reason?: string; status?: number }> {
    return new Promise((resolve) => {
      const socket = new WebSocket(stack.gatewayUrl.replace(/^http/, 'ws').replace(/\/graphql$/, path), 'graphql-transport-ws');
      socket.once('open', () => messages.forEach((m) => socket.send(m)));
      socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
      socket.once('unexpected-response', (_req, res) => {
        resolve({ status: res.statusCode });
        socket.terminate();
      });
      socket.once('error', () => undefined);
    });
  }
  const init = JSON.stringify({ type: 'connection_init', payload: {} });

  it('each gets a coded close, and the gateway keeps serving', async () => {
    const deep = `{"id":"1","type":"subscribe","payload":{"query":"{ __typename }","variables":{"v":${'['.repeat(10_000)}${']'.repeat(10_000)}}}}`;
    expect(await raw('/graphql', [init, deep])).toEqual({ code: 4400, reason: 'The message nests JSON deeper than 64 levels' });
    expect((await raw('/graphql', [init, '{not json'])).code).toBe(4400);
    // Subscribing before connection_init: graphql-ws's own 4401.
    expect((await raw('/graphql', [JSON.stringify({ id: '1', type: 'subscribe', payload: { query: '{ __typename }' } })])).code).toBe(4401);
    // A bad token in connection_init: 4403 with the reason.
    const forbidden = await raw('/graphql', [
      JSON.stringify({ type: 'connection_init', payload: { authorization: 'Bearer not.a.token' } }),
    ]);
    expect(forbidden.code).toBe(4403);
    expect(forbidden.reason).toMatch(/^UNAUTHENTICATED/);
    // Another path: refused before any socket exists.
    expect(await raw('/elsewhere', [])).toEqual({ status: 404 });
    expect((await gateway.query('{ __typename }')).data).toEqual({ __typename: 'Query' });
  });

  it('are pinged, and one that answers no ping is dropped', async () => {
    // `ws` answers pings by itself; this client is told not to, as a frozen or vanished peer would not.
    const socket = new WebSocket(stack.gatewayUrl.replace(/^http/, 'ws'), 'graphql-transport-ws', { autoPong: false });
    const pings: number[] = [];
    socket.on('ping', () => pings.push(Date.now()));
    socket.once('open', () => socket.send(init));
    const closed = await new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    // Pinged once, then dropped at the next interval without a pong (terminated: no close frame).
    expect(pings.length).toBeGreaterThanOrEqual(1);
    expect(closed).toBe(1006);
    // A client that answers stays: it has had pings and is still open two intervals later.
    const answering = new WebSocket(stack.gatewayUrl.replace(/^http/, 'ws'), 'graphql-transport-ws');
    const answered: number[] = [];
    answering.on('ping', () => answered.push(Date.now()));
    await new Promise((resolve) => answering.once('open', resolve));
    answering.send(init);
    await eventually(
      async () => answered.length,
      (n) => n >= 3,
      15_000,
    );
    expect(answering.readyState).toBe(WebSocket.OPEN);
    answering.close();
  });

  it('a query over the socket runs once through the same pipeline, as over HTTP', async () => {
    const client = wsClient(undefined);
    const result = await new Promise((resolve, reject) => {
      let value: unknown;
      client.subscribe(
        { query: '{ product(id: "p00001") { id name } }' },
        { next: (r) => (value = r), error: reject, complete: () => resolve(value) },
      );
    });
    expect(result).toEqual(expect.objectContaining({ data: { product: { id: 'p00001', name: expect.any(String) } } }));
    expect((result as { errors?: unknown }).errors).toBeUndefined();
  });
});

describe('a draining gateway', () => {
  it('closes each socket with 1012 and ends each SSE stream with SHUTTING_DOWN, then stops', async () => {
    const orderId = await newOrder(OWNER);
    const closes: number[] = [];
    const client = wsClient(await stack.token(OWNER), { on: { closed: (e) => closes.push((e as { code: number }).code) } });
    const before = stack.gateway.subscriptions();
    const stream = follow(client, FOLLOW, { id: orderId });
    await subscribed(stream, () => stack.gateway.subscriptions(), before);
    const overSse = follow(sseClient(await stack.token(OWNER)), FOLLOW, { id: orderId });
    await subscribed(overSse, () => stack.gateway.subscriptions(), before + 1);
    const started = Date.now();
    await stack.stop();
    // Well under stopServer's 10 s grace: no socket was left to time out.
    expect(Date.now() - started).toBeLessThan(5_000);
    await eventually(
      async () => closes.length,
      (n) => n > 0,
      5_000,
    );
    // The WebSocket's subscription is left uncompleted (a graphql-ws client that retries subscribes
    // again elsewhere by itself: test/subscriptions-services.e2e.test.ts); this one does not retry.
    expect(closes).toEqual([1012]);
    expect(stream.results).toEqual([]);
    expect((stream.error as { code?: number } | undefined)?.code).toBe(1012);
    // The SSE stream: its last `next` says why, then `complete`.
    await eventually(
      async () => overSse.completed,
      (done) => done,
      5_000,
    );
    expect(overSse.results.at(-1)?.errors?.map((e) => e.extensions?.code)).toEqual(['SHUTTING_DOWN']);
    expect(overSse.error).toBeUndefined();
    expect(stack.gateway.subscriptions()).toBe(0);
  });
});

describe('the per-client rate limit', () => {
  it('counts the upgrade and each subscribe message on an open socket, as it counts requests', async () => {
    const limited = await startStack({
      env: { ...STACK_TEST_ENV, RATE_LIMIT_POINTS: '3', RATE_LIMIT_WINDOW_S: '60' },
      store: () => ({ sqlitePath: ':memory:' }),
      ports: { gateway: 0, accounts: 0, products: 0, inventory: 0, reviews: 0, orders: 0, payments: 0 },
      host: '127.0.0.1',
      logger: pino({ level: 'silent' }),
      seed: { users: 2, products: 2, reviews: 0 },
    });
    const client = createClient({ url: limited.gatewayUrl.replace(/^http/, 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
    try {
      const once = () =>
        new Promise<string>((resolve) => {
          client.subscribe(
            { query: '{ __typename }' },
            {
              next: () => resolve('ok'),
              error: (e) => resolve(Array.isArray(e) ? String((e[0] as { extensions?: { code?: string } }).extensions?.code) : String(e)),
              complete: () => undefined,
            },
          );
        });
      const seen: string[] = [];
      for (let i = 0; i < 4; i++) seen.push(await once());
      // Three points: the upgrade's, then two messages; the rest are refused with the code.
      expect(seen).toEqual(['ok', 'ok', 'RATE_LIMITED', 'RATE_LIMITED']);
    } finally {
      await client.dispose();
      await limited.stop();
    }
  });
});
