import { metricValue } from '@shop/telemetry';
import {
  BOOK_COUNT,
  DISTINCT_BOOK_AUTHORS,
  type Fixtures,
  type GatewayUnderTest,
  type TempDir,
  composeFixture,
  metricsText,
  post,
  query,
  seriesValue,
  startFixtures,
  startGateway,
  tempDir,
} from './harness';

let fixtures: Fixtures;
let dir: TempDir;
let gw: GatewayUnderTest;
let file: string;

beforeAll(async () => {
  fixtures = await startFixtures();
  dir = await tempDir();
  file = await dir.write('supergraph.graphql', composeFixture());
  gw = await startGateway({ path: file }, fixtures);
});

afterAll(async () => {
  await gw?.stop();
  await fixtures?.stop();
  await dir?.remove();
});

const FEDERATED = '{ books { title author { name } } }';

describe('a federated query', () => {
  it('joins both subgraphs through the overridden URLs', async () => {
    const { status, body } = await query(gw.url, FEDERATED);
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    const books = (body.data?.books ?? []) as { title: string; author: { name: string } }[];
    expect(books).toHaveLength(BOOK_COUNT);
    expect(books[0]).toEqual({ title: 'Notes', author: { name: 'Ada' } });
    expect(books.map((b) => b.author.name)).toEqual(['Ada', 'Ada', 'Grace', 'Linus', 'Linus']);
  });

  it('goes the other way: entity fields contributed by another subgraph', async () => {
    const { body } = await query(gw.url, '{ authors { name books { title } } }');
    expect(body.errors).toBeUndefined();
    expect(body.data?.authors).toEqual([
      { name: 'Ada', books: [{ title: 'Notes' }, { title: 'More notes' }] },
      { name: 'Grace', books: [{ title: 'Compilers' }] },
      { name: 'Linus', books: [{ title: 'Kernels' }, { title: 'Patches' }] },
    ]);
  });

  it('costs one request per subgraph, with one representation per distinct author', async () => {
    const { subgraphRequests, entityRepresentations } = gw.telemetry.metrics;
    const before = {
      books: await metricValue(subgraphRequests, { subgraph: 'books' }),
      authors: await metricValue(subgraphRequests, { subgraph: 'authors' }),
      representations: await metricValue(entityRepresentations, { subgraph: 'authors' }),
      booksRepresentations: await metricValue(entityRepresentations, { subgraph: 'books' }),
    };
    const { body } = await query(gw.url, FEDERATED);
    expect(body.errors).toBeUndefined();
    expect(await metricValue(subgraphRequests, { subgraph: 'books' })).toBe(before.books + 1);
    expect(await metricValue(subgraphRequests, { subgraph: 'authors' })).toBe(before.authors + 1);
    // Plain @apollo/gateway sends one representation per book (5); ours sends each distinct author once.
    expect(DISTINCT_BOOK_AUTHORS).toBeLessThan(BOOK_COUNT);
    expect(await metricValue(entityRepresentations, { subgraph: 'authors' })).toBe(before.representations + DISTINCT_BOOK_AUTHORS);
    // The root fetch to books is not an entity fetch.
    expect(await metricValue(entityRepresentations, { subgraph: 'books' })).toBe(before.booksRepresentations);
  });

  it('passes variables and aliases named like Object.prototype members through as plain fields', async () => {
    // Parsed, as a client's JSON body is: an object literal would set the prototype instead.
    const variables = JSON.parse('{"__proto__":"3"}') as Record<string, unknown>;
    const { status, body } = await query(
      gw.url,
      'query Q($__proto__: ID!) { __proto__: book(id: $__proto__) { constructor: title } }',
      variables,
    );
    expect(status).toBe(200);
    expect(JSON.stringify((body as { data?: unknown }).data)).toBe('{"__proto__":{"constructor":"Compilers"}}');
  });

  it.each(['own', 'apollo'] as const)('never hands a client the query plan, on the %s executor', async (executor) => {
    const other = executor === 'own' ? gw : await startGateway({ path: file }, fixtures, { executor });
    try {
      const { body } = await post(other.url, { query: FEDERATED }, { 'apollo-query-plan-experimental': '1' });
      expect(body.data).toBeDefined();
      expect((body as { extensions?: Record<string, unknown> }).extensions?.__queryPlanExperimental).toBeUndefined();
    } finally {
      if (other !== gw) await other.stop();
    }
  });

  it('only calls the subgraph a query needs', async () => {
    const { subgraphRequests } = gw.telemetry.metrics;
    const authorsBefore = await metricValue(subgraphRequests, { subgraph: 'authors' });
    const { body } = await query(gw.url, '{ books { title } }');
    expect(body.errors).toBeUndefined();
    expect(await metricValue(subgraphRequests, { subgraph: 'authors' })).toBe(authorsBefore);
  });

  it('forwards x-request-id to every subgraph it calls', async () => {
    const id = `test-${Date.now()}`;
    const response = await post(gw.url, { query: FEDERATED }, { 'x-request-id': id });
    expect(response.headers.get('x-request-id')).toBe(id);
    expect(fixtures.control.requestIds.books).toContain(id);
    expect(fixtures.control.requestIds.authors).toContain(id);
  });
});

describe('the HTTP front', () => {
  it('answers /health and /ready', async () => {
    const health = await fetch(`${gw.url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok', service: 'gateway' });
    const ready = await fetch(`${gw.url}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', service: 'gateway' });
  });

  it('exposes the contract metrics on /metrics in Prometheus text format', async () => {
    await query(gw.url, FEDERATED);
    const response = await fetch(`${gw.url}/metrics`);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await metricsText(gw.url);
    expect(seriesValue(text, 'gateway_subgraph_requests_total{subgraph="books"}')).toBeGreaterThan(0);
    expect(seriesValue(text, 'gateway_subgraph_requests_total{subgraph="authors"}')).toBeGreaterThan(0);
    expect(seriesValue(text, 'gateway_entity_representations_total{subgraph="authors"}')).toBeGreaterThan(0);
  });

  it('answers introspection (on by default, off in production via index.ts)', async () => {
    const { body } = await query(gw.url, '{ __schema { queryType { name } } }');
    expect(body.data).toEqual({ __schema: { queryType: { name: 'Query' } } });
  });
});

describe('stop', () => {
  it('reports not ready, then stops serving', async () => {
    const other = await startGateway({ sdl: composeFixture() }, fixtures);
    expect((await query(other.url, '{ books { id } }')).body.errors).toBeUndefined();
    await other.stop();
    await expect(fetch(`${other.url}/health`)).rejects.toThrow();
  });
});
