import type { GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import { GraphQLDataSourceRequestKind } from '@apollo/gateway/dist/datasources/types';
import { eventually } from '@shop/testing';
import { BatchingDataSource, type Transport, allLayersOn } from '../src/fetch';
import { type Fixtures, type GatewayUnderTest, composeFixture, query, silentTelemetry, startFixtures, startGateway } from './harness';

// Bounded work: a request whose client goes away stops costing anything, at the gateway (its
// subgraph requests are cancelled) and in the subgraph (no resolver starts after that); a response
// over MAX_RESPONSE_BYTES is a coded error, not a process out of memory.
let fixtures: Fixtures;
let gw: GatewayUnderTest;

beforeAll(async () => {
  fixtures = await startFixtures();
  gw = await startGateway({ sdl: composeFixture() }, fixtures, { layers: { inflight: false, merge: false, dedupe: false } });
});
afterAll(async () => {
  await gw?.stop();
  await fixtures?.stop();
});

describe('a client that goes away', () => {
  it('cancels the subgraph request, and the subgraph stops resolving it', async () => {
    let release = () => {};
    fixtures.control.booksHang = new Promise<void>((resolve) => {
      release = resolve;
    });
    const abandonedBefore = fixtures.control.abandoned.books;
    const seen = fixtures.control.requestIds.books.length;
    const authorCalls = fixtures.control.bookAuthorCalls;
    const client = new AbortController();
    const pending = fetch(`${gw.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ books { title author { id } } }' }),
      signal: client.signal,
    }).catch((err: unknown) => err);

    // The books subgraph is working on it (its resolver hangs) ...
    await eventually(
      async () => fixtures.control.requestIds.books.length,
      (n) => n > seen,
    );
    client.abort();
    expect(await pending).toMatchObject({ name: 'AbortError' });
    // ... the gateway cancels its request, which the subgraph sees as its client going away ...
    await eventually(
      async () => fixtures.control.abandoned.books,
      (n) => n > abandonedBefore,
    );
    // ... and once the hung resolver returns, none of the fields under it is resolved.
    release();
    fixtures.control.booksHang = undefined;
    const after = await query(gw.url, '{ books { title } }');
    expect(after.body.data?.books).toHaveLength(5);
    expect(fixtures.control.bookAuthorCalls).toBe(authorCalls);
  });
});

/** A transport whose requests hang until released, recording the abort signal of each. */
function hangingTransport() {
  const calls: Array<{ signal: AbortSignal | undefined; release: () => void }> = [];
  const transport: Transport = {
    post: (_url, body, _headers, signal) =>
      new Promise((resolve, reject) => {
        const reps = (JSON.parse(body) as { variables: { representations?: unknown[] } }).variables.representations;
        const data = reps ? { _entities: reps.map(() => ({ name: 'x' })) } : { books: [] };
        calls.push({
          signal,
          release: () => resolve({ status: 200, cacheControl: undefined, contentType: 'application/json', body: { data } }),
        });
        signal?.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
      }),
    close: async () => {},
  };
  return { transport, calls };
}

function dataSource(transport: Transport) {
  const telemetry = silentTelemetry('gateway');
  return new BatchingDataSource<Record<string, unknown>>('books', 'http://books.invalid/graphql', {
    transport,
    metrics: telemetry.metrics,
    logger: telemetry.logger,
    layers: allLayersOn,
    timeoutMs: 10_000,
  });
}

const processOptions = (
  query: string,
  variables: Record<string, unknown>,
  signal: AbortSignal,
): GraphQLDataSourceProcessOptions<Record<string, unknown>> => ({
  kind: GraphQLDataSourceRequestKind.INCOMING_OPERATION,
  request: { query, variables },
  context: { requestId: 'r', signal },
  incomingRequestContext: { overallCachePolicy: undefined } as never,
});

describe('a subgraph request shared by several clients', () => {
  it.each([
    ['in-flight sharing', '{ books { title } }', {}],
    [
      'a merged _entities fetch',
      'query($representations:[_Any!]!){_entities(representations:$representations){...on Author{name}}}',
      { representations: [{ __typename: 'Author', id: '1' }] },
    ],
  ])('%s is cancelled only when every client has gone', async (_name, query, variables) => {
    const { transport, calls } = hangingTransport();
    const ds = dataSource(transport);
    const first = new AbortController();
    const second = new AbortController();
    const a = ds.process(processOptions(query, variables, first.signal)).catch((err: unknown) => err);
    const b = ds.process(processOptions(query, variables, second.signal)).catch((err: unknown) => err);
    await eventually(
      async () => calls.length,
      (n) => n === 1,
    );
    const call = calls[0] as { signal: AbortSignal | undefined; release: () => void };
    first.abort();
    expect(call.signal?.aborted).toBe(false);
    second.abort();
    expect(call.signal?.aborted).toBe(true);
    expect(await a).toMatchObject({ extensions: { code: 'CLIENT_CLOSED_REQUEST' } });
    expect(await b).toMatchObject({ extensions: { code: 'CLIENT_CLOSED_REQUEST' } });
    expect(calls).toHaveLength(1);
  });

  it('answers the client that stayed', async () => {
    const { transport, calls } = hangingTransport();
    const ds = dataSource(transport);
    const leaving = new AbortController();
    const gone = ds.process(processOptions('{ books { title } }', {}, leaving.signal)).catch((err: unknown) => err);
    const staying = ds.process(processOptions('{ books { title } }', {}, new AbortController().signal));
    await eventually(
      async () => calls.length,
      (n) => n === 1,
    );
    leaving.abort();
    calls[0]?.release();
    expect(await staying).toEqual({ data: { books: [] } });
    // The one that left got the answer too (nobody reads it): the request was never cancelled.
    expect(await gone).toEqual({ data: { books: [] } });
  });
});

describe('MAX_RESPONSE_BYTES', () => {
  it('turns a subgraph response over the limit into a coded error at its path', async () => {
    const small = await startGateway({ sdl: composeFixture() }, fixtures, { maxResponseBytes: 300 });
    try {
      // The books subgraph's answer (about 500 bytes) is over; the error that replaces it is not.
      const { status, body } = await query(small.url, '{ books { title t2: title t3: title author { id } } }');
      expect(status).toBe(200);
      expect(body.errors?.[0]?.extensions?.code).toBe('RESPONSE_TOO_LARGE');
      expect(body.errors?.[0]?.message).toBe('Subgraph "books" answered with more than 300 bytes');
      // The gateway is fine: a small answer still comes back.
      const ok = await query(small.url, '{ author(id: "1") { name } }');
      expect(ok.body.data).toEqual({ author: { name: 'Ada' } });
    } finally {
      await small.stop();
    }
  });

  it('replaces a response to the client over the limit with one coded error', async () => {
    // The subgraph's answer (about 115 bytes) fits; the gateway's, with extensions.cost, does not.
    const small = await startGateway({ sdl: composeFixture() }, fixtures, { maxResponseBytes: 150 });
    try {
      const { status, body } = await query(small.url, '{ books { title } }');
      expect(status).toBe(200);
      expect(body.data).toBeNull();
      expect(body.errors).toHaveLength(1);
      expect(body.errors?.[0]?.extensions?.code).toBe('RESPONSE_TOO_LARGE');
      expect(body.errors?.[0]?.message).toMatch(/the limit is 150/);
    } finally {
      await small.stop();
    }
  });
});
