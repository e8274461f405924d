// The bench's proxy in front of every subgraph: every gateway's subgraph traffic passes through
// it, so subgraph requests and entity representations are counted the same way for all of them,
// and SUBGRAPH_DELAY_MS is simulated here (the subgraphs themselves are not changed).
//
// Environment (set by bench/run.ts):
//   BENCH_PROXY_ROUTES   JSON: [{ "name": "A.accounts", "port": 0, "target": "http://127.0.0.1:4001" }]
// Prints one JSON line on stdout once listening: { control: port, routes: { name: port } }.
// Control API (127.0.0.1 only): GET /counts, PUT /delay/<set>/<ms>, and an OTLP/HTTP sink for the
// traced gateway (ours-traced): POST /v1/traces reads and drops each export, GET /otlp counts them.
import { type IncomingHttpHeaders, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';

interface Route {
  name: string;
  port: number;
  target: string;
}

interface Counts {
  requests: number;
  representations: number;
}

/** Hop-by-hop headers are the proxy's own business on each side. */
const HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'host',
  'upgrade',
  'proxy-connection',
  'te',
  'trailer',
]);

function forwardable(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers)) {
    if (value === undefined || HOP.has(key)) continue;
    out[key] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

const TYPENAME = Buffer.from('"__typename"');

/**
 * Entity representations in a subgraph request: every variable that is a list of objects with a
 * `__typename` (Apollo's gateways send one `$representations`; a gateway that batches several
 * entity fetches into one request names one variable per fetch, and each counts).
 */
function representationsIn(body: Buffer): number {
  if (body.indexOf(TYPENAME) < 0) return 0;
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { variables?: Record<string, unknown> | null };
    let count = 0;
    for (const value of Object.values(parsed.variables ?? {})) {
      if (!Array.isArray(value)) continue;
      const list: unknown[] = value;
      if (
        list.every((item) => typeof item === 'object' && item !== null && typeof (item as { __typename?: unknown }).__typename === 'string')
      )
        count += list.length;
    }
    return count;
  } catch {
    return 0;
  }
}

/** The delay per subgraph set: the prefix of a route's name before the dot. */
const delays = new Map<string, number>();
const counts = new Map<string, Counts>();
/** What the OTLP sink received: export requests and their bytes. */
const otlp = { requests: 0, bytes: 0 };

function listenRoute(route: Route): Promise<number> {
  const target = new URL(route.target);
  const pool = new Pool(target.origin, { connections: 256, keepAliveTimeout: 60_000, pipelining: 1 });
  const set = route.name.split('.')[0] ?? route.name;
  const tally: Counts = { requests: 0, representations: 0 };
  counts.set(route.name, tally);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const graphql = req.method === 'POST';
      if (graphql) {
        tally.requests += 1;
        tally.representations += representationsIn(body);
      }
      const forward = () => {
        pool
          .request({
            path: req.url ?? '/',
            method: req.method ?? 'GET',
            headers: forwardable(req.headers),
            body: graphql ? body : null,
          })
          .then(async (upstream) => {
            const payload = Buffer.from(await upstream.body.arrayBuffer());
            const headers: Record<string, string | string[]> = {};
            for (const [key, value] of Object.entries(upstream.headers)) {
              if (value !== undefined && !HOP.has(key)) headers[key] = value;
            }
            headers['content-length'] = String(payload.length);
            res.writeHead(upstream.statusCode, headers);
            res.end(payload);
          })
          .catch((err: unknown) => {
            res.writeHead(502, { 'content-type': 'text/plain' });
            res.end(`bench proxy: ${err instanceof Error ? err.message : String(err)}`);
          });
      };
      const delay = delays.get(set) ?? 0;
      if (delay > 0) setTimeout(forward, delay);
      else forward();
    });
  });
  // Longer than the gateways' pools keep idle sockets, so they never reuse a closed one.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 121_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(route.port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

async function main() {
  const routes = JSON.parse(process.env.BENCH_PROXY_ROUTES ?? '[]') as Route[];
  if (!Array.isArray(routes) || routes.length === 0)
    throw new Error(`BENCH_PROXY_ROUTES must list routes; received ${process.env.BENCH_PROXY_ROUTES}`);
  const ports: Record<string, number> = {};
  for (const route of routes) ports[route.name] = await listenRoute(route);

  const control = createServer((req, res) => {
    const delay = /^\/delay\/([^/]+)\/(\d+)$/.exec(req.url ?? '');
    if (req.method === 'PUT' && delay) {
      delays.set(delay[1] as string, Number(delay[2]));
      res.writeHead(204);
      res.end();
      return;
    }
    if (req.method === 'POST' && req.url === '/v1/traces') {
      // The exporter's batches are read whole (as a collector would) and dropped; an empty body is
      // an ExportTraceServiceResponse meaning "all accepted".
      req.on('data', (chunk: Buffer) => (otlp.bytes += chunk.length));
      req.on('end', () => {
        otlp.requests++;
        res.writeHead(200, { 'content-type': String(req.headers['content-type'] ?? 'application/x-protobuf') });
        res.end();
      });
      return;
    }
    if (req.url === '/otlp') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(otlp));
      return;
    }
    if (req.url === '/counts') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(Object.fromEntries(counts)));
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve));
  process.stdout.write(`${JSON.stringify({ control: (control.address() as AddressInfo).port, routes: ports })}\n`);
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
}

main().catch((err: unknown) => {
  process.stderr.write(`bench proxy failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
