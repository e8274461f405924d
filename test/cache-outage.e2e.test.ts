import pino from 'pino';
import { type Stack, startStack } from '@shop/stack';
import { metricValue } from '@shop/telemetry';
import { type GraphQLClient, type OwnRedis, graphqlClient, startOwnRedis } from '@shop/testing';

// The caches fail open: with Redis stopped mid-run the clients see no error and the same data,
// and once Redis is back the caches are used again. The Redis here is a private redis-server, so
// stopping it disturbs nothing else.
describe('Redis outage', () => {
  let redis: OwnRedis;
  let stack: Stack;
  let client: GraphQLClient;
  const QUERY = '{ topProducts(first: 5) { id name inStock reviews(first: 3) { body author { name } } } }';
  const entityHits = () =>
    metricValue(stack.telemetry.gateway.metrics.cacheRequests, { service: 'gateway', cache: 'entity', result: 'hit' });

  beforeAll(async () => {
    redis = await startOwnRedis();
    stack = await startStack({
      ports: { gateway: 0, accounts: 0, products: 0, inventory: 0, reviews: 0 },
      host: '127.0.0.1',
      logger: pino({ level: 'silent' }),
      cache: { kind: 'redis', url: redis.url },
      // Whole responses would hide the entity cache; this test is about the entity cache.
      responseCache: false,
    });
    client = graphqlClient(stack.gatewayUrl);
  });
  afterAll(async () => {
    await stack?.stop();
    await redis?.stop();
  });

  it('serves every request without error while Redis is down, then uses the cache again', async () => {
    const expected = (await client.query(QUERY)).data;
    const deadline = Date.now() + 10_000;
    while ((await entityHits()) === 0 && Date.now() < deadline) await client.query(QUERY);
    expect(await entityHits()).toBeGreaterThan(0);

    const results: unknown[] = [];
    const run = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const res = await client.query(QUERY);
        results.push(res.errors ?? res.data);
      }
    };
    await run(5);
    await redis.stop();
    const errorsBefore = await metricValue(stack.telemetry.gateway.metrics.cacheErrors, {});
    await run(20);
    expect(await metricValue(stack.telemetry.gateway.metrics.cacheErrors, {})).toBeGreaterThan(errorsBefore);
    await redis.start();

    // Recovered: entity hits grow again (bounded wait while the clients reconnect).
    const hitsAtRestart = await entityHits();
    const recovered = Date.now() + 15_000;
    while ((await entityHits()) <= hitsAtRestart && Date.now() < recovered) await run(1);
    await run(5);
    expect(await entityHits()).toBeGreaterThan(hitsAtRestart);

    expect(results.length).toBeGreaterThanOrEqual(30);
    for (const r of results) expect(r).toEqual(expected);
  });
});
