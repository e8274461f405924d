// What a client learns from a failure, in production and in development: a subgraph's uncoded
// error (a store failure with SQL in its message) becomes INTERNAL_SERVER_ERROR with the request
// id, the original is in the logs under that id, and coded client errors pass as they are.
import { composeServices } from '@apollo/composition';
import { GraphQLError, parse } from 'graphql';
import pino from 'pino';
import { type Subgraph, createSubgraph } from '@shop/server';
import { type Telemetry, createTelemetry } from '@shop/telemetry';
import { type Gateway, createGateway } from '../src/gateway';
import { type HttpResult, post, query } from './harness';

const vaultSdl = `
extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])
type Query {
  "Fails the way a store does: an uncoded error whose message has SQL in it."
  secret: String
  "A coded client error."
  item(id: ID!): String
  open: String
}
`;

const SQL = 'SELECT secret FROM vault WHERE owner = $1: invalid byte sequence for encoding "UTF8": 0x00';

interface LogLine {
  level: number;
  requestId?: string;
  serviceName?: string;
  err?: { message: string };
}

function captured(service: string): { telemetry: Telemetry; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { telemetry: createTelemetry({ service, logger }), lines };
}

interface Setup {
  gateway: Gateway;
  url: string;
  gatewayLog: LogLine[];
  vaultLog: LogLine[];
  stop(): Promise<void>;
}

async function start(options: { gatewayProduction: boolean; subgraphProduction: boolean; introspection?: boolean }): Promise<Setup> {
  const vaultTelemetry = captured('vault');
  const vault: Subgraph = await createSubgraph({
    telemetry: vaultTelemetry.telemetry,
    typeDefs: parse(vaultSdl),
    resolvers: {
      Query: {
        secret: () => {
          throw new Error(SQL);
        },
        item: (_: unknown, { id }: { id: string }) => {
          throw new GraphQLError(`Item ids are numeric; received "${id}"`, { extensions: { code: 'BAD_USER_INPUT', field: 'id' } });
        },
        open: () => 'open',
      },
    },
    context: async () => ({}),
    ready: async () => true,
    maskErrors: options.subgraphProduction,
    debug: !options.subgraphProduction,
  });
  const running = await vault.listen(0, '127.0.0.1');
  const composed = composeServices([{ name: 'vault', url: `${running.url}/graphql`, typeDefs: parse(vaultSdl) }]);
  if (composed.errors) throw new Error(composed.errors.map((e) => e.message).join('; '));
  const gatewayTelemetry = captured('gateway');
  const gateway = await createGateway({
    telemetry: gatewayTelemetry.telemetry,
    supergraph: { sdl: composed.supergraphSdl },
    maskErrors: options.gatewayProduction,
    // As index.ts maps NODE_ENV: development tools off in production.
    introspection: options.introspection ?? !options.gatewayProduction,
    explorer: false,
    debug: !options.gatewayProduction,
  });
  const server = await gateway.listen(0, '127.0.0.1');
  return {
    gateway,
    url: server.url,
    gatewayLog: gatewayTelemetry.lines,
    vaultLog: vaultTelemetry.lines,
    stop: async () => {
      await gateway.stop();
      await vault.stop();
    },
  };
}

const internalOf = (res: HttpResult) => res.body.errors?.find((e) => e.extensions?.code === 'INTERNAL_SERVER_ERROR');

