// Load shedding (#13): a saturated process refuses new GraphQL requests at once with a coded 503
// and Retry-After, instead of queueing them past every timeout, and /health keeps answering.
import { parse } from 'graphql';
import { eventually, testTelemetry } from '@shop/testing';
import { type Subgraph, createSubgraph } from '../src';

let subgraph: Subgraph;
let base: string;
let release: () => void = () => {};
let hang: Promise<void> | undefined;

const post = (query: string) =>
  fetch(`${base}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) });

beforeAll(async () => {
  subgraph = await createSubgraph({
    telemetry: testTelemetry('shedding'),
    typeDefs: parse('type Query { hello: String! slow: String! }'),
    resolvers: {
      Query: {
        hello: () => 'hello',
        slow: async () => {
          await hang;
          return 'done';
        },
      },
    },
    context: async () => ({}),
    ready: async () => true,
    loadShedding: { maxInFlight: 2, maxEventLoopDelayMs: 150, windowMs: 100 },
  });
  base = (await subgraph.listen(0, '127.0.0.1')).url;
});
afterAll(() => subgraph.stop());

it('refuses requests past the in-flight limit with 503 OVERLOADED and Retry-After, and takes them again once under it', async () => {
  hang = new Promise<void>((resolve) => {
    release = resolve;
  });
  const held = [post('{ slow }'), post('{ slow }')];
  // Both are in flight once the server has taken them; the third is over the limit.
  const refused = await eventually(
    () => post('{ hello }'),
    (res) => res.status === 503,
  );
  expect(refused.headers.get('retry-after')).toBe('1');
  expect(((await refused.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0]?.extensions.code).toBe('OVERLOADED');
  expect((await fetch(`${base}/health`)).status).toBe(200);
  release();
  hang = undefined;
  for (const res of await Promise.all(held)) expect(res.status).toBe(200);
  expect((await post('{ hello }')).status).toBe(200);
  const metrics = await (await fetch(`${base}/metrics`)).text();
  expect(metrics).toMatch(/http_requests_shed_total\{service="shedding",reason="overloaded"\} [1-9]/);
});

/** Holds the event loop, as a request's synchronous work would. */
function busy(ms: number): void {
  const started = performance.now();
  while (performance.now() - started < ms) {
    // busy
  }
}

it('sheds while the event loop stays late (not after one long stretch), answers /health meanwhile, and recovers', async () => {
  // One long stretch is not overload ...
  busy(400);
  expect((await post('{ hello }')).status).toBe(200);
  // ... a loop that stays busy is: four stretches of 200 ms, each followed by one turn of the loop.
  for (let i = 0; i < 4; i++) {
    busy(200);
    await new Promise((resolve) => setImmediate(resolve));
  }
  const refused = await eventually(
    () => post('{ hello }'),
    (res) => res.status === 503,
    5_000,
    10,
  );
  expect(((await refused.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0]?.extensions.code).toBe('OVERLOADED');
  expect((await fetch(`${base}/health`)).status).toBe(200);
  // The next quiet window clears it.
  expect(
    (
      await eventually(
        () => post('{ hello }'),
        (res) => res.status === 200,
        5_000,
        20,
      )
    ).status,
  ).toBe(200);
});
