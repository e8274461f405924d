import { GraphQLError, type GraphQLFormattedError, parse } from 'graphql';
import pino from 'pino';
import { type GraphQLClient, graphqlClient } from '@shop/testing';
import { createTelemetry } from '@shop/telemetry';
import { CLIENT_ERROR_CODES, type Subgraph, clientErrors, createSubgraph, quote } from '../src';

/** A formatter with a silent logger: the pure half of clientErrors. */
const formatter = (options: Parameters<typeof clientErrors>[0]) =>
  clientErrors(options, { logger: pino({ level: 'silent' }), requestOf: () => undefined }).formatError;

const format = (options: Parameters<typeof clientErrors>[0], error: GraphQLFormattedError) =>
  formatter(options)(error, new Error('original'));

describe('quote', () => {
  it('quotes short values whole and long ones as a prefix with their length', () => {
    expect(quote('u00001')).toBe('"u00001"');
    expect(quote('x'.repeat(10_000), 3)).toBe('"xxx"… (10000 characters)');
    expect(quote('a\u0000b')).toBe('"a\\u0000b"');
    expect(quote(42)).toBe('42');
    expect(quote('y'.repeat(100_000)).length).toBeLessThan(70);
  });
});

describe('formatError', () => {
  const internal: GraphQLFormattedError = {
    message: 'invalid byte sequence for encoding "UTF8": 0x00',
    locations: [{ line: 1, column: 3 }],
    path: ['user'],
    extensions: {
      code: 'INTERNAL_SERVER_ERROR',
      stacktrace: ['error: invalid byte sequence', '    at Parser.parseErrorMessage (pg-protocol)'],
    },
  };

  it('in production masks anything without a client code, keeping only path and locations', () => {
    expect(format({ maskErrors: true }, internal)).toEqual({
      message: 'Internal server error',
      locations: [{ line: 1, column: 3 }],
      path: ['user'],
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    });
    // An unknown code is not a client code: new codes are added to CLIENT_ERROR_CODES or masked.
    const unknown = format(
      { maskErrors: true },
      { message: 'relation "users" does not exist', extensions: { code: '42P01', detail: 'SQL' } },
    );
    expect(unknown).toEqual({ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } });
  });

  it('in production keeps a client error message and extensions, without its stack trace', () => {
    const formatted = format(
      { maskErrors: true },
      { message: 'User "u9" not found', path: ['user'], extensions: { code: 'NOT_FOUND', field: 'id', stacktrace: ['GraphQLError: ...'] } },
    );
    expect(formatted).toEqual({ message: 'User "u9" not found', path: ['user'], extensions: { code: 'NOT_FOUND', field: 'id' } });
    for (const code of CLIENT_ERROR_CODES) {
      expect(format({ maskErrors: true }, { message: 'told', extensions: { code } }).message).toBe('told');
    }
  });

  it('in development keeps the detail: message, extensions and (when Apollo adds it) the stack', () => {
    expect(format({}, internal)).toEqual(internal);
  });

  it('removes "Did you mean" suggestions when asked (production or introspection off), not otherwise', () => {
    const cases = [
      ['Cannot query field "nam" on type "User". Did you mean "name"?', 'Cannot query field "nam" on type "User".'],
      ['Value "REDD" does not exist in "Color" enum. Did you mean the enum value "RED"?', 'Value "REDD" does not exist in "Color" enum.'],
      [
        'Cannot query field "x" on type "Media". Did you mean to use an inline fragment on "Film" or "Series"?',
        'Cannot query field "x" on type "Media".',
      ],
      [
        'Variable "$i" got invalid value { nam: "a" }; Field "nam" is not defined by type "CreateUserInput". Did you mean "name"?',
        'Variable "$i" got invalid value { nam: "a" }; Field "nam" is not defined by type "CreateUserInput".',
      ],
    ] as const;
    for (const [message, stripped] of cases) {
      const error = { message, extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } };
      expect(format({ maskErrors: true }, error).message).toBe(stripped);
      expect(format({ hideSuggestions: true }, error).message).toBe(stripped);
      expect(format({}, error).message).toBe(message);
    }
  });

  it('cuts quoted input to a prefix and every message to maxMessageLength, in every mode', () => {
    const value = 'x'.repeat(10_000);
    const message = `Variable "$n" got invalid value "${value}"; Int cannot represent non-integer value: "${value}"`;
    for (const maskErrors of [true, false]) {
      const formatted = format({ maskErrors }, { message, extensions: { code: 'BAD_USER_INPUT' } });
      expect(formatted.message).toBe(
        `Variable "$n" got invalid value "${'x'.repeat(40)}…"; Int cannot represent non-integer value: "${'x'.repeat(40)}…"`,
      );
    }
    const unquoted = format({}, { message: `Expected a name, found ${'y'.repeat(5_000)}`, extensions: { code: 'BAD_USER_INPUT' } });
    expect(unquoted.message).toHaveLength(300);
    expect(unquoted.message.endsWith('…')).toBe(true);
    // An escape sequence is not cut in half, and an unterminated quote is cut all the same.
    expect(format({ maxQuotedLength: 5 }, { message: 'got "abcd\\u0000efgh"', extensions: { code: 'BAD_USER_INPUT' } }).message).toBe(
      'got "abcd…"',
    );
    expect(format({ maxQuotedLength: 5 }, { message: `got "${value}`, extensions: { code: 'BAD_USER_INPUT' } }).message).toBe(
      'got "xxxxx…"',
    );
  });
});

