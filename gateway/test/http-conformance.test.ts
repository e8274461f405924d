// GraphQL over HTTP conformance of the gateway's HTTP front (@shop/server's http.ts), and the CSRF
// rule that replaces Apollo's csrfPrevention: graphql-http's audit must pass whole, while a browser
// still cannot make a cross-site request that runs an operation.
import { request } from 'node:http';
import { composeServices } from '@apollo/composition';
import { parse } from 'graphql';
import { auditServer } from 'graphql-http';
import { type Subgraph, createSubgraph } from '@shop/server';
import {
  type Fixtures,
  type GatewayUnderTest,
  type GraphQLResponse,
  authorsSdl,
  booksSdl,
  silentTelemetry,
  startFixtures,
  startGateway,
} from './harness';

/** graphql-http 1.23.1's server audit has 61 checks; a new version with more must be looked at. */
const AUDIT_COUNT = 61;

const GRAPHQL_RESPONSE_JSON = 'application/graphql-response+json';

// A subgraph with a mutation that counts its runs: "nothing executed" is then a number, not a hope.
const counterSdl = `extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])
type Query { count: Int! }
type Mutation { increment: Int! }
`;

let fixtures: Fixtures;
let counter: Subgraph;
let counterUrl: string;
let increments = 0;
let gw: GatewayUnderTest;

beforeAll(async () => {
  fixtures = await startFixtures();
  counter = await createSubgraph({
    telemetry: silentTelemetry('counter'),
    typeDefs: parse(counterSdl),
    resolvers: {
      Query: { count: () => increments },
      Mutation: { increment: () => ++increments },
    },
    context: async () => ({}),
    ready: async () => true,
  });
  counterUrl = `${(await counter.listen(0, '127.0.0.1')).url}/graphql`;
  const composed = composeServices([
    { name: 'authors', url: fixtures.urls.authors, typeDefs: parse(authorsSdl(true)) },
    { name: 'books', url: fixtures.urls.books, typeDefs: parse(booksSdl) },
    { name: 'counter', url: counterUrl, typeDefs: parse(counterSdl) },
  ]);
  if (composed.errors) throw new Error(composed.errors.map((e) => e.message).join('; '));
  gw = await startGateway({ sdl: composed.supergraphSdl }, fixtures);
});

afterAll(async () => {
  await gw?.stop();
  await counter?.stop();
  await fixtures?.stop();
});

interface Answer {
  status: number;
  headers: Headers;
  body: GraphQLResponse;
}

async function send(init: RequestInit & { search?: Record<string, string> }): Promise<Answer> {
  const url = new URL(`${gw.url}/graphql`);
  for (const [key, value] of Object.entries(init.search ?? {})) url.searchParams.set(key, value);
  const response = await fetch(url, init);
  return { status: response.status, headers: response.headers, body: (await response.json()) as GraphQLResponse };
}

