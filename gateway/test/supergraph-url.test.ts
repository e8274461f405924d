// A supergraph published at a URL (SUPERGRAPH_URL): fetched at start, then polled with a
// conditional GET. A new one is served within the interval with no failed request; one that does
// not load, an error status, a frozen or oversized answer are refused while the old one serves.
import { createHash } from 'node:crypto';
import { type IncomingHttpHeaders, type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { ConfigError } from '@shop/config';
import { MAX_SUPERGRAPH_BYTES, createGateway, loadGatewayConfig, supergraphSha } from '../src/gateway';
import {
  type Fixtures,
  type GatewayUnderTest,
  type TempDir,
  composeFixture,
  metricsText,
  query,
  seriesValue,
  silentTelemetry,
  startFixtures,
  startGateway,
  tempDir,
  waitFor,
} from './harness';

/** A registry the test controls: what it serves, how, and every request it got. */
interface Registry {
  url: string;
  text: string;
  /** 'ok': 200 or 304 by ETag; 'error': 503; 'frozen': never answers; 'huge': a body past the limit without Content-Length. */
  mode: 'ok' | 'error' | 'frozen' | 'huge';
  requests: Array<{ headers: IncomingHttpHeaders; status: number }>;
  close(): Promise<void>;
}

async function startRegistry(text: string): Promise<Registry> {
  const frozen = new Set<() => void>();
  const registry: Registry = {
    url: '',
    text,
    mode: 'ok',
    requests: [],
    close: async () => {
      for (const release of frozen) release();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((req, res) => {
    const record = (status: number) => registry.requests.push({ headers: req.headers, status });
    if (registry.mode === 'frozen') {
      record(0);
      frozen.add(() => res.destroy());
      return;
    }
    if (registry.mode === 'error') {
      record(503);
      return void res.writeHead(503).end('down');
    }
    if (registry.mode === 'huge') {
      record(200);
      res.writeHead(200, { 'content-type': 'text/plain' });
      const chunk = Buffer.alloc(1024 * 1024, 'a');
      let sent = 0;
      const more = () => {
        while (sent <= MAX_SUPERGRAPH_BYTES && res.write(chunk)) sent += chunk.length;
        if (sent > MAX_SUPERGRAPH_BYTES) res.end();
        else res.once('drain', more);
      };
      res.on('error', () => undefined);
      return more();
    }
    const etag = `"${createHash('sha256').update(registry.text).digest('hex')}"`;
    if (req.headers['if-none-match'] === etag) {
      record(304);
      return void res.writeHead(304, { etag }).end();
    }
    record(200);
    res.writeHead(200, { etag, 'content-type': 'text/plain' }).end(registry.text);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  registry.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/supergraph.graphql`;
  return registry;
}

const BIO = '{ authors { name bio } }';
const BOOKS = '{ books { title author { name } } }';

let fixtures: Fixtures;
let registry: Registry;
let gw: GatewayUnderTest;

const reloads = async (result: 'success' | 'failure') =>
  seriesValue(await metricsText(gw.url), `gateway_supergraph_reloads_total{result="${result}"}`);
const serving = async (sdl: string) => seriesValue(await metricsText(gw.url), `gateway_supergraph_info{sha256="${supergraphSha(sdl)}"}`);
const bioValidates = async () => (await query(gw.url, BIO)).body.errors === undefined;
/** Waits for `count` more requests to reach the registry: polls that have happened. */
const polls = async (count: number) => {
  const until = registry.requests.length + count;
  await waitFor(`${count} polls`, async () => registry.requests.length >= until);
};

beforeAll(async () => {
  fixtures = await startFixtures();
  registry = await startRegistry(composeFixture({ withBio: false }));
  gw = await startGateway({ url: registry.url }, fixtures, { pollIntervalMs: 50, subgraphTimeoutMs: 500 });
});

afterAll(async () => {
  await gw?.stop();
  await registry?.close();
  await fixtures?.stop();
});

describe('a supergraph at a URL', () => {
  it('is served, and an unchanged one is asked for with its ETag and costs a 304', async () => {
    expect((await query(gw.url, BOOKS)).body.errors).toBeUndefined();
    await polls(3);
    const [first, ...later] = registry.requests;
    expect(first).toMatchObject({ status: 200 });
    expect(first?.headers['if-none-match']).toBeUndefined();
    expect(later.length).toBeGreaterThanOrEqual(3);
    for (const r of later) {
      expect(r.status).toBe(304);
      expect(r.headers['if-none-match']).toBe(`"${createHash('sha256').update(registry.text).digest('hex')}"`);
    }
    expect(await reloads('success')).toBe(0);
    expect(await serving(registry.text)).toBe(1);
  });

  it('is replaced within the poll interval when a new one is published, with no failed request', async () => {
    expect(await bioValidates()).toBe(false);
    fixtures.control.booksLatencyMs = 10;
    const failed: unknown[] = [];
    let count = 0;
    let done = false;
    const client = async () => {
      while (!done) {
        const { status, body } = await query(gw.url, BOOKS);
        count++;
        if (status !== 200 || body.errors) failed.push(body);
      }
    };
    const clients = Array.from({ length: 4 }, client);
    try {
      await waitFor('requests before the publish', async () => count >= 8);
      const before = registry.text;
      registry.text = composeFixture({ withBio: true });
      const published = performance.now();
      await waitFor('the new field to validate', bioValidates);
      // Polled every 50 ms (jittered by a tenth), loaded and swapped: well within a second here.
      expect(performance.now() - published).toBeLessThan(2000);
      const countAtSwap = count;
      await waitFor('requests after the swap', async () => count >= countAtSwap + 8);
      expect(await serving(registry.text)).toBe(1);
      expect(await serving(before)).toBe(0);
    } finally {
      done = true;
      await Promise.all(clients);
      fixtures.control.booksLatencyMs = 0;
    }
    expect(failed).toEqual([]);
    expect(await reloads('success')).toBe(1);
  });

  it.each([
    ['a text that is not a supergraph', () => void (registry.text = 'this is not a supergraph')],
    ['GraphQL that is no supergraph', () => void (registry.text = 'type Query { authors: [String] }')],
    ['an error status', () => void (registry.mode = 'error')],
    ['no answer (a frozen registry)', () => void (registry.mode = 'frozen')],
    ['a body past the size limit', () => void (registry.mode = 'huge')],
  ])(
    'refuses %s and keeps serving the one it has',
    async (_what, breakIt) => {
      const good = registry.text;
      const failures = await reloads('failure');
      breakIt();
      try {
        await waitFor('a failed reload', async () => (await reloads('failure')) > failures, 15_000);
        expect(await bioValidates()).toBe(true);
        expect((await query(gw.url, BOOKS)).body.errors).toBeUndefined();
        expect(await serving(good)).toBe(1);
      } finally {
        registry.mode = 'ok';
        registry.text = good;
      }
      // Once the registry is well again, polling goes on (the same supergraph: nothing to reload).
      await polls(2);
      expect(registry.requests.at(-1)?.status).toBe(304);
    },
    30_000,
  );

  it('validates a rejected supergraph once, not at every poll that hands it back', async () => {
    const good = registry.text;
    const failures = await reloads('failure');
    // Not a text refused before: that one would be skipped from the start.
    registry.text = 'type Query { books: [Int] }';
    try {
      await waitFor('the rejection', async () => (await reloads('failure')) > failures);
      await polls(5);
      expect(registry.requests.slice(-5).map((r) => r.status)).toEqual([304, 304, 304, 304, 304]);
      expect(await reloads('failure')).toBe(failures + 1);
    } finally {
      registry.text = good;
    }
    await polls(2);
    expect(await serving(good)).toBe(1);
  });
});

describe('starting from a URL', () => {
  it('fails when the registry does not answer with a supergraph, naming the URL', async () => {
    const down = await startRegistry('');
    down.mode = 'error';
    try {
      const started = performance.now();
      await expect(
        createGateway({ telemetry: silentTelemetry('gateway'), supergraph: { url: down.url }, supergraphStartupTimeoutMs: 1000 }),
      ).rejects.toThrow(`Cannot fetch supergraph ${down.url}: HTTP 503`);
      // Asked again with growing pauses (250, 500 ms...) until the start-up timeout: 3 or 4 times in a second.
      expect(performance.now() - started).toBeGreaterThanOrEqual(900);
      expect(down.requests.length).toBeGreaterThanOrEqual(3);
    } finally {
      await down.close();
    }
  });

  it('waits for a registry that comes back within the start-up timeout', async () => {
    const late = await startRegistry(composeFixture({ withBio: false }));
    late.mode = 'error';
    try {
      const starting = createGateway({
        telemetry: silentTelemetry('gateway'),
        supergraph: { url: late.url },
        subgraphUrlOverrides: fixtures.urls,
        supergraphStartupTimeoutMs: 10_000,
      });
      await waitFor('two refused start-up fetches', async () => late.requests.length >= 2);
      late.mode = 'ok';
      const gateway = await starting;
      expect(gateway.supergraphSdl()).toBe(late.text);
      await gateway.stop();
    } finally {
      await late.close();
    }
  });
});

describe('SUPERGRAPH_URL and SUPERGRAPH_POLL_INTERVAL_MS', () => {
  it('poll every 10 s by default, and only one supergraph source may be set', () => {
    expect(loadGatewayConfig({ SUPERGRAPH_URL: 'http://registry:4100/supergraph.graphql' })).toMatchObject({
      supergraph: { url: 'http://registry:4100/supergraph.graphql' },
      pollIntervalMs: 10_000,
    });
    expect(loadGatewayConfig({ SUPERGRAPH_URL: 'https://r/s', SUPERGRAPH_POLL_INTERVAL_MS: '2500' }).pollIntervalMs).toBe(2500);
    expect(loadGatewayConfig({ SUPERGRAPH_PATH: '/etc/shop/supergraph.graphql' }).pollIntervalMs).toBe(0);
    expect(() => loadGatewayConfig({ SUPERGRAPH_URL: 'ftp://r/s' })).toThrow(ConfigError);
    expect(() => loadGatewayConfig({ SUPERGRAPH_URL: 'http://r/s', SUPERGRAPH_PATH: 'x.graphql' })).toThrow(
      /SUPERGRAPH_PATH and SUPERGRAPH_URL are set; set only one/,
    );
  });
});

describe('a supergraph file, polled', () => {
  let dir: TempDir;
  let polled: GatewayUnderTest;
  afterAll(async () => {
    await polled?.stop();
    await dir?.remove();
  });

  it('is reloaded by polling where file events do not arrive (watching off)', async () => {
    dir = await tempDir();
    const file = await dir.write('supergraph.graphql', composeFixture({ withBio: false }));
    polled = await startGateway({ path: file }, fixtures, { watch: false, pollIntervalMs: 50 });
    await writeFile(file, composeFixture({ withBio: true }));
    await waitFor('the new field', async () => (await query(polled.url, BIO)).body.errors === undefined);
  });
});
