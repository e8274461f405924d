// Per-subgraph resilience (#13): a circuit breaker per subgraph, retries of queries (never
// mutations) after connection failures, and the client request's deadline passed down. The layers
// alone over a scripted `next`, then a gateway in front of a hung subgraph.
import { createServer } from 'node:net';
import { Registry } from 'prom-client';
import pino from 'pino';
import { BrokenCircuitError } from 'cockatiel';
import { type Telemetry, createTelemetry } from '@shop/telemetry';
import type { FetchResponse } from '../src/fetch';
import { DeadlinePassedError, TIMEOUT_HEADER, type Transport, createTransport } from '../src/fetch';
import { breakerLayer } from '../src/fetch/breaker';
import { retryLayer } from '../src/fetch/retry';
import { transportLayer, UnusableResponseError } from '../src/fetch/transport';
import {
  type Fixtures,
  type GatewayUnderTest,
  composeFixture,
  query,
  seriesValue,
  startFixtures,
  startGateway,
  fetchRequest,
} from './harness';

const telemetry = (): Telemetry => createTelemetry({ service: 'gateway', registry: new Registry(), logger: pino({ level: 'silent' }) });

const ok: FetchResponse = { body: { data: { books: [] } }, hint: { maxAge: 0 } };
const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });

/** A `next` that plays a script of outcomes (then succeeds), counting its calls. */
function scripted(outcomes: Array<() => never>) {
  const calls = { count: 0 };
  const next = async (): Promise<FetchResponse> => {
    const outcome = outcomes[calls.count++];
    if (outcome) outcome();
    return ok;
  };
  return { next, calls };
}

const series = async (t: Telemetry, name: string) => seriesValue(await t.registry.metrics(), name);

describe('breaker layer', () => {
  it('opens after consecutive failures, then fails fast without calling the subgraph', async () => {
    const t = telemetry();
    const layer = breakerLayer('books', t.metrics, { failures: 3, halfOpenAfterMs: 60_000 });
    const { next, calls } = scripted(
      Array.from({ length: 10 }, () => () => {
        throw refused();
      }),
    );
    for (let i = 0; i < 3; i++) await expect(layer(fetchRequest(), next)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(await series(t, 'gateway_subgraph_breaker_state{subgraph="books"}')).toBe(2);
    await expect(layer(fetchRequest(), next)).rejects.toBeInstanceOf(BrokenCircuitError);
    await expect(layer(fetchRequest({ mutation: true }), next)).rejects.toBeInstanceOf(BrokenCircuitError);
    expect(calls.count).toBe(3);
    expect(await series(t, 'gateway_subgraph_breaker_transitions_total{subgraph="books",to="open"}')).toBe(1);
  });

  it('lets one probe through when half-open, fails the others fast, and closes on its success', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'setTimeout', 'clearTimeout', 'queueMicrotask'] });
    try {
      const t = telemetry();
      const layer = breakerLayer('books', t.metrics, { failures: 2, halfOpenAfterMs: 1_000 });
      const failing = scripted([
        () => {
          throw refused();
        },
        () => {
          throw refused();
        },
      ]);
      for (let i = 0; i < 2; i++) await expect(layer(fetchRequest(), failing.next)).rejects.toBeDefined();
      jest.setSystemTime(Date.now() + 1_500);
      let releaseProbe = () => {};
      const probeCalls = { count: 0 };
      const probe = layer(fetchRequest(), () => {
        probeCalls.count++;
        return new Promise<FetchResponse>((resolve) => {
          releaseProbe = () => resolve(ok);
        });
      });
      expect(await series(t, 'gateway_subgraph_breaker_state{subgraph="books"}')).toBe(1);
      // While the probe is out, another request fails at once instead of queueing behind it.
      const other = scripted([]);
      await expect(layer(fetchRequest(), other.next)).rejects.toBeInstanceOf(BrokenCircuitError);
      expect(other.calls.count).toBe(0);
      releaseProbe();
      await expect(probe).resolves.toBe(ok);
      expect(probeCalls.count).toBe(1);
      expect(await series(t, 'gateway_subgraph_breaker_state{subgraph="books"}')).toBe(0);
      await expect(layer(fetchRequest(), other.next)).resolves.toBe(ok);
    } finally {
      jest.useRealTimers();
    }
  });

  it('does not count what is not the subgraph falling ill: a 4xx, a client gone away', async () => {
    const t = telemetry();
    const layer = breakerLayer('books', t.metrics, { failures: 2, halfOpenAfterMs: 60_000 });
    const gone = new AbortController();
    gone.abort();
    const { next, calls } = scripted([
      () => {
        throw new UnusableResponseError(400);
      },
      () => {
        throw new UnusableResponseError(403);
      },
      () => {
        throw refused();
      },
    ]);
    await expect(layer(fetchRequest(), next)).rejects.toBeInstanceOf(UnusableResponseError);
    await expect(layer(fetchRequest(), next)).rejects.toBeInstanceOf(UnusableResponseError);
    await expect(layer(fetchRequest({ signal: gone.signal }), next)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await expect(layer(fetchRequest(), next)).resolves.toBe(ok);
    expect(calls.count).toBe(4);
    expect(await series(t, 'gateway_subgraph_breaker_state{subgraph="books"}')).toBe(0);
  });
});

