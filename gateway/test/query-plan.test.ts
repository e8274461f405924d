// The query plan and fetch timings a client asks for with `Apollo-Expose-Query-Plan: true`
// (execute/expose.ts): given only when the gateway's config allows it and the header asks, on
// both executors (timings on ours only), never through the response cache or an HTTP cache.
import { openCacheStore, type CacheStore } from '@shop/cache';
import { metricValue } from '@shop/telemetry';
import { loadGatewayConfig } from '../src/config';
import { type FetchTiming, type Gateway, type PlanExecutor, type PlanTreeNode, QUERY_PLAN_HEADER, createGateway } from '../src/gateway';
import type { QueryPlanExtension } from '../src/execute';
import { type FederationFixtures, startFederationFixtures } from './fixtures/federation';
import { type GraphQLResponse, type HttpResult, post, silentTelemetry } from './harness';

/** catalog's films, then stock's discs (@requires runtime) and reviews' ratings (@interfaceObject) of each. */
const FILMS = '{ films { id title discs rating } }';
const FILM_COUNT = 4;
const ASK = { [QUERY_PLAN_HEADER]: 'true' };

type Fetch = Extract<PlanTreeNode, { kind: 'Fetch' }>;

/** The plan's fetch nodes, depth first. */
function fetchesOf(node: PlanTreeNode | null): Fetch[] {
  if (!node) return [];
  switch (node.kind) {
    case 'Fetch':
      return [node];
    case 'Sequence':
    case 'Parallel':
      return node.nodes.flatMap(fetchesOf);
    case 'Flatten':
      return fetchesOf(node.node);
    case 'Condition':
      return [...fetchesOf(node.ifClause), ...fetchesOf(node.elseClause)];
    case 'Defer':
      return [...fetchesOf(node.primary), ...node.deferred.flatMap(fetchesOf)];
    case 'Subscription':
      return [...fetchesOf(node.primary), ...fetchesOf(node.rest)];
  }
}

/** The extensions this feature adds that a response carries (demand control's `cost` is always there). */
const exposedIn = (body: GraphQLResponse) => ['queryPlan', 'fetchTimings'].filter((key) => body.extensions?.[key] !== undefined);
const planOf = (body: GraphQLResponse) => body.extensions?.queryPlan as QueryPlanExtension | undefined;
const timingsOf = (body: GraphQLResponse) => body.extensions?.fetchTimings as FetchTiming[] | undefined;

let fx: FederationFixtures;
const running: Array<{ gateway: Gateway; cacheStore?: CacheStore | undefined }> = [];

async function start(options: { executor?: PlanExecutor; exposeQueryPlan?: boolean; responseCache?: boolean; entityCache?: boolean }) {
  const telemetry = silentTelemetry('gateway');
  const cacheStore = options.responseCache || options.entityCache ? openCacheStore({ telemetry }) : undefined;
  const gateway = await createGateway({
    telemetry,
    supergraph: { sdl: fx.supergraphSdl },
    subgraphUrlOverrides: fx.urls,
    explorer: false,
    cacheStore,
    entityCache: options.entityCache ?? false,
    responseCache: options.responseCache ?? false,
    executor: options.executor ?? 'own',
    ...(options.exposeQueryPlan === undefined ? {} : { exposeQueryPlan: options.exposeQueryPlan }),
  });
  running.push({ gateway, cacheStore });
  const server = await gateway.listen(0, '127.0.0.1');
  const subgraphRequests = () => metricValue(telemetry.metrics.subgraphRequests, {});
  return {
    url: server.url,
    /** The response, and the subgraph requests it cost. */
    async send(query: string, headers: Record<string, string> = {}): Promise<HttpResult & { requests: number }> {
      const before = await subgraphRequests();
      const result = await post(server.url, { query }, headers);
      return { ...result, requests: (await subgraphRequests()) - before };
    },
  };
}

beforeAll(async () => {
  fx = await startFederationFixtures();
});

afterAll(async () => {
  for (const { gateway, cacheStore } of running) {
    await gateway.stop();
    await cacheStore?.close();
  }
  await fx?.stop();
});

