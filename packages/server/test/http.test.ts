import { parse } from 'graphql';
import { type GraphQLClient, graphqlClient, testTelemetry } from '@shop/testing';
import { type Subgraph, createSubgraph } from '../src';

describe('HTTP front', () => {
  let subgraph: Subgraph;
  let base: string;
  let client: GraphQLClient;
  let ready = true;

  beforeAll(async () => {
    subgraph = await createSubgraph({
      telemetry: testTelemetry('probe'),
      typeDefs: parse('type Query { hello(name: String!): String! slow: String! }'),
      resolvers: {
        Query: {
          hello: (_: unknown, { name }: { name: string }) => `hello ${name}`,
          slow: () => new Promise<string>((resolve) => setImmediate(() => resolve('done'))),
        },
      },
      context: async () => ({}),
      ready: async () => ready,
    });
    const running = await subgraph.listen(0, '127.0.0.1');
    base = running.url;
    client = graphqlClient(`${base}/graphql`);
  });
  afterAll(() => subgraph.stop());

  it('answers /health, /ready and /metrics', async () => {
    expect((await fetch(`${base}/health`)).status).toBe(200);
    expect((await fetch(`${base}/ready`)).status).toBe(200);
    ready = false;
    expect((await fetch(`${base}/ready`)).status).toBe(503);
    ready = true;
    await client.query('{ hello(name: "m") }');
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/http_requests_total\{service="probe",route="graphql",status="200"\} \d+/);
    // The latency histogram counts the same requests, by the same labels.
    const count = Number(/http_request_duration_seconds_count\{service="probe",route="graphql",status="200"\} (\d+)/.exec(metrics)?.[1]);
    expect(count).toBeGreaterThanOrEqual(1);
    expect(metrics).toMatch(/http_request_duration_seconds_bucket\{le="10",service="probe",route="graphql",status="200"\} \d+/);
  });

  it('gives malformed JSON a coded 400 and keeps serving', async () => {
    const bad = await client.raw('{"query": "{ hello(name: \\"x\\") }"');
    expect(bad.status).toBe(400);
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_REQUEST');
    const empty = await client.raw('');
    expect(empty.errors?.[0]?.extensions?.code).toBe('BAD_REQUEST');
    const ok = await client.query<{ hello: string }>('{ hello(name: "x") }');
    expect(ok.data?.hello).toBe('hello x');
  });

  it('rejects an oversized body with PAYLOAD_TOO_LARGE', async () => {
    const huge = JSON.stringify({ query: `{ hello(name: "${'x'.repeat(1_100_000)}") }` });
    const res = await client.raw(huge);
    expect(res.status).toBe(413);
    expect(res.errors?.[0]?.extensions?.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('codes parse and validation errors', async () => {
    expect((await client.query('{ hello(')).errors?.[0]?.extensions?.code).toBe('GRAPHQL_PARSE_FAILED');
    expect((await client.query('{ nope }')).errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect((await client.query('{ hello }')).errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('refuses POST bodies that are not application/json with a coded 415 (our CSRF rule), before Apollo', async () => {
    const cases: Record<string, string>[] = [{ 'content-type': 'text/plain' }, { 'content-type': 'application/x-www-form-urlencoded' }, {}];
    for (const headers of cases) {
      const res = await fetch(`${base}/graphql`, {
        method: 'POST',
        headers,
        body: new TextEncoder().encode('{"query":"{ hello(name: \\"x\\") }"}'),
      });
      expect(res.status).toBe(415);
      expect(((await res.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0]?.extensions.code).toBe(
        'UNSUPPORTED_MEDIA_TYPE',
      );
    }
    const get = await fetch(`${base}/graphql?query=${encodeURIComponent('{ hello(name: "get") }')}`);
    expect(get.status).toBe(200);
    expect(await get.json()).toEqual({ data: { hello: 'hello get' } });
  });

  // Our own errors (a body that is not JSON) and Apollo's (a parse error) must pick the same
  // media type for the same Accept header, or one client would get two kinds of answer.
  it.each([
    ['*/*', 'application/json'],
    ['application/json', 'application/json'],
    ['application/graphql-response+json', 'application/graphql-response+json'],
    ['application/graphql-response+json, application/json', 'application/graphql-response+json'],
    ['application/json, application/graphql-response+json', 'application/json'],
    ['application/json;q=0.9, application/graphql-response+json', 'application/graphql-response+json'],
    ['application/*, application/graphql-response+json;q=0.5', 'application/json'],
    ['text/html, */*;q=0.8', 'application/json'],
  ])('picks the media type Apollo picks for Accept %s', async (accept, expected) => {
    const headers = { 'content-type': 'application/json', accept };
    const ours = await fetch(`${base}/graphql`, { method: 'POST', headers, body: '{"query": ' });
    const apollos = await fetch(`${base}/graphql`, { method: 'POST', headers, body: JSON.stringify({ query: '{ hello(' }) });
    expect(ours.status).toBe(400);
    expect(ours.headers.get('content-type')).toBe(`${expected}; charset=utf-8`);
    expect(apollos.headers.get('content-type')).toBe(`${expected}; charset=utf-8`);
    expect(apollos.status).toBe(expected === 'application/json' ? 200 : 400);
  });

  it('answers unknown paths with a coded 404 and echoes the request id', async () => {
    const res = await fetch(`${base}/nowhere`, { headers: { 'x-request-id': 'abc-123' } });
    expect(res.status).toBe(404);
    expect(res.headers.get('x-request-id')).toBe('abc-123');
    expect(((await res.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0]?.extensions.code).toBe('NOT_FOUND');
  });
});
