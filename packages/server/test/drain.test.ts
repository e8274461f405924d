import { parse } from 'graphql';
import { graphqlClient, testTelemetry } from '@shop/testing';
import { createSubgraph } from '../src';

describe('graceful stop', () => {
  it('lets an in-flight request finish, then refuses new connections', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered!: () => void;
    const inResolver = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const subgraph = await createSubgraph({
      telemetry: testTelemetry('drain'),
      typeDefs: parse('type Query { slow: String! }'),
      resolvers: {
        Query: {
          slow: async () => {
            entered();
            await gate;
            return 'finished';
          },
        },
      },
      context: async () => ({}),
      ready: async () => true,
    });
    const running = await subgraph.listen(0, '127.0.0.1');
    const client = graphqlClient(`${running.url}/graphql`);

    const inFlight = client.query<{ slow: string }>('{ slow }');
    await inResolver;
    const stopped = subgraph.stop();
    release();
    const res = await inFlight;
    await stopped;
    expect(res.data?.slow).toBe('finished');
    await expect(fetch(`${running.url}/health`)).rejects.toThrow();
  });
});