describe('a gateway in production (maskErrors) over a subgraph in development', () => {
  let setup: Setup;
  beforeAll(async () => {
    setup = await start({ gatewayProduction: true, subgraphProduction: false });
  });
  afterAll(() => setup?.stop());

  it("turns the subgraph's uncoded error into INTERNAL_SERVER_ERROR with the request id, and logs the original", async () => {
    const res = await query(setup.url, '{ secret open }');
    const requestId = res.headers.get('x-request-id');
    expect(requestId).toBeTruthy();
    expect(res.body.data).toEqual({ secret: null, open: 'open' });
    expect(res.body.errors).toEqual([
      {
        message: `Internal server error (request id ${requestId})`,
        path: ['secret'],
        extensions: { code: 'INTERNAL_SERVER_ERROR', requestId },
      },
    ]);
    expect(JSON.stringify(res.body)).not.toMatch(/SELECT|vault|UTF8|stacktrace|serviceName/);
    const logged = setup.gatewayLog.filter((l) => l.requestId === requestId && l.level >= 50);
    expect(logged).toHaveLength(1);
    expect(logged[0]?.err?.message).toContain('SELECT secret FROM vault');
    expect(logged[0]?.serviceName).toBe('vault');
  });

  it("keeps the client's own x-request-id, so the client can quote it", async () => {
    const res = await post(setup.url, { query: '{ secret }' }, { 'x-request-id': 'client-chosen-42' });
    expect(internalOf(res)?.extensions).toEqual({ code: 'INTERNAL_SERVER_ERROR', requestId: 'client-chosen-42' });
    // The subgraph got the same id: its log of the request is found under it too.
    expect(setup.vaultLog.some((l) => l.requestId === 'client-chosen-42' && l.err?.message.includes('SELECT'))).toBe(true);
  });

  it('lets a coded client error from the subgraph through, message and all', async () => {
    const res = await query(setup.url, '{ item(id: "abc") }');
    expect(res.body.errors?.[0]).toMatchObject({
      message: 'Item ids are numeric; received "abc"',
      path: ['item'],
      extensions: { code: 'BAD_USER_INPUT', field: 'id', serviceName: 'vault' },
    });
  });

  it('refuses a NUL character or a 100 KB string at the gateway, before the subgraph: coded, short, and no resolver ran', async () => {
    for (const id of ['abc\u0000', 'x'.repeat(100_000)]) {
      const res = await query(setup.url, 'query ($id: ID!) { item(id: $id) }', { id });
      expect(res.body.errors).toHaveLength(1);
      expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: '$id' });
      // The gateway's own refusal: no subgraph took part.
      expect(res.body.errors?.[0]?.extensions?.serviceName).toBeUndefined();
      // Not the resolver's "Item ids are numeric" (it did not run), and nothing of the value.
      expect(res.body.errors?.[0]?.message).toMatch(/^Variable "\$id" (contains a NUL|is an ID of 100000 characters)/);
      expect(JSON.stringify(res.body).length).toBeLessThan(400);
    }
  });

  it('gives no suggestions and quotes at most a short prefix of what was sent', async () => {
    const typo = await query(setup.url, '{ secrte }');
    expect(typo.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(typo.body.errors?.[0]?.message).toBe('Cannot query field "secrte" on type "Query".');
    const big = 'x'.repeat(10_000);
    const coercion = await query(setup.url, 'query ($id: ID!) { item(id: $id) }', { id: { big } });
    expect(coercion.body.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(JSON.stringify(coercion.body).length).toBeLessThan(600);
  });
});

describe('both in production', () => {
  let setup: Setup;
  beforeAll(async () => {
    setup = await start({ gatewayProduction: true, subgraphProduction: true });
  });
  afterAll(() => setup?.stop());

  it('the client gets the request id; the subgraph logged the original under the same id', async () => {
    const res = await post(setup.url, { query: '{ secret }' }, { 'x-request-id': 'both-prod-7' });
    expect(internalOf(res)).toEqual({
      message: 'Internal server error (request id both-prod-7)',
      path: ['secret'],
      extensions: { code: 'INTERNAL_SERVER_ERROR', requestId: 'both-prod-7' },
    });
    expect(setup.vaultLog.some((l) => l.requestId === 'both-prod-7' && l.err?.message === SQL)).toBe(true);
    // The gateway saw only the subgraph's masked error, and logged that under the same id.
    expect(setup.gatewayLog.some((l) => l.requestId === 'both-prod-7' && l.err?.message.includes('request id both-prod-7'))).toBe(true);
  });
});

describe('a gateway in development', () => {
  let setup: Setup;
  beforeAll(async () => {
    setup = await start({ gatewayProduction: false, subgraphProduction: false });
  });
  afterAll(() => setup?.stop());

  it('shows the real message and suggestions', async () => {
    const res = await query(setup.url, '{ secret }');
    expect(internalOf(res)?.message).toContain('SELECT secret FROM vault');
    expect((await query(setup.url, '{ secrte }')).body.errors?.[0]?.message).toContain('Did you mean "secret"?');
  });

  it('hides suggestions when introspection is off', async () => {
    const closed = await start({ gatewayProduction: false, subgraphProduction: false, introspection: false });
    try {
      expect((await query(closed.url, '{ secrte }')).body.errors?.[0]?.message).toBe('Cannot query field "secrte" on type "Query".');
    } finally {
      await closed.stop();
    }
  });
});
