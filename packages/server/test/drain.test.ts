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

  it('with a drain delay, first says draining on /ready while still answering (closing each connection), then stops', async () => {
    const subgraph = await createSubgraph({
      telemetry: testTelemetry('drain-delay'),
      typeDefs: parse('type Query { hello: String! }'),
      resolvers: { Query: { hello: () => 'hi' } },
      context: async () => ({}),
      ready: async () => true,
    });
    const running = await subgraph.listen(0, '127.0.0.1', { drainDelayMs: 400 });
    const ready = async () => {
      const res = await fetch(`${running.url}/ready`);
      return { status: res.status, body: (await res.json()) as { status: string } };
    };
    expect(await ready()).toEqual({ status: 200, body: { status: 'ready', service: 'drain-delay' } });
    const started = performance.now();
    const stopped = subgraph.stop();
    expect(await ready()).toEqual({ status: 503, body: { status: 'draining', service: 'drain-delay' } });
    // Still served, each answer closing its connection: keep-alive clients go to another replica.
    const res = await fetch(`${running.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ hello }' }),
    });
    expect(res.headers.get('connection')).toBe('close');
    expect(await res.json()).toEqual({ data: { hello: 'hi' } });
    await stopped;
    expect(performance.now() - started).toBeGreaterThanOrEqual(390);
    await expect(fetch(`${running.url}/health`)).rejects.toThrow();
  });
});