// fetch always sends an Accept header (any type, by default); node:http sends none unless told.
function postWithoutAccept(body: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(`${gw.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const headers = new Headers();
        for (const [key, value] of Object.entries(res.headers)) if (typeof value === 'string') headers.set(key, value);
        resolve({ status: res.statusCode ?? 0, headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as GraphQLResponse });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** POSTs JSON with the given Accept header; `null` sends none at all. */
const postJson = (body: string, accept: string | null = 'application/json') =>
  accept === null ? postWithoutAccept(body) : send({ method: 'POST', headers: { 'content-type': 'application/json', accept }, body });

const code = (answer: Answer) => answer.body.errors?.[0]?.extensions?.code;

describe('graphql-http audit', () => {
  it(`passes all ${AUDIT_COUNT} checks: no warnings, no notices`, async () => {
    const results = await auditServer({ url: `${gw.url}/graphql` });
    const notOk = results
      .filter((r) => r.status !== 'ok')
      .map((r) => `${r.id} ${r.status}: ${r.name}${'reason' in r ? ` (${r.reason})` : ''}`);
    expect(notOk).toEqual([]);
    expect(results).toHaveLength(AUDIT_COUNT);
  });
});

describe('CSRF: only application/json bodies run', () => {
  const mutation = JSON.stringify({ query: 'mutation { increment }' });

  // The bodies a cross-site <form> or no-cors fetch can send without a preflight; fetch sets the
  // content-type a browser would (text/plain;charset=UTF-8, ...urlencoded, multipart/form-data).
  const simpleRequests: [string, () => RequestInit['body']][] = [
    ['text/plain', () => mutation],
    ['application/x-www-form-urlencoded', () => new URLSearchParams({ query: 'mutation { increment }' })],
    [
      'multipart/form-data',
      () => {
        const form = new FormData();
        form.set('operations', mutation);
        return form;
      },
    ],
    // A byte body gets no content-type at all.
    ['no content-type', () => new TextEncoder().encode(mutation)],
  ];

  it.each(simpleRequests)('refuses a POST of %s with a coded 415 and runs nothing', async (type, body) => {
    const before = increments;
    const answer = await send({ method: 'POST', body: body() });
    expect(answer.status).toBe(415);
    expect(code(answer)).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(answer.body.errors?.[0]?.message).toContain(type === 'no content-type' ? 'no content-type' : type);
    expect(answer.body.data).toBeUndefined();
    expect(increments).toBe(before);
  });

  it('refuses a JSON body in another charset with 415', async () => {
    const answer = await send({ method: 'POST', headers: { 'content-type': 'application/json; charset=latin1' }, body: mutation });
    expect(answer.status).toBe(415);
    expect(code(answer)).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('runs the same mutation sent as application/json (the refusal is the media type)', async () => {
    const before = increments;
    const answer = await postJson(mutation);
    expect(answer.status).toBe(200);
    expect(answer.body.errors).toBeUndefined();
    expect(answer.body.data).toEqual({ increment: before + 1 });
    expect(increments).toBe(before + 1);
  });

  it.each(['*/*', 'application/json', GRAPHQL_RESPONSE_JSON])(
    'answers a mutation over GET with 405 and runs nothing (Accept: %s)',
    async (accept) => {
      const before = increments;
      const answer = await send({ search: { query: 'mutation { increment }' }, headers: { accept } });
      expect(answer.status).toBe(405);
      expect(answer.headers.get('allow')).toBe('POST');
      expect(answer.body.errors?.[0]?.message).toMatch(/GET requests only support query operations/);
      expect(increments).toBe(before);
    },
  );

  it('runs a GET query with URL-encoded variables, with no preflight header', async () => {
    const answer = await send({
      search: {
        query: 'query Author($id: ID!) { author(id: $id) { name books { title } } }',
        variables: JSON.stringify({ id: '2' }),
        operationName: 'Author',
      },
    });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(answer.body.errors).toBeUndefined();
    expect(answer.body.data).toEqual({ author: { name: 'Grace', books: [{ title: 'Compilers' }] } });
  });

  it('answers a cross-origin preflight with no CORS grant, so a browser never sends the JSON POST', async () => {
    const response = await fetch(`${gw.url}/graphql`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://evil.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      },
    });
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('status codes follow the response media type', () => {
  // Request errors: the request is well formed, its document or variables are not.
  const requestErrors: [string, string, string][] = [
    ['a syntax error', JSON.stringify({ query: '{ books { id }' }), 'GRAPHQL_PARSE_FAILED'],
    ['an unknown field', JSON.stringify({ query: '{ books { isbn } }' }), 'GRAPHQL_VALIDATION_FAILED'],
    [
      'a variable that does not coerce',
      JSON.stringify({ query: 'query ($id: ID!) { book(id: $id) { id } }', variables: { id: null } }),
      'BAD_USER_INPUT',
    ],
    ['an unknown operationName', JSON.stringify({ query: 'query A { books { id } }', operationName: 'B' }), 'OPERATION_RESOLUTION_FAILURE'],
  ];

  it.each(requestErrors)(
    '%s: 200 as application/json (also with no Accept or */*), 400 as graphql-response+json',
    async (_, body, expected) => {
      for (const accept of [null, '*/*', 'application/json']) {
        const answer = await postJson(body, accept);
        expect({ accept, status: answer.status }).toEqual({ accept, status: 200 });
        expect(answer.headers.get('content-type')).toBe('application/json; charset=utf-8');
        expect(code(answer)).toBe(expected);
        expect(answer.body.data).toBeUndefined();
      }
      const modern = await postJson(body, `${GRAPHQL_RESPONSE_JSON}, application/json;q=0.9`);
      expect(modern.status).toBe(400);
      expect(modern.headers.get('content-type')).toBe(`${GRAPHQL_RESPONSE_JSON}; charset=utf-8`);
      expect(code(modern)).toBe(expected);
      expect(modern.body.data).toBeUndefined();
    },
  );

  it('a field error is a 200 with data in both media types', async () => {
    for (const accept of ['application/json', GRAPHQL_RESPONSE_JSON]) {
      const answer = await postJson(JSON.stringify({ query: '{ book(id: "abc") { title } }' }), accept);
      expect(answer.status).toBe(200);
      expect(answer.body.data).toEqual({ book: null });
      expect(code(answer)).toBe('BAD_USER_INPUT');
    }
  });

  // Requests that are not well formed keep their 4xx in both media types; the error's
  // content-type follows the Accept header, whoever wrote it (Apollo or our HTTP front).
  const malformed: [string, number, string, string][] = [
    ['a body that is not JSON', 400, 'BAD_REQUEST', '{"query": "{ books { id } }"'],
    ['an empty body', 400, 'BAD_REQUEST', ''],
    ['no query', 400, 'BAD_REQUEST', JSON.stringify({ qeury: '{ books { id } }' })],
    ['variables that are not a map', 400, 'BAD_REQUEST', JSON.stringify({ query: '{ books { id } }', variables: [7] })],
    ['a body over the limit', 413, 'PAYLOAD_TOO_LARGE', JSON.stringify({ query: `{ books { id } } # ${'x'.repeat(1_000_001)}` })],
  ];

  it.each(malformed)('%s: %d %s in both media types', async (_, status, expected, body) => {
    for (const [accept, type] of [
      ['application/json', 'application/json; charset=utf-8'],
      [GRAPHQL_RESPONSE_JSON, `${GRAPHQL_RESPONSE_JSON}; charset=utf-8`],
    ] as const) {
      const answer = await postJson(body, accept);
      expect({ accept, status: answer.status, type: answer.headers.get('content-type') }).toEqual({ accept, status, type });
      expect(code(answer)).toBe(expected);
    }
  });
});
