import pino from 'pino';
import { type Backend, type GraphQLClient, type GraphQLResponse, graphqlClient } from '@shop/testing';
import { type Telemetry, createTelemetry, metricValue } from '@shop/telemetry';
import { createAccounts } from '../src/server';

/** One captured log line. */
export interface LogLine {
  level: number;
  requestId?: string;
  err?: { message: string };
}

/** Telemetry whose log lines are kept for the test to read. */
export function capturedTelemetry(service: string): { telemetry: Telemetry; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { telemetry: createTelemetry({ service, logger }), lines };
}

/** A running accounts subgraph and how to count its store round trips. */
export interface Running {
  client: GraphQLClient;
  lines: LogLine[];
  storeQueries: () => Promise<number>;
  stop: () => Promise<void>;
}

export async function startAccounts(backend: Backend, options: { maskErrors: boolean; inputLimits?: false }): Promise<Running> {
  const { telemetry, lines } = capturedTelemetry('accounts');
  const subgraph = await createAccounts({
    telemetry,
    store: await backend.location(),
    seed: { users: 5, products: 0, reviews: 0 },
    pageMax: 25,
    ...options,
  });
  const running = await subgraph.listen(0, '127.0.0.1');
  return {
    client: graphqlClient(`${running.url}/graphql`),
    lines,
    storeQueries: () => metricValue(telemetry.metrics.storeQueries, { service: 'accounts' }),
    stop: () => subgraph.stop(),
  };
}

const USERS = '{ users(first: 25) { edges { node { id name } } } }';
type Users = { users: { edges: { node: { id: string; name: string } }[] } };

/**
 * Hostile strings are refused with a short coded BAD_USER_INPUT before anything reaches the store,
 * on SQLite (hostile-input.test.ts) and real PostgreSQL (hostile-input.int.test.ts), in
 * production mode (the errors are client errors: they pass the mask).
 */
export function hostileInputSuite(backend: Backend): void {
  describe(`hostile input to accounts on ${backend.name}`, () => {
    let server: Running;
    let usersBefore: Users['users']['edges'];

    beforeAll(async () => {
      server = await startAccounts(backend, { maskErrors: true });
      usersBefore = (await server.client.query<Users>(USERS)).data!.users.edges;
      // The 5 generated users and the development admin.
      expect(usersBefore).toHaveLength(6);
    });
    afterAll(async () => {
      await server?.stop();
      await backend.cleanup();
    });

    /** Sends a request and checks that it cost no store round trip. */
    async function refused(query: string, variables?: Record<string, unknown>): Promise<GraphQLResponse> {
      const before = await server.storeQueries();
      const res = await server.client.query(query, variables);
      expect(await server.storeQueries()).toBe(before);
      expect(res.errors).toHaveLength(1);
      expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      // Short: the message names the argument and the limit, it does not quote the input.
      expect(res.errors?.[0]?.message.length).toBeLessThan(200);
      expect(JSON.stringify(res.errors).length).toBeLessThan(500);
      return res;
    }

    const createUser = 'mutation ($input: CreateUserInput!) { createUser(input: $input) { id } }';

    it('a NUL character in a mutation variable: BAD_USER_INPUT naming it, nothing written', async () => {
      const res = await refused(createUser, { input: { name: 'Mallory\u0000', email: 'mallory@example.com' } });
      expect(res.errors?.[0]?.extensions?.field).toBe('$input.name');
      expect(res.errors?.[0]?.message).toBe('Variable "$input.name" contains a NUL character (\\u0000), which is not allowed.');
    });

    it('a NUL character in a literal id of a query: BAD_USER_INPUT, no store query', async () => {
      const res = await refused('{ user(id: "u00001\\u0000") { name } }');
      expect(res.errors?.[0]?.extensions?.field).toBe('id');
    });

    it('a 100 KB string: BAD_USER_INPUT with the limit, nothing written', async () => {
      const res = await refused(createUser, { input: { name: 'x'.repeat(100_000), email: 'long@example.com' } });
      expect(res.errors?.[0]?.extensions).toMatchObject({ field: '$input.name', limit: 10_000 });
    });

    it('a 10 KB forged cursor, and a shorter one, are short BAD_USER_INPUT errors with no store query', async () => {
      await refused('query ($after: String) { users(first: 2, after: $after) { edges { cursor } } }', { after: 'A'.repeat(10_240) });
      const shorter = await refused('query ($after: String) { users(first: 2, after: $after) { edges { cursor } } }', {
        after: 'A'.repeat(5_000),
      });
      expect(shorter.errors?.[0]?.extensions?.field).toBe('after');
      // Our own encoding around a NUL is refused by decodeCursor before the store compares with it.
      const nul = Buffer.from('c1:u0\u0000', 'utf8').toString('base64url');
      await refused('query ($after: String) { users(first: 2, after: $after) { edges { cursor } } }', { after: nul });
    });

    it('left the store as it was', async () => {
      expect((await server.client.query<Users>(USERS)).data!.users.edges).toEqual(usersBefore);
    });
  });
}