describe.each(['own', 'apollo'] as const)('on the %s executor, with EXPOSE_QUERY_PLAN on', (executor) => {
  let gw: Awaited<ReturnType<typeof start>>;
  beforeAll(async () => {
    gw = await start({ executor, exposeQueryPlan: true });
  });

  it('answers a request with the header with its plan: one fetch node per subgraph call, each named with its operation', async () => {
    const { status, body, headers } = await gw.send(FILMS, ASK);
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    expect((body.data?.films as unknown[]).length).toBe(FILM_COUNT);
    const plan = planOf(body);
    expect(plan?.executor).toBe(executor);
    expect(plan?.text).toMatch(/^QueryPlan \{/);
    // catalog first, then stock and reviews side by side, each under the films it completes.
    expect(plan?.tree).toEqual({
      kind: 'Sequence',
      nodes: [
        expect.objectContaining({ kind: 'Fetch', id: 0, serviceName: 'catalog', entities: false }),
        {
          kind: 'Parallel',
          nodes: [
            { kind: 'Flatten', path: ['films', '@'], node: expect.objectContaining({ kind: 'Fetch', id: 1, entities: true }) },
            { kind: 'Flatten', path: ['films', '@'], node: expect.objectContaining({ kind: 'Fetch', id: 2, entities: true }) },
          ],
        },
      ],
    });
    const fetches = fetchesOf(plan?.tree ?? null);
    expect(fetches.map((f) => f.serviceName).sort()).toEqual(['catalog', 'reviews', 'stock']);
    expect(fetches[0]?.operation).toContain('films');
    for (const fetch of fetches.slice(1)) expect(fetch.operation).toContain('_entities(representations:$representations)');
    // For this one client: no HTTP cache may keep it (the subgraphs' hints would allow 60 s).
    expect(headers.get('cache-control')).toBe('no-store');
  });

  it('leaves a request without the header as it was: no plan, the cache-control the hints give', async () => {
    const { body, headers } = await gw.send(FILMS);
    expect(body.errors).toBeUndefined();
    expect(exposedIn(body)).toEqual([]);
    expect(headers.get('cache-control')).toBe('max-age=60, public');
  });

  it('honours only `true`: another value, or Apollo-Query-Plan-Experimental, gets nothing', async () => {
    const others: Array<Record<string, string>> = [
      { [QUERY_PLAN_HEADER]: '1' },
      { [QUERY_PLAN_HEADER]: 'dry-run' },
      { 'apollo-query-plan-experimental': '1' },
    ];
    for (const headers of others) {
      const { body } = await gw.send(FILMS, headers);
      expect({ headers, data: body.data !== undefined, exposed: exposedIn(body) }).toEqual({ headers, data: true, exposed: [] });
    }
  });
});

describe('fetch timings, on our executor', () => {
  let gw: Awaited<ReturnType<typeof start>>;
  beforeAll(async () => {
    gw = await start({ executor: 'own', exposeQueryPlan: true });
  });

  it('one timing per subgraph call, in order, with the representations each subgraph received', async () => {
    const calls = () => ({ stock: fx.control.calls['stock.Film'] ?? 0, reviews: fx.control.calls['reviews.Media'] ?? 0 });
    const before = calls();
    const sentAt = performance.now();
    const { body, requests } = await gw.send(FILMS, ASK);
    const elapsed = performance.now() - sentAt;
    const after = calls();
    const timings = timingsOf(body) ?? [];
    const fetches = fetchesOf(planOf(body)?.tree ?? null);

    // One per fetch node, each linked to its node, and one per subgraph request the gateway made.
    expect(timings.map((t) => t.fetchId).sort()).toEqual(fetches.map((f) => f.id));
    expect(timings).toHaveLength(requests);
    for (const t of timings) expect(t.subgraph).toBe(fetches[t.fetchId]?.serviceName);

    const bySubgraph = Object.fromEntries(timings.map((t) => [t.subgraph, t]));
    // Representations as each fixture counted them (one reference resolver call each); none for the root fetch.
    expect({
      catalog: bySubgraph.catalog?.representations,
      stock: bySubgraph.stock?.representations,
      reviews: bySubgraph.reviews?.representations,
    }).toEqual({ catalog: 0, stock: after.stock - before.stock, reviews: after.reviews - before.reviews });
    expect(after.stock - before.stock).toBe(FILM_COUNT);
    expect(bySubgraph.catalog?.path).toEqual([]);
    expect(bySubgraph.stock?.path).toEqual(['films', '@']);
    expect(timings.every((t) => t.errors === 0)).toBe(true);

    // Plausible clocks: within the request as the client saw it, and the entity fetches only after
    // catalog answered the films they complete.
    for (const t of timings) {
      expect(t.start).toBeGreaterThanOrEqual(0);
      expect(t.duration).toBeGreaterThanOrEqual(0);
      expect(t.start + t.duration).toBeLessThanOrEqual(elapsed);
    }
    const catalog = bySubgraph.catalog as FetchTiming;
    expect(timings[0]).toBe(catalog);
    for (const t of timings.slice(1)) expect(t.start).toBeGreaterThanOrEqual(catalog.start + catalog.duration - 0.002);
  });

  it('counts, per fetch, the representations the entity cache answered without the subgraph', async () => {
    const cached = await start({ executor: 'own', exposeQueryPlan: true, entityCache: true });
    const stockCalls = () => fx.control.calls['stock.Film'] ?? 0;
    const hits = (body: GraphQLResponse) => Object.fromEntries((timingsOf(body) ?? []).map((t) => [t.subgraph, [t.cacheHits, t.memoHits]]));
    const before = stockCalls();
    const first = await cached.send(FILMS, ASK);
    expect(stockCalls() - before).toBe(FILM_COUNT);
    expect(hits(first.body)).toEqual({ catalog: [0, 0], stock: [0, 0], reviews: [0, 0] });
    // Again: every film's stock comes from the entity cache, and stock is not asked.
    const second = await cached.send(FILMS, ASK);
    expect(stockCalls() - before).toBe(FILM_COUNT);
    expect(hits(second.body).stock).toEqual([FILM_COUNT, 0]);
    expect(timingsOf(second.body)?.find((t) => t.subgraph === 'stock')?.representations).toBe(FILM_COUNT);
  });

  it('reads no clock and records nothing for a request without the header', async () => {
    // Every performance.now() made by the executor's code (execute/), counted through its caller.
    const now = performance.now.bind(performance);
    let reads = 0;
    const spy = jest.spyOn(performance, 'now').mockImplementation(() => {
      if (/[/\\]gateway[/\\]src[/\\]execute[/\\]/.test(new Error().stack ?? '')) reads++;
      return now();
    });
    try {
      const without = await gw.send(FILMS);
      const readsWithout = reads;
      const asked = await gw.send(FILMS, ASK);
      expect(exposedIn(without.body)).toEqual([]);
      // Asked: once at the start, then before and after each of the three subgraph calls.
      expect({ without: readsWithout, asked: reads - readsWithout }).toEqual({
        without: 0,
        asked: 1 + 2 * (timingsOf(asked.body)?.length ?? 0),
      });
      expect(timingsOf(asked.body)).toHaveLength(3);
    } finally {
      spy.mockRestore();
    }
  });

  it('times a slow subgraph as slow', async () => {
    fx.control.latencyMs = { 'Query.films': 60 };
    try {
      const { body } = await gw.send(FILMS, ASK);
      const catalog = timingsOf(body)?.find((t) => t.subgraph === 'catalog');
      // The resolver waits 60 ms (a timer may fire a little early, never much).
      expect(catalog?.duration).toBeGreaterThanOrEqual(55);
    } finally {
      fx.control.latencyMs = {};
    }
  });

  it('are absent on Apollo\u2019s executor, which reports none', async () => {
    const apollo = await start({ executor: 'apollo', exposeQueryPlan: true });
    const { body } = await apollo.send(FILMS, ASK);
    expect(planOf(body)?.executor).toBe('apollo');
    expect(body.extensions?.fetchTimings).toBeUndefined();
  });
});

describe.each(['own', 'apollo'] as const)('on the %s executor, with EXPOSE_QUERY_PLAN off', (executor) => {
  it("ignores the header: production's default, and the factory's", async () => {
    const production = loadGatewayConfig({ NODE_ENV: 'production' }).exposeQueryPlan;
    expect(production).toBe(false);
    for (const exposeQueryPlan of [production, undefined]) {
      const gw = await start({ executor, exposeQueryPlan });
      const { body, headers } = await gw.send(FILMS, ASK);
      expect(body.errors).toBeUndefined();
      expect(exposedIn(body)).toEqual([]);
      expect(headers.get('cache-control')).toBe('max-age=60, public');
    }
  });
});

describe.each(['own', 'apollo'] as const)('with the response cache, on the %s executor', (executor) => {
  let gw: Awaited<ReturnType<typeof start>>;
  beforeAll(async () => {
    gw = await start({ executor, exposeQueryPlan: true, responseCache: true });
  });

  it('a request for the plan runs it though a response is kept, and a kept response carries no plan', async () => {
    const query = '{ films { id title rating } }';
    const kept = await gw.send(query);
    expect(kept.requests).toBeGreaterThan(0);
    expect(await gw.send(query)).toEqual(expect.objectContaining({ requests: 0 }));

    const asked = await gw.send(query, ASK);
    expect(asked.requests).toBe(2);
    expect(asked.body.data).toEqual(kept.body.data);
    expect(fetchesOf(planOf(asked.body)?.tree ?? null).map((f) => f.serviceName)).toEqual(['catalog', 'reviews']);

    const after = await gw.send(query);
    expect({ requests: after.requests, exposed: exposedIn(after.body) }).toEqual({ requests: 0, exposed: [] });
  });

  it('a response that carried the plan is not kept', async () => {
    const query = '{ films { id year discs } }';
    const asked = await gw.send(query, ASK);
    expect(planOf(asked.body)).toBeDefined();
    // Not kept: the next request without the header runs the plan, and that one is kept.
    const first = await gw.send(query);
    expect({ requests: first.requests, exposed: exposedIn(first.body) }).toEqual({ requests: 2, exposed: [] });
    expect((await gw.send(query)).requests).toBe(0);
  });
});
