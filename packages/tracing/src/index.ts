// OpenTelemetry tracing for every process: the Node SDK with the maintained instrumentations
// (http, undici, pg, @redis/client, amqplib, pino), configured by the `OTEL_*` variables as the
// specification names them. Off unless `OTEL_EXPORTER_OTLP_ENDPOINT`,
// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_TRACES_EXPORTER` is set: then the SDK is not even
// loaded, no module is patched, and the spans this project writes itself (see `tracer` below) are
// skipped behind one boolean, so the default run pays nothing.
//
// This module must load before pg, redis, amqplib, pino and http: the instrumentations patch a
// module when it is required after them. So it imports nothing but the API, and each process's
// entry starts tracing first and loads the rest afterwards (`startTraced`).
import {
  type Attributes,
  type Context,
  type Link,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  type SpanOptions,
  SpanStatusCode,
  type TextMapGetter,
  type Tracer,
  context,
  propagation,
  trace,
} from '@opentelemetry/api';
import type { NodeSDK } from '@opentelemetry/sdk-node';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';

/** The tracer of this project's own spans; a no-op until {@link startTracing} registers the SDK. */
export const tracer: Tracer = trace.getTracer('@shop/platform');

let enabled = false;
/** The SDK this process started, if any. */
let running: NodeSDK | undefined;

/** Whether this process records traces: the project's own spans are written only then. */
export function tracingEnabled(): boolean {
  return enabled;
}

/** Whether the environment asks for traces (the OpenTelemetry variables that name an exporter). */
export function tracingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED === 'true') return false;
  const exporter = env.OTEL_TRACES_EXPORTER?.trim();
  if (exporter) return exporter !== 'none';
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

export interface TracingOptions {
  /** `service.name` of the process's resource, unless `OTEL_SERVICE_NAME` names it. */
  service: string;
  /** @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Where spans go instead of the exporter the environment names (tests: an in-memory exporter). */
  spanProcessors?: SpanProcessor[];
}

export interface Tracing {
  /** Exports what is buffered and stops the SDK. */
  shutdown(): Promise<void>;
}

/** Paths whose requests are not traced: probes and scrapes would bury the requests that matter. */
const UNTRACED_PATHS = new Set(['/health', '/ready', '/metrics']);

/**
 * Starts the OpenTelemetry Node SDK when the environment asks for traces (or `spanProcessors` are
 * given); `undefined` otherwise. Call it once, before the modules it instruments are loaded.
 */
export function startTracing(options: TracingOptions): Tracing | undefined {
  const env = options.env ?? process.env;
  if (!options.spanProcessors && !tracingRequested(env)) return undefined;
  // Loaded only when asked for: the SDK and its instrumentations cost start-up time and memory.
  // `require`, not `import()`: the SDK must be running before this function returns, since the
  // caller loads the instrumented modules right after.
  const { NodeSDK: SDK } = require('@opentelemetry/sdk-node') as typeof import('@opentelemetry/sdk-node');
  const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http') as typeof import('@opentelemetry/instrumentation-http');
  const { UndiciInstrumentation } =
    require('@opentelemetry/instrumentation-undici') as typeof import('@opentelemetry/instrumentation-undici');
  const { PgInstrumentation } = require('@opentelemetry/instrumentation-pg') as typeof import('@opentelemetry/instrumentation-pg');
  const { RedisInstrumentation } = require('@opentelemetry/instrumentation-redis') as typeof import('@opentelemetry/instrumentation-redis');
  const { AmqplibInstrumentation } =
    require('@opentelemetry/instrumentation-amqplib') as typeof import('@opentelemetry/instrumentation-amqplib');
  const { PinoInstrumentation } = require('@opentelemetry/instrumentation-pino') as typeof import('@opentelemetry/instrumentation-pino');
  const { W3CTraceContextPropagator } = require('@opentelemetry/core') as typeof import('@opentelemetry/core');
  const sdk: NodeSDK = new SDK({
    serviceName: env.OTEL_SERVICE_NAME || options.service,
    ...(options.spanProcessors ? { spanProcessors: options.spanProcessors } : {}),
    // Metrics stay with Prometheus (/metrics) and logs with pino on stdout; only traces go out.
    // W3C trace context only, unless OTEL_PROPAGATORS names others: the SDK's default adds W3C
    // baggage, which would carry whatever a client put in its `baggage` header to every subgraph.
    ...(env.OTEL_PROPAGATORS ? {} : { textMapPropagator: new W3CTraceContextPropagator() }),
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (req) => UNTRACED_PATHS.has((req.url ?? '').split('?', 1)[0] ?? ''),
        requireParentforOutgoingSpans: true,
      }),
      // The gateway's calls to subgraphs. Calls outside a trace (readiness polls, a JWKS refresh)
      // would each start a trace of their own and make a caller's request a child of them.
      new UndiciInstrumentation({ requireParentforSpans: true }),
      // Statements outside a trace (the relay's polls every 50 ms) would each be a trace of one span.
      new PgInstrumentation({ requireParentSpan: true }),
      new RedisInstrumentation({ requireParentSpan: true }),
      new AmqplibInstrumentation(),
      // trace_id, span_id and trace_flags on every log line written inside a span; logs stay on stdout.
      new PinoInstrumentation({ disableLogSending: true }),
    ],
  });
  sdk.start();
  enabled = true;
  running = sdk;
  return { shutdown: shutdownTracing };
}

