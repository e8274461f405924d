import { type Server, createServer } from 'node:http';
import { type RunningServer, listen } from '@shop/server';
import { SUBGRAPH_UNAVAILABLE } from '../src/gateway';
import { type Fixtures, type GatewayUnderTest, composeFixture, post, query, startFixtures, startGateway } from './harness';

let fixtures: Fixtures;
let gw: GatewayUnderTest;

beforeAll(async () => {
  fixtures = await startFixtures();
  gw = await startGateway({ sdl: composeFixture() }, fixtures);
});

afterAll(async () => {
  await gw?.stop();
  await fixtures?.stop();
});

const code = (body: { errors?: { extensions?: Record<string, unknown> }[] }) => body.errors?.[0]?.extensions?.code;

// GraphQL over HTTP: request errors are a 200 in an application/json response (what `post` gets:
// fetch's default Accept is */*) and a 400 in an application/graphql-response+json one; nothing
// runs either way. http-conformance.test.ts covers the rules in full.
const MODERN = { accept: 'application/graphql-response+json' };

describe('request errors carry a code', () => {
  it('malformed JSON is a 400 BAD_REQUEST', async () => {
    const { status, body } = await post(gw.url, '{"query": "{ books { id } }"');
    expect(status).toBe(400);
    expect(code(body)).toBe('BAD_REQUEST');
  });

  it('a syntax error is GRAPHQL_PARSE_FAILED', async () => {
    const { status, body } = await query(gw.url, '{ books { id }');
    expect(status).toBe(200);
    expect(body.data).toBeUndefined();
    expect(code(body)).toBe('GRAPHQL_PARSE_FAILED');
    expect((await post(gw.url, { query: '{ books { id }' }, MODERN)).status).toBe(400);
  });

  it('an unknown field is GRAPHQL_VALIDATION_FAILED', async () => {
    const { status, body } = await query(gw.url, '{ books { isbn } }');
    expect(status).toBe(200);
    expect(body.data).toBeUndefined();
    expect(code(body)).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(body.errors?.[0]?.message).toContain('isbn');
    expect((await post(gw.url, { query: '{ books { isbn } }' }, MODERN)).status).toBe(400);
  });

  it('a bad variable is BAD_USER_INPUT', async () => {
    const { status, body } = await query(gw.url, 'query ($id: ID!) { book(id: $id) { id } }', {});
    expect(status).toBe(200);
    expect(body.data).toBeUndefined();
    expect(code(body)).toBe('BAD_USER_INPUT');
    expect((await post(gw.url, { query: 'query ($id: ID!) { book(id: $id) { id } }', variables: {} }, MODERN)).status).toBe(400);
  });
});

describe('subgraph errors pass through', () => {
  it('keep their extensions.code, with the subgraph named and the path rewritten', async () => {
    const { status, body } = await query(gw.url, '{ book(id: "abc") { title } }');
    expect(status).toBe(200);
    expect(body.data).toEqual({ book: null });
    expect(body.errors).toHaveLength(1);
    expect(body.errors?.[0]).toMatchObject({
      message: 'Book id must be numeric, received "abc"',
      path: ['book'],
      extensions: { code: 'BAD_USER_INPUT', field: 'id', serviceName: 'books' },
    });
  });
});

/** A stand-in subgraph that answers every request with a fixed status and body. */
async function fakeSubgraph(status: number, contentType: string, body: string): Promise<RunningServer> {
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(status, { 'content-type': contentType }).end(body));
  });
  return listen(server, 0, '127.0.0.1');
}