describe('retry layer', () => {
  const fast = { retries: 2, initialDelayMs: 1, maxDelayMs: 2 };

  it('sends a query again after a connection failure, counting the retry', async () => {
    const t = telemetry();
    const { next, calls } = scripted([
      () => {
        throw refused();
      },
    ]);
    await expect(retryLayer('books', t.metrics, fast)(fetchRequest(), next)).resolves.toBe(ok);
    expect(calls.count).toBe(2);
    expect(await series(t, 'gateway_subgraph_retries_total{subgraph="books"}')).toBe(1);
  });

  it('never sends a mutation twice', async () => {
    const t = telemetry();
    const { next, calls } = scripted([
      () => {
        throw refused();
      },
    ]);
    await expect(retryLayer('books', t.metrics, fast)(fetchRequest({ mutation: true }), next)).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
    expect(calls.count).toBe(1);
  });

  it('does not retry a timeout, a 500 or an open breaker, and stops after its retries', async () => {
    const t = telemetry();
    const layer = retryLayer('books', t.metrics, fast);
    const timeout = Object.assign(new Error('timed out'), { name: 'TimeoutError' });
    for (const failure of [timeout, new UnusableResponseError(500), new BrokenCircuitError()]) {
      const { next, calls } = scripted([
        () => {
          throw failure;
        },
      ]);
      await expect(layer(fetchRequest(), next)).rejects.toBe(failure);
      expect(calls.count).toBe(1);
    }
    const always = scripted(
      Array.from({ length: 5 }, () => () => {
        throw refused();
      }),
    );
    await expect(layer(fetchRequest(), always.next)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(always.calls.count).toBe(3);
  });

  it('does not retry past the deadline', async () => {
    const t = telemetry();
    const { next, calls } = scripted([
      () => {
        throw refused();
      },
    ]);
    await expect(retryLayer('books', t.metrics, fast)(fetchRequest({ deadline: Date.now() - 1 }), next)).rejects.toBeInstanceOf(
      DeadlinePassedError,
    );
    expect(calls.count).toBe(1);
  });
});

describe('deadline at the transport', () => {
  function recordingTransport() {
    const sent: Array<{ headers: Record<string, string>; timeoutMs: number | undefined }> = [];
    const transport: Transport = {
      post: async (_url, _body, headers, _signal, timeoutMs) => {
        sent.push({ headers, timeoutMs });
        return { status: 200, cacheControl: undefined, contentType: 'application/json', body: { data: {} } };
      },
      close: async () => {},
    };
    return { transport, sent };
  }

  it("gives the subgraph the smaller of its timeout and what is left of the request's deadline, and says so in a header", async () => {
    const t = telemetry();
    const { transport, sent } = recordingTransport();
    const send = transportLayer({ subgraph: 'books', url: 'http://x/graphql', transport, metrics: t.metrics, timeoutMs: 10_000 });
    await send(fetchRequest({ deadline: Date.now() + 2_000 }));
    await send(fetchRequest());
    expect(sent[0]?.timeoutMs).toBeGreaterThan(1_900);
    expect(sent[0]?.timeoutMs).toBeLessThanOrEqual(2_000);
    expect(Number(sent[0]?.headers[TIMEOUT_HEADER])).toBe(Math.ceil(sent[0]?.timeoutMs ?? 0));
    expect(sent[1]?.timeoutMs).toBe(10_000);
  });

  it('sends nothing once the deadline has passed', async () => {
    const t = telemetry();
    const { transport, sent } = recordingTransport();
    const send = transportLayer({ subgraph: 'books', url: 'http://x/graphql', transport, metrics: t.metrics, timeoutMs: 10_000 });
    await expect(send(fetchRequest({ deadline: Date.now() - 5 }))).rejects.toBeInstanceOf(DeadlinePassedError);
    expect(sent).toHaveLength(0);
  });

  it('the real transport gives up after the per-request timeout', async () => {
    // A server that accepts connections and never answers: a frozen process.
    const frozen = createServer(() => {});
    await new Promise<void>((resolve) => frozen.listen(0, '127.0.0.1', resolve));
    const port = (frozen.address() as { port: number }).port;
    const transport = createTransport({ timeoutMs: 10_000 });
    try {
      const started = performance.now();
      await expect(transport.post(`http://127.0.0.1:${port}/graphql`, '{}', {}, undefined, 150)).rejects.toMatchObject({
        name: 'TimeoutError',
      });
      expect(performance.now() - started).toBeLessThan(2_000);
    } finally {
      await transport.close();
      frozen.close();
    }
  });
});

describe('a gateway in front of a hung subgraph', () => {
  let fixtures: Fixtures;
  let gw: GatewayUnderTest;
  beforeAll(async () => {
    fixtures = await startFixtures();
    gw = await startGateway({ sdl: composeFixture() }, fixtures, {
      subgraphTimeouts: { books: 300 },
      breaker: { failures: 3, halfOpenAfterMs: 60_000 },
      rateLimit: false,
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await fixtures?.stop();
  });

  it('answers the other subgraph, then fails the hung one fast once its breaker opens', async () => {
    let release = () => {};
    fixtures.control.booksHang = new Promise<void>((resolve) => {
      release = resolve;
    });
    try {
      const slow: number[] = [];
      for (let i = 0; i < 3; i++) {
        const started = performance.now();
        const res = await query(gw.url, '{ authors { name } book(id: "1") { title } }');
        slow.push(performance.now() - started);
        expect(res.body.data?.authors).toHaveLength(3);
        expect(res.body.errors?.[0]?.extensions).toMatchObject({ code: 'SUBGRAPH_UNAVAILABLE', serviceName: 'books' });
      }
      // Each waited for books' own timeout (300 ms, not the default 10 s) ...
      for (const ms of slow) expect(ms).toBeGreaterThanOrEqual(280);
      const started = performance.now();
      const res = await query(gw.url, '{ authors { name } book(id: "1") { title } }');
      // ... and now the breaker answers at once, naming why.
      expect(performance.now() - started).toBeLessThan(250);
      expect(res.body.data?.authors).toHaveLength(3);
      expect(res.body.errors?.[0]?.extensions).toMatchObject({
        code: 'SUBGRAPH_UNAVAILABLE',
        serviceName: 'books',
        reason: 'circuit open',
      });
      const metrics = await (await fetch(`${gw.url}/metrics`)).text();
      expect(seriesValue(metrics, 'gateway_subgraph_breaker_state{subgraph="books"}')).toBe(2);
      expect(seriesValue(metrics, 'gateway_subgraph_breaker_state{subgraph="authors"}')).toBe(0);
    } finally {
      release();
      fixtures.control.booksHang = undefined;
    }
  });
});

describe('rate limit per client', () => {
  let fixtures: Fixtures;
  let gw: GatewayUnderTest;
  beforeAll(async () => {
    fixtures = await startFixtures();
    gw = await startGateway({ sdl: composeFixture() }, fixtures, { rateLimit: { points: 3, durationS: 60 } });
  });
  afterAll(async () => {
    await gw?.stop();
    await fixtures?.stop();
  });

  it('answers 429 RATE_LIMITED with Retry-After past the budget, before any work, and /health still answers', async () => {
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await query(gw.url, '{ authors { name } }')).status);
    expect(statuses).toEqual([200, 200, 200]);
    const before = seriesValue(await (await fetch(`${gw.url}/metrics`)).text(), 'gateway_subgraph_requests_total{subgraph="authors"}');
    const limited = await query(gw.url, '{ authors { name } }');
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(50);
    expect(limited.body.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    expect((await fetch(`${gw.url}/health`)).status).toBe(200);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(seriesValue(metrics, 'gateway_subgraph_requests_total{subgraph="authors"}')).toBe(before);
    expect(seriesValue(metrics, 'http_requests_shed_total{service="gateway",reason="rate_limited"}')).toBe(1);
  });
});
