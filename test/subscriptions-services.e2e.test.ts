// Subscriptions in the services mode with two gateway replicas: every process its own, on its own
// PostgreSQL database, events through real RabbitMQ under a namespace of this run's own. An event
// orders produces reaches subscribers on both replicas (each replica hears the bus on a queue of
// its own); a replica restarted with SIGTERM closes its sockets with 1012 and a retrying
// graphql-ws client subscribes again by itself; a replica killed with SIGKILL leaves the other's
// subscribers receiving.
import { randomBytes, randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { type Client, createClient } from 'graphql-ws';
import { type Client as SseClient, createClient as createSseClient } from 'graphql-sse';
import { DEV_PASSWORD } from '@shop/accounts';
import { defaultSeedSizes, seedUsers } from '@shop/seed';
import { type Services, startServices } from '@shop/stack';
import { bearer, eventually, graphqlClient, requireService, signIn, tempPostgres } from '@shop/testing';

jest.setTimeout(180_000);

const OWNER = 'u00001';
const FOLLOW = `subscription ($id: ID!) { orderUpdated(id: $id) { id version lines { quantity product { name inStock } } customer { name } } }`;
interface Followed {
  id: string;
  version: number;
  lines: Array<{ quantity: number; product: { name: string; inStock: boolean | null } | null }>;
  customer: { name: string } | null;
}

describe('subscriptions on two gateway replicas (services mode, RabbitMQ)', () => {
  const names = ['accounts', 'products', 'inventory', 'reviews', 'orders', 'payments'] as const;
  const databases = names.map((name) => ({ name, db: tempPostgres(`sub_${name}`) }));
  let services: Services;
  let token: string;
  const closers: Array<() => Promise<void> | void> = [];

  beforeAll(async () => {
    await requireService('postgres');
    await requireService('amqp');
    services = await startServices({
      ports: { gateway: 0, accounts: 0, products: 0, inventory: 0, reviews: 0, orders: 0, payments: 0 },
      databaseUrl: (name) => databases.find((d) => d.name === name)!.db.url,
      env: {
        LOG_LEVEL: 'warn',
        SUPERGRAPH_WATCH: 'false',
        RATE_LIMIT_POINTS: '0',
        AMQP_NAMESPACE: `sub${randomBytes(4).toString('hex')}`,
      },
      gatewayReplicas: 2,
      stdio: 'inherit',
    });
    const email = [...seedUsers(defaultSeedSizes)].find((u) => u.id === OWNER)!.email;
    token = await signIn(services.gatewayUrl, email, DEV_PASSWORD);
  }, 180_000);

  afterAll(async () => {
    for (const close of closers.splice(0)) await close();
    await services?.stop();
    await Promise.all(databases.map((d) => d.db.drop()));
  });

  const as = async <T>(url: string, query: string, variables: Record<string, unknown>): Promise<T> => {
    const res = await graphqlClient(url).query<T>(query, variables, bearer(token));
    if (res.errors?.length) throw new Error(JSON.stringify(res.errors));
    return res.data as T;
  };
  const addLine = (url: string, id: string, productId: string) =>
    as(url, 'mutation ($id: ID!, $p: ID!) { addOrderLine(orderId: $id, productId: $p, quantity: 1) { id } }', { id, p: productId });

  function collect(client: Pick<Client, 'subscribe'>, orderId: string) {
    const seen: Followed[] = [];
    const errors: unknown[] = [];
    client.subscribe<{ orderUpdated: Followed }>(
      { query: FOLLOW, variables: { id: orderId } },
      {
        next: (r) => {
          if (r.errors) errors.push(r.errors);
          if (r.data) seen.push(r.data.orderUpdated);
        },
        error: (e) => errors.push(e),
        complete: () => undefined,
      },
    );
    return { seen, errors };
  }

  /** The replica's active subscriptions, from its /metrics. */
  const active = async (url: string): Promise<number> => {
    const text = await (await fetch(url.replace(/graphql$/, 'metrics'))).text();
    const line = text.split('\n').find((l) => l.startsWith('gateway_subscriptions_active'));
    return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
  };

  it('an event produced by orders reaches subscribers on both replicas; a restarted replica’s client subscribes again; the survivor of a SIGKILL keeps receiving', async () => {
    const [first, second] = services.gatewayUrls as [string, string];
    const orderId = (
      await as<{ createOrder: { id: string } }>(first, 'mutation ($k: ID) { createOrder(id: $k) { id } }', { k: randomUUID() })
    ).createOrder.id;

    // A client that retries, as a frontend would: a 1012 close (a drain) is not fatal to it, and
    // on reconnecting it subscribes again by itself.
    const closes: number[] = [];
    const ws: Client = createClient({
      url: first.replace(/^http/, 'ws'),
      webSocketImpl: WebSocket,
      retryAttempts: 100,
      retryWait: () => new Promise((resolve) => setTimeout(resolve, 250)),
      connectionParams: { authorization: `Bearer ${token}` },
      // Every failed attempt is retried: while the replica is down the attempts fail with errors (refused, 503), not close codes.
      shouldRetry: () => true,
      on: { closed: (e) => closes.push((e as { code: number }).code) },
    });
    closers.push(() => ws.dispose());
    const sse: SseClient = createSseClient({ url: second, retryAttempts: 0, headers: { authorization: `Bearer ${token}` } });
    closers.push(() => sse.dispose());
    const onFirst = collect(ws, orderId);
    const onSecond = collect(sse, orderId);
    await eventually(
      async () => [await active(first), await active(second)],
      (n) => n.every((x) => x >= 1),
      15_000,
    );

    // A change written through replica 1 reaches both: orders' event, through RabbitMQ, to each replica's own queue.
    await addLine(first, orderId, 'p00001');
    await eventually(
      async () => [onFirst.seen.length, onSecond.seen.length],
      (n) => n.every((x) => x >= 1),
      30_000,
    );
    for (const { seen } of [onFirst, onSecond]) {
      expect(seen.map((o) => o.version)).toEqual([2]);
      expect(seen[0]?.lines[0]?.quantity).toBe(1);
      expect(typeof seen[0]?.lines[0]?.product?.name).toBe('string');
      expect(typeof seen[0]?.lines[0]?.product?.inStock).toBe('boolean');
      expect(typeof seen[0]?.customer?.name).toBe('string');
    }

    // Replica 1 restarts (SIGTERM: it drains, closing the socket with 1012); the client reconnects
    // and subscribes again by itself, and gets the next change, written through replica 2.
    await services.kill('gateway', 'SIGTERM');
    expect(closes).toContain(1012);
    await services.restart('gateway');
    await eventually(
      async () => active(first),
      (n) => n >= 1,
      30_000,
    );
    await addLine(second, orderId, 'p00002');
    await eventually(
      async () => [onFirst.seen.length, onSecond.seen.length],
      (n) => n.every((x) => x >= 2),
      30_000,
    );
    expect(onFirst.seen.map((o) => o.version)).toEqual([2, 3]);
    expect(onFirst.errors).toEqual([]);
    // Done with it: a retrying client would keep calling the replica killed next.
    await ws.dispose();

    // Replica 1 dies outright; replica 2's subscriber still gets the next change.
    await services.kill('gateway', 'SIGKILL');
    await addLine(second, orderId, 'p00003');
    await eventually(
      async () => onSecond.seen.length,
      (n) => n >= 3,
      30_000,
    );
    expect(onSecond.seen.map((o) => o.version)).toEqual([2, 3, 4]);
    expect(onSecond.seen[2]?.lines).toHaveLength(3);
    expect(onSecond.errors).toEqual([]);
  });
});