/**
 * A process's entry point: starts tracing when the environment asks, then loads and runs the
 * process (`load` imports the modules tracing instruments, so they load after it).
 */
export function startTraced(service: string, load: () => Promise<unknown>): void {
  startTracing({ service });
  load().catch((err: unknown) => {
    process.stderr.write(`Start-up failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}

/** Exports the spans still buffered and stops the SDK (a process's last step before exit); a no-op with tracing off. */
export async function shutdownTracing(): Promise<void> {
  const sdk = running;
  running = undefined;
  enabled = false;
  if (!sdk) return;
  // Bounded: an unreachable collector must not hold the exit (the exporter's own timeout is 10 s).
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([sdk.shutdown(), new Promise<void>((resolve) => (timer = setTimeout(resolve, 3_000)))]);
  clearTimeout(timer);
}

/**
 * Runs `fn` in a span of this project's own when tracing is on (and straight when it is off, with
 * no allocation): the span ends when `fn` settles, with an error status if it throws.
 */
export function inSpan<T>(name: string, attributes: Attributes, fn: () => Promise<T>, kind: SpanKind = SpanKind.INTERNAL): Promise<T> {
  if (!enabled) return fn();
  return inSpanUnder(context.active(), name, { kind, attributes }, fn);
}

/** {@link inSpan} under a given parent (a message's context rather than the active one). */
export function inSpanUnder<T>(parent: Context, name: string, options: SpanOptions, fn: () => Promise<T>): Promise<T> {
  if (!enabled) return fn();
  const span = tracer.startSpan(name, options, parent);
  return context.with(trace.setSpan(parent, span), fn).then(
    (value) => {
      span.end();
      return value;
    },
    (err: unknown) => {
      recordError(span, err);
      span.end();
      throw err;
    },
  );
}

/** Marks `span` failed with `err`. */
export function recordError(span: Span, err: unknown): void {
  span.recordException(err instanceof Error ? err : String(err));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}

/** The W3C trace context (`traceparent`, `tracestate`) of the active span; `undefined` outside one or with tracing off. */
export function currentTraceContext(): Record<string, string> | undefined {
  if (!enabled || !trace.getSpan(context.active())) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent ? carrier : undefined;
}

/** Message headers (AMQP's are `unknown`-valued) as a propagation carrier. */
const headerGetter: TextMapGetter<Record<string, unknown>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const value = carrier[key];
    return typeof value === 'string' ? value : Buffer.isBuffer(value) ? value.toString('utf8') : undefined;
  },
};

/** The context a W3C carrier (an outbox row's, a message's headers) names; the root context when it names none. */
export function contextFrom(carrier: Readonly<Record<string, unknown>> | undefined): Context {
  if (!carrier) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, carrier, headerGetter);
}

/** A link to the span a carrier names, for a span that several traces' events lead to (a batch). */
export function linkFrom(carrier: Readonly<Record<string, unknown>> | undefined): Link | undefined {
  const span = trace.getSpan(contextFrom(carrier));
  return span ? { context: span.spanContext() } : undefined;
}

/** `trace_id` and `span_id` of the active span (exemplars, log lines written outside pino's hook). */
export function activeTraceIds(): { traceId: string; spanId: string } | undefined {
  if (!enabled) return undefined;
  const span = trace.getSpan(context.active());
  if (!span) return undefined;
  const { traceId, spanId } = span.spanContext();
  return { traceId, spanId };
}

/** A finished span as plain data (what the in-memory exporter holds, for tests and tools). */
export interface FinishedSpan {
  traceId: string;
  spanId: string;
  /** Empty for a root span. */
  parentSpanId: string;
  name: string;
  kind: 'internal' | 'server' | 'client' | 'producer' | 'consumer';
  /** The process's `service.name`. */
  service: string;
  attributes: Record<string, string | number | boolean>;
  links: Array<{ traceId: string; spanId: string }>;
  /** Its status is an error. */
  failed: boolean;
}

const KIND_NAMES = ['internal', 'server', 'client', 'producer', 'consumer'] as const;

/**
 * An in-memory exporter for {@link startTracing}'s `spanProcessors` (each span exported as it
 * ends), and a reader of what it holds.
 */
export function memorySpans(): { spanProcessors: SpanProcessor[]; finished(): FinishedSpan[] } {
  const { InMemorySpanExporter, SimpleSpanProcessor } =
    require('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base');
  const exporter = new InMemorySpanExporter();
  return {
    spanProcessors: [new SimpleSpanProcessor(exporter)],
    finished: () =>
      exporter.getFinishedSpans().map((s) => ({
        traceId: s.spanContext().traceId,
        spanId: s.spanContext().spanId,
        parentSpanId: s.parentSpanContext?.spanId ?? '',
        name: s.name,
        kind: KIND_NAMES[s.kind] ?? 'internal',
        service: String(s.resource.attributes['service.name'] ?? ''),
        attributes: Object.fromEntries(
          Object.entries(s.attributes).flatMap(([k, v]) =>
            typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? [[k, v]] : [],
          ),
        ),
        links: s.links.map((l) => ({ traceId: l.context.traceId, spanId: l.context.spanId })),
        failed: s.status.code === SpanStatusCode.ERROR,
      })),
  };
}

export { SpanKind, context, propagation, trace, type Span };
