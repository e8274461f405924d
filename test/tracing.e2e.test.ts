// OpenTelemetry traces from the client's request to the stores and through the broker, in both
// modes. The instrumentations patch modules as Node's require loads them, which jest's module
// registry bypasses, so the traced processes are children:
// - embedded: one process (SQLite, the in-process bus) with an in-memory span exporter
//   (test/fixtures/tracing/embedded.ts);
// - services: every process exports over OTLP/HTTP (JSON) into a receiver this test runs, through
//   real PostgreSQL and RabbitMQ.
// Both run the same scenario and checks (test/lib/traces.ts).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { type IncomingMessage, type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect } from 'amqplib';
import { DEV_PASSWORD } from '@shop/accounts';
import { SEED_ADMIN } from '@shop/seed';
import { REPO_ROOT, type Services, startServices } from '@shop/stack';
import { graphqlClient, requireService, services as real, signIn, tempPostgres } from '@shop/testing';
import {
  type SpanRecord,
  type TracedRun,
  TRACED_SUBGRAPHS,
  checkMutationTrace,
  checkQueryTrace,
  rootOf,
  runTracedScenario,
} from './lib/traces';

jest.setTimeout(180_000);

describe('tracing, embedded mode (in-memory exporter)', () => {
  let dir: string;
  let run: TracedRun;
  let logLines: Array<Record<string, unknown>>;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'shop-trace-'));
    const out = path.join(dir, 'run.json');
    const child = spawn(process.execPath, ['--import', 'tsx', path.join('test', 'fixtures', 'tracing', 'embedded.ts'), out], {
      cwd: REPO_ROOT,
      // The fixture's exporter is its own: nothing in the environment may add another.
      env: { ...process.env, OTEL_TRACES_EXPORTER: '', OTEL_EXPORTER_OTLP_ENDPOINT: '' },
      stdio: ['ignore', 'inherit', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    if (code !== 0) throw new Error(`the traced embedded stack failed (exit ${code}): ${stderr.slice(-2000)}`);
    run = JSON.parse(readFileSync(out, 'utf8')) as TracedRun;
    logLines = readFileSync(`${out}.log`, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  });
  afterAll(() => (dir ? rm(dir, { recursive: true, force: true }) : undefined));

  it('gives a query one trace: the gateway request as root, a child per subgraph fetch, the SQL below each subgraph', () => {
    const fetched = checkQueryTrace(run.spans, run.queryRequestId);
    expect([...new Set(fetched)].sort()).toEqual([...TRACED_SUBGRAPHS].sort());
    const sql = run.spans.filter((s) => s.attributes['db.system.name'] === 'sqlite');
    expect(sql.length).toBeGreaterThan(0);
  });

  it("follows a mutation through the outbox, the relay's publish and both consumers in the same trace", () => {
    checkMutationTrace(run.spans, run.mutationRequestId);
  });

  it('writes trace_id and span_id on every log line of a traced request', () => {
    const root = rootOf(run.spans, run.queryRequestId)!;
    const ofRequest = logLines.filter((l) => l.requestId === run.queryRequestId);
    // The gateway's and every subgraph's request line (debug): at least one per process part.
    expect(ofRequest.length).toBeGreaterThanOrEqual(1 + TRACED_SUBGRAPHS.length);
    const spanIds = new Set(run.spans.filter((s) => s.traceId === root.traceId).map((s) => s.spanId));
    for (const line of ofRequest) {
      expect(line.trace_id).toBe(root.traceId);
      expect(spanIds.has(String(line.span_id))).toBe(true);
    }
  });
});

/** A span of an OTLP/JSON export request (`ExportTraceServiceRequest`), as much as the checks read. */
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind?: number;
  attributes?: OtlpAttribute[];
  links?: Array<{ traceId: string; spanId: string }>;
  /** STATUS_CODE_ERROR is 2. */
  status?: { code?: number };
}
interface OtlpAttribute {
  key: string;
  value: { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean };
}
interface OtlpExport {
  resourceSpans?: Array<{ resource?: { attributes?: OtlpAttribute[] }; scopeSpans?: Array<{ spans?: OtlpSpan[] }> }>;
}

const OTLP_KINDS: Record<number, SpanRecord['kind']> = { 1: 'internal', 2: 'server', 3: 'client', 4: 'producer', 5: 'consumer' };

function attributesOf(list: OtlpAttribute[] | undefined): SpanRecord['attributes'] {
  const out: SpanRecord['attributes'] = {};
  for (const { key, value } of list ?? []) {
    const v =
      value.stringValue ?? value.boolValue ?? value.doubleValue ?? (value.intValue === undefined ? undefined : Number(value.intValue));
    if (v !== undefined) out[key] = v;
  }
  return out;
}

