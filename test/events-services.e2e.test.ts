import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { connect } from 'amqplib';
import pg from 'pg';
import { type Identity, gatewayHeaders } from '@shop/server';
import { REPO_ROOT, type Services, startServices } from '@shop/stack';
import { type AmqpBus, type EventEnvelope, type Subscription, connectAmqpBus } from '@shop/events';
import { graphqlClient, requireService, services as real, tempPostgres, testTelemetry } from '@shop/testing';

// The event acceptance of issue #6 in the services mode: products and reviews as separate
// processes, each on its own fresh PostgreSQL database, talking through real RabbitMQ under a
// namespace of this run's own (AMQP_NAMESPACE), so nothing else on the broker sees its messages.

/** Polls `read` until `done` holds; fails with `what` after `ms`. */
async function until<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${JSON.stringify(value)})`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A counter summed over the lines of a process's /metrics that carry every given label. */
async function scrape(graphqlUrl: string, metric: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(graphqlUrl.replace(/graphql$/, 'metrics'))).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** Runs `npm run events -- ...` as a child process (node --import tsx, as npm would). */
function cli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/events.ts', ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
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

type OutboxRow = {
  position: string;
  id: string;
  type: string;
  aggregate_id: string;
  aggregate_version: number;
  occurred_at: string;
  schema_version: number;
  payload: string;
};

describe('events in the services mode (processes, PostgreSQL, RabbitMQ)', () => {
  const namespace = `t${randomBytes(4).toString('hex')}`;
  const db = { products: tempPostgres('ev_products'), reviews: tempPostgres('ev_reviews') };
  const pools: Partial<Record<keyof typeof db, pg.Pool>> = {};
  const poolFor = (service: keyof typeof db): pg.Pool => {
    const pool = new pg.Pool({ connectionString: db[service].url, max: 2 });
    // An idle client ended by the server (the database dropped with FORCE at teardown) is no test failure.
    pool.on('error', () => undefined);
    return pool;
  };
  const sql = <R extends pg.QueryResultRow>(service: keyof typeof db, text: string, values: unknown[] = []) =>
    (pools[service] ??= poolFor(service)).query<R>(text, values).then((r) => r.rows);
  let stack: Services;
  let bus: AmqpBus;
  const subscriptions: Subscription[] = [];
  const cliEnv = () => ({
    AMQP_NAMESPACE: namespace,
    AMQP_URL: real.amqp,
    PRODUCTS_DATABASE_URL: db.products.url,
    REVIEWS_DATABASE_URL: db.reviews.url,
  });
  // The subgraphs answer only requests the gateway signed: these are signed with the run's secret,
  // for the caller the gateway would have verified.
  const signed = (url: string, identity: Identity) => ({
    query: (query: string, variables: Record<string, unknown>) => {
      const body = JSON.stringify({ query, variables });
      return graphqlClient(url).raw(body, gatewayHeaders(stack.subgraphSecret, url, body, { identity }));
    },
  });
  /** Catalogue writes need catalog:write. */
  const products = () => signed(stack.subgraphUrls.products, { sub: 'u00001', roles: ['customer'], scopes: ['catalog:write'] });
  /** A review's author is its caller. */
  const reviews = (author: string) => signed(stack.subgraphUrls.reviews, { sub: author, roles: ['customer'], scopes: [] });

  beforeAll(async () => {
    await requireService('postgres');
    await requireService('amqp');
    stack = await startServices({
      only: ['products', 'reviews'],
      gateway: false,
      ports: { products: 0, reviews: 0 },
      databaseUrl: (name) => db[name as keyof typeof db].url,
      env: {
        LOG_LEVEL: 'error',
        AMQP_NAMESPACE: namespace,
        SEED_USERS: '20',
        SEED_PRODUCTS: '40',
        SEED_REVIEWS: '100',
        HOT_CACHE: 'false',
      },
      stdio: 'inherit',
    });
    bus = await connectAmqpBus({ url: real.amqp, service: 'events-e2e', telemetry: testTelemetry('events-e2e'), namespace });
  }, 120_000);

  afterAll(async () => {
    for (const s of subscriptions) await s.close();
    await bus?.close();
    await stack?.stop();
    await Promise.all(Object.values(pools).map((p) => p.end()));
    await Promise.all(Object.values(db).map((d) => d.drop()));
    const conn = await connect(real.amqp);
    const ch = await conn.createChannel();
    for (const q of ['products', 'reviews', 'cli-probe']) {
      await ch.deleteQueue(`${namespace}.${q}`).catch(() => undefined);
      await ch.deleteQueue(`${namespace}.${q}.dlq`).catch(() => undefined);
    }
    await ch.deleteExchange(`${namespace}.events`).catch(() => undefined);
    await conn.close();
  });

  it('ends a consumer killed mid-batch (SIGKILL) and restarted in the same state as if it had never died', async () => {
    // reviews publishes ReviewAdded; products adds each to its ratings read model. The effect is
    // an increment, so an event applied twice (or lost) shows in the counts.
    const total = 400;
    const productIds = Array.from({ length: 40 }, (_, i) => `p${String(i + 1).padStart(5, '0')}`);
    let written = 0;
    const writer = async () => {
      while (written < total) {
        const i = written++;
        const res = await reviews(`u${String((i % 20) + 1).padStart(5, '0')}`).query(
          'mutation($input: AddReviewInput!) { addReview(input: $input) { id } }',
          {
            input: {
              productId: productIds[(i * 7) % productIds.length],
              body: `burst ${i}`,
              rating: (i % 5) + 1,
            },
          },
        );
        if (res.errors) throw new Error(`addReview ${i}: ${JSON.stringify(res.errors)}`);
      }
    };
    const writing = Promise.all(Array.from({ length: 6 }, writer));

    // Mid-batch: products has applied some of the burst (its own counter), not all of it.
    const consumedAtKill = await until(
      'products to start consuming the burst',
      () => scrape(stack.subgraphUrls.products, 'events_consumed_total', { service: 'products', type: 'ReviewAdded' }),
      (n) => n >= 40,
    );
    await stack.kill('products', 'SIGKILL');
    expect(consumedAtKill).toBeGreaterThan(0);
    expect(consumedAtKill).toBeLessThan(total);
    await writing;

    // Every ReviewAdded is out of reviews' outbox; what products did not take waits in its queue.
    await until(
      'reviews to publish every ReviewAdded',
      () => sql<{ n: string }>('reviews', 'select count(*) as n from outbox where published_at is null'),
      (r) => Number(r[0]?.n) === 0,
    );
    const conn = await connect(real.amqp);
    const waiting = (await (await conn.createChannel()).checkQueue(`${namespace}.products`)).messageCount;
    await conn.close();
    expect(waiting).toBeGreaterThan(0);

    await stack.restart('products');
    const published = await sql<{ id: string }>('reviews', "select id from outbox where type = 'ReviewAdded'");
    expect(published).toHaveLength(total);
    const applied = await until(
      'products to catch up after the restart',
      () => sql<{ event_id: string }>('products', "select event_id from inbox where type = 'ReviewAdded'"),
      (rows) => rows.length >= total,
    );
    // Exactly once: one inbox row per event, the very events reviews published...
    expect(new Set(applied.map((r) => r.event_id)).size).toBe(total);
    expect(applied.map((r) => r.event_id).sort()).toEqual(published.map((r) => r.id).sort());
    // ...one ProductRatingChanged per applied review (an effect run twice would append two)...
    const announced = await sql<{ n: string }>('products', "select count(*) as n from outbox where type = 'ProductRatingChanged'");
    expect(Number(announced[0]?.n)).toBe(total);
    // ...and the read model equals what the producer's own data says (seed reviews included).
    const expected = await sql<{ product_id: string; n: string; s: string }>(
      'reviews',
      'select product_id, count(*) as n, sum(rating) as s from reviews group by product_id order by product_id',
    );
    const actual = await sql<{ product_id: string; review_count: number; rating_sum: number }>(
      'products',
      'select product_id, review_count, rating_sum from product_ratings order by product_id',
    );
    expect(actual.map((r) => [r.product_id, Number(r.review_count), Number(r.rating_sum)])).toEqual(
      expected.map((r) => [r.product_id, Number(r.n), Number(r.s)]),
    );
  }, 120_000);

  const updates = async (id: string, names: string[]) => {
    for (const name of names) {
      const res = await products().query('mutation($id: ID!, $name: String!) { updateProduct(id: $id, input: { name: $name }) { id } }', {
        id,
        name,
      });
      expect(res.errors).toBeUndefined();
    }
  };
  const viewName = async (id: string) =>
    (await sql<{ name: string }>('reviews', 'select name from product_view where id = $1', [id]))[0]?.name;
  const consumedByReviews = () =>
    scrape(stack.subgraphUrls.reviews, 'events_consumed_total', { service: 'reviews', type: 'ProductUpdated' });
  const inboxOfReviews = async () => Number((await sql<{ n: string }>('reviews', 'select count(*) as n from inbox'))[0]?.n);

  it('ignores an injected duplicate, dead-letters poison while later events flow, and keeps per-aggregate order', async () => {
    const id = 'p00003';
    const consumedBefore = await consumedByReviews();
    const inboxBefore = await inboxOfReviews();
    await updates(
      id,
      Array.from({ length: 30 }, (_, i) => `Ordered ${i + 1}`),
    );
    await until(
      'reviews to apply the 30 updates',
      () => viewName(id),
      (name) => name === 'Ordered 30',
    );

    // Order: reviews applied the aggregate's versions in sequence. Each event is applied in its own
    // transaction, one after another, so the inbox rows' transaction ids (xmin) are the order.
    const outbox = await sql<OutboxRow>(
      'products',
      "select * from outbox where aggregate_id = $1 and type = 'ProductUpdated' order by aggregate_version",
      [id],
    );
    // Versions count every event of the aggregate (ProductRatingChanged too): 30 in a row here.
    const v0 = (outbox[0] as OutboxRow).aggregate_version;
    expect(outbox.map((r) => r.aggregate_version)).toEqual(Array.from({ length: 30 }, (_, i) => v0 + i));
    const versionOf = new Map(outbox.map((r) => [r.id, r.aggregate_version]));
    const applied = await sql<{ event_id: string }>(
      'reviews',
      'select event_id from inbox where event_id = any($1) order by xmin::text::bigint',
      [[...versionOf.keys()]],
    );
    expect(applied.map((r) => versionOf.get(r.event_id))).toEqual(outbox.map((r) => r.aggregate_version));

    // Inject, straight onto the exchange: a duplicate of the tenth update (same id; applied again it
    // would rename the product back), an unknown schema version and a body that is not JSON.
    const v10 = outbox[9] as OutboxRow;
    expect(JSON.parse(v10.payload)).toMatchObject({ name: 'Ordered 10' });
    const duplicate: EventEnvelope = {
      id: v10.id,
      type: v10.type,
      source: 'products',
      aggregateId: v10.aggregate_id,
      aggregateVersion: v10.aggregate_version,
      occurredAt: v10.occurred_at,
      schemaVersion: v10.schema_version,
      payload: JSON.parse(v10.payload) as Record<string, unknown>,
    };
    const poison: EventEnvelope = {
      ...duplicate,
      id: randomUUID(),
      aggregateVersion: v0 + 30,
      schemaVersion: 99,
      payload: { id, name: 'Poisoned', discontinued: false },
    };
    const conn = await connect(real.amqp);
    const ch = await conn.createConfirmChannel();
    for (const body of [JSON.stringify(duplicate), JSON.stringify(poison), '{not json'])
      ch.publish(`${namespace}.events`, 'ProductUpdated', Buffer.from(body), { persistent: true });
    await ch.waitForConfirms();
    await conn.close();

    // The duplicate is delivered and handled (counted) but changes nothing; the two others are dead.
    await until('reviews to take the duplicate', consumedByReviews, (n) => n >= consumedBefore + 31);
    const dead = await until(
      'two dead letters',
      () => bus.deadLetters('reviews'),
      (d) => d.length === 2,
    );
    expect(await viewName(id)).toBe('Ordered 30');
    expect(await inboxOfReviews()).toBe(inboxBefore + 30);
    expect(await consumedByReviews()).toBe(consumedBefore + 31);
    expect(dead[0]).toMatchObject({ event: { id: poison.id, schemaVersion: 99 }, attempts: 1 });
    expect(dead[0]?.error).toMatch(/cannot read ProductUpdated schema version 99/);
    expect(dead[1]).toMatchObject({ raw: '{not json', attempts: 0 });
    expect(dead[1]?.error).toMatch(/malformed message: not JSON/);
    expect(await scrape(stack.subgraphUrls.reviews, 'events_dead_lettered_total', { service: 'reviews' })).toBe(2);

    // The rest keep flowing: the next real update is applied after the poison.
    await updates(id, ['Ordered 31']);
    await until(
      'the update after the poison',
      () => viewName(id),
      (name) => name === 'Ordered 31',
    );
    expect(await inboxOfReviews()).toBe(inboxBefore + 31);
  }, 90_000);

  it('lists, redrives and replays through `npm run events` against RabbitMQ and PostgreSQL', async () => {
    const id = 'p00004';
    // reviews' dead letters from the poison test, as an operator sees them.
    const listed = await cli(['dead-letters', 'reviews', '--json'], cliEnv());
    expect(listed.stderr).toBe('');
    expect(listed.code).toBe(0);
    const reviewsDead = JSON.parse(listed.stdout) as Array<{ event: EventEnvelope; error: string; raw?: string }>;
    expect(reviewsDead.map((d) => d.error)).toEqual([
      expect.stringMatching(/schema version 99/),
      expect.stringMatching(/^malformed message/),
    ]);

    // A consumer whose handler is broken, then fixed: its dead letters come back with `redrive`.
    let broken = true;
    const handled: string[] = [];
    subscriptions.push(
      await bus.subscribe({
        group: 'cli-probe',
        types: ['ProductUpdated'],
        maxAttempts: 1,
        handler: async (e) => {
          if (broken) throw new Error('probe is broken');
          handled.push(e.id);
        },
      }),
    );
    await updates(id, ['Probe 1', 'Probe 2']);
    const probeDead = await until(
      'the probe to dead-letter both',
      () => bus.deadLetters('cli-probe'),
      (d) => d.length === 2,
    );
    const [first, second] = probeDead.map((d) => d.event.id) as [string, string];
    const human = await cli(['dead-letters', 'cli-probe'], cliEnv());
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('2 dead letter(s) in group cli-probe');
    expect(human.stdout).toContain(second);
    expect(human.stdout).toContain('probe is broken');

    broken = false;
    const one = await cli(['redrive', 'cli-probe', '--id', second, '--json'], cliEnv());
    expect(one.code).toBe(0);
    expect(JSON.parse(one.stdout)).toEqual({ group: 'cli-probe', redriven: 1 });
    await until(
      'the redriven event',
      async () => handled.length,
      (n) => n === 1,
    );
    expect(handled).toEqual([second]);
    expect((await bus.deadLetters('cli-probe')).map((d) => d.event.id)).toEqual([first]);
    const rest = await cli(['redrive', 'cli-probe'], cliEnv());
    expect(rest.stdout).toContain('1 dead letter(s) of cli-probe sent back');
    await until(
      'the second redriven event',
      async () => handled.length,
      (n) => n === 2,
    );
    expect(handled).toEqual([second, first]);
    expect(await bus.deadLetters('cli-probe')).toEqual([]);

    // Replay from a position: the probe gets exactly products' ProductUpdated events from there,
    // in order; reviews has them all already and its inbox makes them no-ops.
    const status = JSON.parse((await cli(['outbox', 'products', '--json'], cliEnv())).stdout) as {
      events: number;
      pending: number;
      first: number;
      last: number;
    };
    const rows = await sql<{ position: string; id: string; type: string }>(
      'products',
      'select position, id, type from outbox order by position',
    );
    expect(status).toMatchObject({
      events: rows.length,
      pending: 0,
      first: Number(rows[0]?.position),
      last: Number(rows.at(-1)?.position),
    });
    const from = Number(
      (
        await sql<{ position: string }>(
          'products',
          "select position from outbox where aggregate_id = 'p00003' and payload like '%\"Ordered 20\"%'",
        )
      )[0]?.position,
    );
    const expected = rows.filter((r) => Number(r.position) >= from);
    const expectedUpdates = expected.filter((r) => r.type === 'ProductUpdated').map((r) => r.id);
    const consumedBefore = await consumedByReviews();
    const inboxBefore = await inboxOfReviews();
    handled.length = 0;
    const replay = await cli(['replay', 'products', '--from', String(from), '--json'], cliEnv());
    expect(replay.stderr).toBe('');
    expect(JSON.parse(replay.stdout)).toEqual({ service: 'products', from, replayed: expected.length });
    await until(
      'the probe to receive the replay',
      async () => handled.length,
      (n) => n >= expectedUpdates.length,
    );
    expect(handled).toEqual(expectedUpdates);
    await until('reviews to take the replayed duplicates', consumedByReviews, (n) => n >= consumedBefore + expectedUpdates.length);
    expect(await inboxOfReviews()).toBe(inboxBefore);
    expect(await viewName(id)).toBe('Probe 2');
    expect(await viewName('p00003')).toBe('Ordered 31');

    // Misuse is a usage error (exit 2), a database that is not there a failure (exit 1).
    expect((await cli(['replay', 'products'], cliEnv())).code).toBe(2);
    const missing = await cli(['outbox', 'products'], { ...cliEnv(), PRODUCTS_DATABASE_URL: `${db.products.url}_missing` });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/does not exist/);
  }, 90_000);
});
