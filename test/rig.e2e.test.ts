// Issue #19's acceptance: the services mode across test hosts (network namespaces on a bridge,
// stack/src/hosts.ts), two gateway replicas and two products replicas behind HAProxy, the other
// subgraphs on hosts of their own, the supergraph polled from a registry host. A steady load goes
// through HAProxy while replicas are killed (SIGKILL) and stopped (SIGTERM, a drain) and
// restarted, and a supergraph with one more field is rolled out; clients see no error. Needs
// root, iproute2 and HAProxy (.ci/run installs them); cleans up after itself, also on failure.
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type Rig,
  balancerConfig,
  formatRigReport,
  hostsUnavailable,
  runHaproxy,
  runRigScenario,
  startRig,
  stopChild,
  rigRollout,
  waitForListening,
} from '@shop/stack';
import { freePort } from '@shop/server';
import { requireService, services, tempPostgres } from '@shop/testing';

jest.setTimeout(300_000);

describe('the load balancer', () => {
  /** A replica that is ready but dies on every request (its socket closed, no answer), counting them. */
  async function dyingReplica(): Promise<{ address: string; bodies: string[]; close: () => Promise<void> }> {
    const bodies: string[] = [];
    const server = createServer((req, res) => {
      if (req.url === '/ready') return void res.writeHead(200).end('ready');
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        bodies.push(body);
        res.socket?.destroy();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
      bodies,
      close: () => new Promise((resolve) => server.close(() => resolve())),
    };
  }

  it('sends a query that lost its replica to another, and never a mutation or a document sent by id', async () => {
    const reason = hostsUnavailable();
    if (reason) throw new Error(reason);
    const replicas = [await dyingReplica(), await dyingReplica()];
    const port = await freePort();
    const haproxy = runHaproxy(
      balancerConfig({
        services: [
          { name: 'gateway', bind: `127.0.0.1:${port}`, servers: replicas.map((r, i) => ({ name: `r${i}`, address: r.address })) },
        ],
        checkIntervalMs: 100,
      }),
      `retry-test-${port}`,
      'ignore',
    );
    try {
      await waitForListening('127.0.0.1', [port], haproxy);
      /** One request on a connection of its own (a 502 may close the balancer's side of a kept-alive one). */
      const call = (method: 'GET' | 'POST', url: string, body?: unknown) =>
        new Promise<number>((resolve, reject) => {
          const text = body === undefined ? undefined : JSON.stringify(body);
          const req = request(
            `http://127.0.0.1:${port}${url}`,
            {
              method,
              agent: false,
              headers: text ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } : {},
            },
            (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            },
          );
          req.on('error', reject);
          req.end(text);
        });
      const post = (body: unknown) => call('POST', '/graphql', body);
      const attempts = () => replicas.reduce((n, r) => n + r.bodies.length, 0);
      /** How many times the balancer sent one request: tried, then retried twice (`retries 2`) when it may be. */
      const sent = async (request: () => Promise<number>) => {
        const before = attempts();
        expect(await request()).toBe(502);
        return attempts() - before;
      };

      // Queries: sent again, the retry going to the other replica.
      expect(await sent(() => post({ query: '{ topProducts { id } }' }))).toBe(3);
      expect(replicas.map((r) => r.bodies.length).every((n) => n > 0)).toBe(true);
      expect(await sent(() => post({ query: 'query Home($n: Int) { topProducts(first: $n) { id } }', variables: { n: 2 } }))).toBe(3);
      expect(await sent(() => call('GET', '/graphql?query=%7B__typename%7D'))).toBe(3);
      // Sent once, whatever happened to it; the client hears 502 and decides: a mutation ...
      expect(await sent(() => post({ query: 'mutation { updateProduct(id: "p1", input: { price: 1 }) { id } }' }))).toBe(1);
      // ... a query that names a mutation somewhere (the balancer cannot tell: the safe side) ...
      expect(await sent(() => post({ query: 'query { mutationLog { id } }' }))).toBe(1);
      // ... and a document sent by id only: it may be a mutation.
      expect(await sent(() => post({ extensions: { persistedQuery: { version: 1, sha256Hash: 'a'.repeat(64) } } }))).toBe(1);
      expect(await sent(() => post({ documentId: 'sha256:' + 'b'.repeat(64) }))).toBe(1);
    } finally {
      await stopChild(haproxy, 2000);
      await Promise.all(replicas.map((r) => r.close()));
    }
  });
});

describe('the services mode across hosts, behind HAProxy', () => {
  let rig: Rig | undefined;
  const databases = ['accounts', 'products', 'inventory', 'reviews', 'orders', 'payments'].map(
    (s) => [s, tempPostgres(`rig_${s}`)] as const,
  );
  const { previous, next } = rigRollout();

  beforeAll(async () => {
    const reason = hostsUnavailable();
    if (reason) throw new Error(reason);
    await Promise.all([requireService('postgres'), requireService('redis'), requireService('amqp')]);
    const started = Date.now();
    rig = await startRig({
      databaseUrl: (name) => databases.find(([s]) => s === name)?.[1].url ?? '',
      redisUrl: services.redis,
      amqpUrl: services.amqp,
      supergraphConfig: previous.file,
      stdio: process.env.RIG_DEBUG ? 'inherit' : 'ignore',
    });
    console.log(`rig: ${rig.network.hosts.size} hosts ready in ${Date.now() - started} ms`);
  }, 300_000);

  afterAll(async () => {
    await rig?.close();
    previous.remove();
    await Promise.all(databases.map(([, db]) => db.drop()));
  });

  it('loses no query while replicas die and restart and a new supergraph rolls out', async () => {
    if (!rig) throw new Error('the rig did not start');
    // Every process listens on its host's own address: none is reachable on this machine's loopback.
    for (const replica of rig.replicas.values()) expect(new URL(replica.baseUrl).hostname).toBe(replica.host.ip);

    const report = await runRigScenario(rig, next);
    console.log(formatRigReport(report));

    expect(report.brokenPublishRefused).toBe(true);
    expect(Object.keys(report.switchMs).sort()).toEqual(['gateway-1', 'gateway-2']);
    // Polled every second (jittered by a tenth): each replica switched within two intervals.
    for (const ms of Object.values(report.switchMs)) expect(ms).toBeLessThan(2500);
    for (const event of [report.baseline, ...report.events]) {
      expect(event.requests).toBeGreaterThan(0);
      expect({ event: event.event, errors: event.errors, samples: event.errorSamples }).toEqual({
        event: event.event,
        errors: 0,
        samples: [],
      });
    }
    expect(report.totalErrors).toBe(0);
    // A drained replica lost nothing even before the balancer's retries: it left the rotation
    // (/ready said draining) while it still answered. Without the drain it stops accepting at
    // once, and what HAProxy sent it meanwhile is retried (and counted here): so it was for the
    // subgraphs, whose Apollo Server exited on the signal before the drain (process-drain.e2e).
    for (const name of ['gateway-2', 'products-2'])
      expect({ name, retried: report.events.find((e) => e.event.startsWith(`SIGTERM of ${name}`))?.retried }).toEqual({ name, retried: 0 });
  });
});