/** A small OTLP/HTTP receiver (`POST /v1/traces`, JSON encoding): what every process exported, as records. */
async function otlpReceiver(): Promise<{ url: string; spans: SpanRecord[]; requests: number; close(): Promise<void> }> {
  const received = { spans: [] as SpanRecord[], requests: 0 };
  const read = async (req: IncomingMessage) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  };
  const server: Server = createServer((req, res) => {
    void read(req).then((body) => {
      if (req.method !== 'POST' || req.url !== '/v1/traces' || !String(req.headers['content-type']).startsWith('application/json')) {
        res.writeHead(415).end();
        return;
      }
      received.requests++;
      const parsed = JSON.parse(body) as OtlpExport;
      for (const rs of parsed.resourceSpans ?? []) {
        const service = String(attributesOf(rs.resource?.attributes)['service.name'] ?? '');
        for (const ss of rs.scopeSpans ?? [])
          for (const s of ss.spans ?? [])
            received.spans.push({
              traceId: s.traceId,
              spanId: s.spanId,
              parentSpanId: s.parentSpanId ?? '',
              name: s.name,
              kind: OTLP_KINDS[s.kind ?? 1] ?? 'internal',
              service,
              attributes: attributesOf(s.attributes),
              links: (s.links ?? []).map((l) => ({ traceId: l.traceId, spanId: l.spanId })),
              failed: s.status?.code === 2,
            });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get spans() {
      return received.spans;
    },
    get requests() {
      return received.requests;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('tracing, services mode (OTLP/HTTP into a receiver, PostgreSQL, RabbitMQ)', () => {
  const names = ['accounts', 'products', 'inventory', 'reviews'] as const;
  const databases = Object.fromEntries(names.map((n) => [n, tempPostgres(`trace_${n}`)])) as Record<
    (typeof names)[number],
    { url: string; drop(): Promise<void> }
  >;
  const namespace = `t${randomBytes(4).toString('hex')}`;
  let receiver: Awaited<ReturnType<typeof otlpReceiver>>;
  let services: Services;
  let run: TracedRun;

  beforeAll(async () => {
    await requireService('postgres');
    await requireService('amqp');
    receiver = await otlpReceiver();
    services = await startServices({
      only: [...names],
      ports: { gateway: 0, accounts: 0, products: 0, inventory: 0, reviews: 0 },
      databaseUrl: (name) => databases[name as (typeof names)[number]].url,
      env: {
        LOG_LEVEL: 'warn',
        SUPERGRAPH_WATCH: 'false',
        AMQP_NAMESPACE: namespace,
        SEED_USERS: '20',
        SEED_PRODUCTS: '20',
        SEED_REVIEWS: '60',
        // The OpenTelemetry SDK's own variables, as an operator sets them.
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_BSP_SCHEDULE_DELAY: '100',
      },
      stdio: 'inherit',
    });
    const admin = { authorization: `Bearer ${await signIn(services.gatewayUrl, SEED_ADMIN.email, DEV_PASSWORD)}` };
    run = await runTracedScenario(graphqlClient(services.gatewayUrl), admin, async () => receiver.spans);
  });

  afterAll(async () => {
    await services?.stop();
    await receiver?.close();
    await Promise.all(Object.values(databases).map((d) => d.drop()));
    const conn = await connect(real.amqp);
    const ch = await conn.createChannel();
    for (const q of ['accounts', 'products', 'inventory', 'reviews', 'gateway']) {
      await ch.deleteQueue(`${namespace}.${q}`).catch(() => undefined);
      await ch.deleteQueue(`${namespace}.${q}.dlq`).catch(() => undefined);
    }
    await ch.deleteExchange(`${namespace}.events`).catch(() => undefined);
    await conn.close();
  });

  it('gives a query one trace across five processes, with the SQL on PostgreSQL below each subgraph', () => {
    const fetched = checkQueryTrace(run.spans, run.queryRequestId);
    expect([...new Set(fetched)].sort()).toEqual([...TRACED_SUBGRAPHS].sort());
    const root = rootOf(run.spans, run.queryRequestId)!;
    const inTrace = run.spans.filter((s) => s.traceId === root.traceId);
    // Each process exported its own part under its own service.name.
    expect([...new Set(inTrace.map((s) => s.service))].sort()).toEqual(['gateway', ...TRACED_SUBGRAPHS].sort());
    expect(inTrace.some((s) => s.attributes['db.system'] === 'postgresql' || s.attributes['db.system.name'] === 'postgresql')).toBe(true);
  });

  it('follows a mutation through the outbox, RabbitMQ and both consumers in the same trace', () => {
    checkMutationTrace(run.spans, run.mutationRequestId);
    const root = rootOf(run.spans, run.mutationRequestId)!;
    // amqplib's own instrumentation joins in: the broker's publish and delivery are in the trace.
    const amqp = run.spans.filter((s) => s.traceId === root.traceId && s.attributes['messaging.system'] === 'rabbitmq');
    expect(amqp.map((s) => s.kind)).toEqual(expect.arrayContaining(['producer', 'consumer']));
  });

  it("names the trace in the gateway's latency histogram (an OpenMetrics exemplar)", async () => {
    const res = await fetch(services.gatewayUrl.replace(/\/graphql$/, '/metrics'));
    expect(res.headers.get('content-type')).toContain('application/openmetrics-text');
    const text = await res.text();
    const exemplars = [
      ...text.matchAll(
        /^http_request_duration_seconds_bucket\{[^}]*route="graphql"[^}]*\} \d+ # \{trace_id="([0-9a-f]{32})",span_id="([0-9a-f]{16})"\}/gm,
      ),
    ];
    expect(exemplars.length).toBeGreaterThan(0);
    const traced = new Set(receiver.spans.map((s) => s.traceId));
    for (const [, traceId] of exemplars) expect(traced.has(traceId!)).toBe(true);
  });
});