describe('a failing subgraph', () => {
  it('answering 5xx with a GraphQL body: its errors and codes pass through', async () => {
    const fake = await fakeSubgraph(
      500,
      'application/json',
      JSON.stringify({ errors: [{ message: 'store is down', extensions: { code: 'INTERNAL_SERVER_ERROR', retry: true } }] }),
    );
    const other = await startGateway({ sdl: composeFixture() }, undefined, {
      subgraphUrlOverrides: { ...fixtures.urls, books: `${fake.url}/graphql` },
    });
    try {
      const { body } = await query(other.url, '{ author(id: "1") { name } book(id: "1") { title } }');
      expect(body.data).toEqual({ author: { name: 'Ada' }, book: null });
      expect(body.errors?.[0]).toMatchObject({
        message: 'store is down',
        extensions: { code: 'INTERNAL_SERVER_ERROR', retry: true, serviceName: 'books' },
      });
    } finally {
      await other.stop();
      await fake.stop();
    }
  });

  it('answering 502 with HTML (a proxy in the way): SUBGRAPH_UNAVAILABLE', async () => {
    const fake = await fakeSubgraph(502, 'text/html', '<html>Bad Gateway</html>');
    const other = await startGateway({ sdl: composeFixture() }, undefined, {
      subgraphUrlOverrides: { ...fixtures.urls, books: `${fake.url}/graphql` },
    });
    try {
      const { body } = await query(other.url, '{ author(id: "1") { name } book(id: "1") { title } }');
      expect(body.data).toEqual({ author: { name: 'Ada' }, book: null });
      expect(body.errors?.[0]?.extensions).toMatchObject({ code: SUBGRAPH_UNAVAILABLE, serviceName: 'books' });
      expect(body.errors?.[0]?.message).toBe('Subgraph "books" is unavailable: HTTP 502: Bad Gateway');
    } finally {
      await other.stop();
      await fake.stop();
    }
  });

  it('that hangs past subgraphTimeoutMs: SUBGRAPH_UNAVAILABLE with reason', async () => {
    const other = await startGateway({ sdl: composeFixture() }, fixtures, { subgraphTimeoutMs: 200 });
    let release = () => {};
    fixtures.control.booksHang = new Promise<void>((resolve) => {
      release = resolve;
    });
    try {
      const started = Date.now();
      const { status, body } = await query(other.url, '{ books { title } }');
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(status).toBe(200);
      expect(body.errors?.[0]?.extensions).toMatchObject({
        code: SUBGRAPH_UNAVAILABLE,
        serviceName: 'books',
        reason: 'timed out after 200 ms',
      });
    } finally {
      fixtures.control.booksHang = undefined;
      release();
      await other.stop();
    }
  });
});

describe('a stopped subgraph', () => {
  let own: Fixtures;
  let other: GatewayUnderTest;

  beforeAll(async () => {
    own = await startFixtures();
    other = await startGateway({ sdl: composeFixture() }, own);
    expect((await query(other.url, '{ book(id: "1") { title } }')).body.errors).toBeUndefined();
    await own.subgraphs.books.stop();
  });

  afterAll(async () => {
    await other?.stop();
    await own?.stop();
  });

  it('gives SUBGRAPH_UNAVAILABLE, and the data the other subgraph could give', async () => {
    const { status, body } = await query(other.url, '{ author(id: "1") { name } book(id: "1") { title } }');
    expect(status).toBe(200);
    expect(body.data).toEqual({ author: { name: 'Ada' }, book: null });
    expect(body.errors).toHaveLength(1);
    expect(body.errors?.[0]?.extensions).toMatchObject({ code: SUBGRAPH_UNAVAILABLE, serviceName: 'books', reason: 'ECONNREFUSED' });
    // The client is told which subgraph, not where it lives.
    expect(body.errors?.[0]?.message).not.toContain('127.0.0.1');
  });

  it('leaves the gateway up and serving what does not need it', async () => {
    await query(other.url, '{ books { title } }');
    expect((await fetch(`${other.url}/health`)).status).toBe(200);
    expect((await fetch(`${other.url}/ready`)).status).toBe(200);
    const { body } = await query(other.url, '{ authors { name } }');
    expect(body.errors).toBeUndefined();
    expect(body.data?.authors).toHaveLength(3);
  });
});

describe('operation resolution', () => {
  const run = (text: string, operationName?: string) =>
    post(gw.url, JSON.stringify({ query: text, ...(operationName ? { operationName } : {}) }));

  it('answers an unknown operationName, or an unnamed pick among several, with a coded request error', async () => {
    const unknown = await run('query A { books { title } }', 'B');
    expect(unknown.status).toBe(200);
    expect(unknown.body.data).toBeUndefined();
    expect(unknown.body.errors?.[0]).toMatchObject({
      message: 'Unknown operation named "B".',
      extensions: { code: 'OPERATION_RESOLUTION_FAILURE' },
    });
    const ambiguous = await run('query A { books { title } } query C { authors { name } }');
    expect(ambiguous.status).toBe(200);
    expect(code(ambiguous.body)).toBe('OPERATION_RESOLUTION_FAILURE');
    const modern = await post(gw.url, JSON.stringify({ query: 'query A { books { title } } query C { authors { name } }' }), MODERN);
    expect(modern.status).toBe(400);
    expect(code(modern.body)).toBe('OPERATION_RESOLUTION_FAILURE');
    const named = await run('query A { books { title } } query C { authors { name } }', 'C');
    expect(named.status).toBe(200);
    expect(named.body.errors).toBeUndefined();
  });
});
