// One error model: resolvers throw DomainError and never wrap themselves; the subgraph factory's
// formatError gives the client its code, field and message, and masks anything else in production.
import { GraphQLError, parse } from 'graphql';
import pino from 'pino';
import { createTelemetry } from '@shop/telemetry';
import { graphqlClient } from '@shop/testing';
import {
  CLIENT_ERROR_CODES,
  DOMAIN_ERROR_CODES,
  DomainError,
  type Subgraph,
  badInput,
  clientErrors,
  createSubgraph,
  domainErrorOf,
} from '../src';

interface LogLine {
  level: number;
  requestId?: string;
  code?: string;
  err?: { message: string };
}

/** A subgraph whose resolvers throw the way domain code does, bare, with its log captured. */
async function probe(maskErrors: boolean) {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  const subgraph: Subgraph = await createSubgraph({
    telemetry: createTelemetry({ service: 'probe', logger }),
    typeDefs: parse('type Query { rate(stars: Int!): Int  move(version: Int!): Int  later: Int  broken: Int  fine: Int }'),
    resolvers: {
      Query: {
        // Synchronous and asynchronous throws, with a field and with details: no wrapper anywhere.
        rate: (_: unknown, { stars }: { stars: number }) => {
          throw badInput('stars', `stars must be between 1 and 5; received ${stars}`);
        },
        move: async (_: unknown, { version }: { version: number }) => {
          throw new DomainError('CONCURRENCY_CONFLICT', 'order "o1" is at version 3', undefined, {
            // A detail cannot pose as the code: the error's own code wins.
            details: { expectedVersion: version, actualVersion: 3, code: 'INTERNAL_SERVER_ERROR' },
            cause: new Error('duplicate key value violates unique constraint "es_events_stream_version"'),
          });
        },
        later: async () => {
          await Promise.resolve();
          throw new DomainError('NOT_FOUND', 'order "o9" not found', 'id');
        },
        broken: async () => {
          throw new Error('SELECT * FROM orders: connection terminated');
        },
        fine: () => 1,
      },
    },
    context: async () => ({}),
    ready: async () => true,
    maskErrors,
    debug: true,
  });
  const running = await subgraph.listen(0, '127.0.0.1');
  return { subgraph, lines, client: graphqlClient(`${running.url}/graphql`) };
}

describe('DomainError thrown by a resolver, in production (maskErrors)', () => {
  let server: Awaited<ReturnType<typeof probe>>;
  beforeAll(async () => {
    server = await probe(true);
  });
  afterAll(() => server.subgraph.stop());

  it('reaches the client with its code, field and message, and no stack trace even with debug on', async () => {
    const res = await server.client.query('{ rate(stars: 9) later fine }', undefined, { 'x-request-id': 'req-domain-1' });
    expect(res.data).toEqual({ rate: null, later: null, fine: 1 });
    expect(res.errors).toEqual([
      {
        message: 'stars must be between 1 and 5; received 9',
        locations: [{ line: 1, column: 3 }],
        path: ['rate'],
        extensions: { code: 'BAD_USER_INPUT', field: 'stars' },
      },
      {
        message: 'order "o9" not found',
        locations: [{ line: 1, column: 18 }],
        path: ['later'],
        extensions: { code: 'NOT_FOUND', field: 'id' },
      },
    ]);
    // A refusal is the client's business: nothing logged as an internal error.
    expect(server.lines.filter((l) => l.requestId === 'req-domain-1' && l.level >= 50)).toEqual([]);
  });

  it('carries its details, never its cause', async () => {
    const res = await server.client.query('{ move(version: 2) }');
    expect(res.errors?.[0]?.extensions).toEqual({ code: 'CONCURRENCY_CONFLICT', expectedVersion: 2, actualVersion: 3 });
    expect(res.errors?.[0]?.message).toBe('order "o1" is at version 3');
    expect(JSON.stringify(res)).not.toMatch(/duplicate key|es_events/);
  });

  it('masks an error that is not a DomainError, and logs the original under the request id', async () => {
    const res = await server.client.query('{ broken fine }', undefined, { 'x-request-id': 'req-domain-2' });
    expect(res.data).toEqual({ broken: null, fine: 1 });
    expect(res.errors).toEqual([
      {
        message: 'Internal server error (request id req-domain-2)',
        locations: [{ line: 1, column: 3 }],
        path: ['broken'],
        extensions: { code: 'INTERNAL_SERVER_ERROR', requestId: 'req-domain-2' },
      },
    ]);
    expect(JSON.stringify(res)).not.toMatch(/SELECT|connection terminated/);
    const logged = server.lines.filter((l) => l.requestId === 'req-domain-2' && l.level >= 50);
    expect(logged.map((l) => l.err?.message)).toEqual(['SELECT * FROM orders: connection terminated']);
  });
});

describe('DomainError thrown by a resolver, in development', () => {
  it('has the same code, field and message; other errors keep their detail', async () => {
    const server = await probe(false);
    try {
      const res = await server.client.query('{ rate(stars: 0) broken }');
      const [rate, broken] = res.errors ?? [];
      expect(rate).toMatchObject({
        message: 'stars must be between 1 and 5; received 0',
        path: ['rate'],
        extensions: { code: 'BAD_USER_INPUT', field: 'stars' },
      });
      // debug: the stack stays in development, for domain errors too.
      expect(Array.isArray(rate?.extensions?.stacktrace)).toBe(true);
      expect(broken).toMatchObject({
        message: 'SELECT * FROM orders: connection terminated',
        extensions: { code: 'INTERNAL_SERVER_ERROR' },
      });
    } finally {
      await server.subgraph.stop();
    }
  });
});

describe('the one list of codes', () => {
  it('makes every domain code a client code, each listed once', () => {
    for (const code of DOMAIN_ERROR_CODES) expect(CLIENT_ERROR_CODES).toContain(code);
    expect(new Set(CLIENT_ERROR_CODES).size).toBe(CLIENT_ERROR_CODES.length);
  });

  it('finds the DomainError behind graphql-js and Apollo wrappers, and nothing behind other errors', () => {
    const domain = new DomainError('CONFLICT', 'email "a@b.c" is already registered', 'input.email');
    const located = new GraphQLError(domain.message, { originalError: domain });
    expect(domainErrorOf(domain)).toBe(domain);
    expect(domainErrorOf(located)).toBe(domain);
    expect(domainErrorOf(new GraphQLError('Variable "$i" got invalid value', { originalError: located }))).toBe(domain);
    expect(domainErrorOf(new GraphQLError('plain'))).toBeUndefined();
    expect(domainErrorOf(new Error('plain', { cause: domain }))).toBeUndefined();
    expect(domainErrorOf('a string')).toBeUndefined();
  });

  it("formatError codes a DomainError Apollo defaulted to INTERNAL_SERVER_ERROR, keeping Apollo's message", () => {
    const { formatError } = clientErrors({ maskErrors: true }, { logger: pino({ level: 'silent' }), requestOf: () => undefined });
    const domain = badInput('input.rating', 'input.rating: must be between 1 and 5');
    const formatted = formatError(
      { message: domain.message, path: ['addReview'], extensions: { code: 'INTERNAL_SERVER_ERROR', stacktrace: ['DomainError: ...'] } },
      new GraphQLError(domain.message, { originalError: domain }),
    );
    expect(formatted).toEqual({
      message: domain.message,
      path: ['addReview'],
      extensions: { code: 'BAD_USER_INPUT', field: 'input.rating' },
    });
  });
});