interface LogLine {
  level: number;
  msg: string;
  requestId?: string;
  code?: string;
  err?: { message: string; stack?: string };
}

/** A subgraph whose resolvers fail the ways a store does, with its log captured. */
async function probe(options: { maskErrors: boolean; debug?: boolean }) {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  const subgraph: Subgraph = await createSubgraph({
    telemetry: createTelemetry({ service: 'probe', logger }),
    typeDefs: parse('type Query { secret: String  user(id: ID!): String  count(n: Int!): Int  nope: String }'),
    resolvers: {
      Query: {
        secret: () => {
          throw new Error('SELECT secret FROM users WHERE id = $1: invalid byte sequence for encoding "UTF8": 0x00');
        },
        user: (_: unknown, { id }: { id: string }) => {
          throw new GraphQLError(`User ${quote(id)} not found`, { extensions: { code: 'NOT_FOUND' } });
        },
        count: (_: unknown, { n }: { n: number }) => n,
        nope: () => 'nope',
      },
    },
    context: async () => ({}),
    ready: async () => true,
    ...options,
  });
  const running = await subgraph.listen(0, '127.0.0.1');
  return { subgraph, lines, client: graphqlClient(`${running.url}/graphql`) };
}

describe('a subgraph in production (maskErrors)', () => {
  let server: Awaited<ReturnType<typeof probe>>;
  let client: GraphQLClient;
  beforeAll(async () => {
    server = await probe({ maskErrors: true, debug: true });
    client = server.client;
  });
  afterAll(() => server.subgraph.stop());

  it('answers an uncoded error with INTERNAL_SERVER_ERROR and the request id, and logs the original with it', async () => {
    const res = await client.query('{ secret nope }', undefined, { 'x-request-id': 'req-masked-1' });
    expect(res.data).toEqual({ secret: null, nope: 'nope' });
    expect(res.errors).toEqual([
      {
        message: 'Internal server error (request id req-masked-1)',
        locations: [{ line: 1, column: 3 }],
        path: ['secret'],
        extensions: { code: 'INTERNAL_SERVER_ERROR', requestId: 'req-masked-1' },
      },
    ]);
    expect(JSON.stringify(res)).not.toMatch(/SELECT|UTF8|stacktrace/);
    const logged = server.lines.filter((l) => l.requestId === 'req-masked-1' && l.level >= 50);
    expect(logged).toHaveLength(1);
    expect(logged[0]?.err?.message).toContain('SELECT secret FROM users');
    expect(logged[0]?.err?.stack).toContain('client-errors.test.ts');
  });

  it('uses the id it made up when the client sent none (the x-request-id response header)', async () => {
    const res = await client.query('{ secret }');
    const id = res.headers.get('x-request-id');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.errors?.[0]?.extensions).toEqual({ code: 'INTERNAL_SERVER_ERROR', requestId: id });
    expect(server.lines.some((l) => l.requestId === id && l.err?.message.includes('SELECT'))).toBe(true);
  });

  it('lets coded client errors through, bounded, without stack traces even with debug on', async () => {
    const res = await client.query('query ($id: ID!) { user(id: $id) }', { id: 'u'.repeat(100) });
    expect(res.errors?.[0]).toEqual({
      message: `User "${'u'.repeat(40)}"… (100 characters) not found`,
      locations: [{ line: 1, column: 20 }],
      path: ['user'],
      extensions: { code: 'NOT_FOUND' },
    });
    // Client errors are the client's business: not logged as internal errors.
    expect(server.lines.some((l) => l.code === 'NOT_FOUND')).toBe(false);
  });

  it('strips suggestions and cuts quoted values from graphql-js messages', async () => {
    const suggestion = await client.query('{ secrte }');
    expect(suggestion.errors?.[0]).toMatchObject({
      message: 'Cannot query field "secrte" on type "Query".',
      extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
    });
    const huge = 'x'.repeat(10_000);
    const coercion = await client.query('query ($n: Int!) { count(n: $n) }', { n: huge });
    expect(coercion.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(coercion.errors?.[0]?.message.length).toBeLessThanOrEqual(300);
    expect(JSON.stringify(coercion).length).toBeLessThan(1_000);
  });
});

describe('a subgraph in development', () => {
  it('shows the real message, and the stack only with debug', async () => {
    for (const debug of [false, true]) {
      const server = await probe({ maskErrors: false, debug });
      try {
        const res = await server.client.query('{ secret }');
        expect(res.errors?.[0]?.message).toContain('SELECT secret FROM users');
        expect(res.errors?.[0]?.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
        expect('stacktrace' in (res.errors?.[0]?.extensions ?? {})).toBe(debug);
        expect('requestId' in (res.errors?.[0]?.extensions ?? {})).toBe(false);
        // Suggestions stay for developers.
        expect((await server.client.query('{ secrte }')).errors?.[0]?.message).toContain('Did you mean "secret"?');
        // The original is logged in development too.
        expect(server.lines.some((l) => l.err?.message.includes('SELECT'))).toBe(true);
      } finally {
        await server.subgraph.stop();
      }
    }
  });
});
