import { parse } from 'graphql';
import { graphqlClient, testTelemetry } from '@shop/testing';
import { CLIENT_CLOSED_REQUEST, REQUEST_TIMEOUT_HEADER, createSubgraph } from '../src';

// A subgraph stops resolving a request once its caller's deadline (the gateway's
// x-request-timeout-ms) has passed: no field starts after it, though the client is still there.
describe('a request past its deadline', () => {
  it('starts no field after the deadline, and a request inside its deadline is answered whole', async () => {
    let nameCalls = 0;
    const subgraph = await createSubgraph({
      telemetry: testTelemetry('abandon'),
      typeDefs: parse('type Item { name: String! } type Query { slow(ms: Int!): Item }'),
      resolvers: {
        Query: {
          // A store that takes `ms` to answer.
          slow: async (_: unknown, { ms }: { ms: number }) => {
            await new Promise((resolve) => setTimeout(resolve, ms));
            return {};
          },
        },
        Item: {
          name: () => {
            nameCalls++;
            return 'item';
          },
        },
      },
      context: async () => ({}),
      ready: async () => true,
    });
    const running = await subgraph.listen(0, '127.0.0.1');
    try {
      const url = `${running.url}/graphql`;
      // 300 ms: time enough for `slow` to start on a loaded machine (at 50 ms it once did not,
      // and the error was on `slow`), and its 600 ms outlast the deadline.
      const late = await graphqlClient(url, { headers: { [REQUEST_TIMEOUT_HEADER]: '300' } }).query<{ slow: { name: string } | null }>(
        '{ slow(ms: 600) { name } }',
      );
      expect(late.errors?.[0]?.extensions?.code).toBe(CLIENT_CLOSED_REQUEST);
      expect(late.errors?.[0]?.path).toEqual(['slow', 'name']);
      expect(nameCalls).toBe(0);

      const inTime = await graphqlClient(url, { headers: { [REQUEST_TIMEOUT_HEADER]: '60000' } }).query<{ slow: { name: string } }>(
        '{ slow(ms: 1) { name } }',
      );
      expect(inTime.errors).toBeUndefined();
      expect(inTime.data?.slow.name).toBe('item');
      expect(nameCalls).toBe(1);
    } finally {
      await subgraph.stop();
    }
  });
});
