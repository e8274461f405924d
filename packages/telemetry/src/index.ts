import pino, { type Logger } from 'pino';
import { Counter, Gauge, Histogram, type OpenMetricsContentType, Registry, collectDefaultMetrics } from 'prom-client';
import { tracingEnabled } from '@shop/tracing';

export type { Logger };

/** The metric names of the contract in ARCHITECTURE.md, each labelled with its service or subgraph. */
export interface Metrics {
  /** Round trips to a service's store. Labels: service. */
  storeQueries: Counter<'service'>;
  /** Round trips made by background work (outbox relay polling). Labels: service. */
  storeBackgroundQueries: Counter<'service'>;
  /** Requests the gateway sent to a subgraph. Labels: subgraph. */
  subgraphRequests: Counter<'subgraph'>;
  /** Entity representations the gateway sent to a subgraph. Labels: subgraph. */
  entityRepresentations: Counter<'subgraph'>;
  /** Cache look-ups. Labels: service, cache, result (hit or miss). */
  cacheRequests: Counter<'service' | 'cache' | 'result'>;
  /** Cache calls that failed or timed out and were answered without the cache. Labels: service, cache, op. */
  cacheErrors: Counter<'service' | 'cache' | 'op'>;
  /** Keys per DataLoader batch. Labels: service, loader. */
  dataloaderBatchSize: Histogram<'service' | 'loader'>;
  /** HTTP requests served. Labels: service, route, status. */
  httpRequests: Counter<'service' | 'route' | 'status'>;
  /** Request latency at every process's HTTP front, by the same labels as `httpRequests`. */
  httpRequestDuration: Histogram<'service' | 'route' | 'status'>;
  eventsPublished: Counter<'service' | 'type'>;
  eventsConsumed: Counter<'service' | 'type'>;
  outboxPending: Gauge<'service'>;
  /** Events moved to a dead-letter queue. Labels: service (the consumer group), type. */
  eventsDeadLettered: Counter<'service' | 'type'>;
  /** Seconds from an event's occurredAt to its handling by a consumer. Labels: service. */
  eventPropagationSeconds: Histogram<'service'>;
  /** Documents refused by a document limit (depth, aliases, directives, tokens) before planning. Labels: service, limit. */
  documentsRejected: Counter<'service' | 'limit'>;
  /** The gateway's static cost estimate of each operation. Labels: result (`ok`, `too_expensive`, `measured_over`). */
  costEstimated: Histogram<'result'>;
  /** A subgraph's circuit breaker at the gateway: 0 closed, 1 half-open (probing), 2 open (failing fast). Labels: subgraph. */
  breakerState: Gauge<'subgraph'>;
  /** Breaker transitions. Labels: subgraph, to (`closed`, `half_open`, `open`). */
  breakerTransitions: Counter<'subgraph' | 'to'>;
  /** Subgraph queries sent again after a connection failure (never mutations). Labels: subgraph. */
  subgraphRetries: Counter<'subgraph'>;
  /** Requests refused before any work: `overloaded` (503, load shedding) or `rate_limited` (429). Labels: service, reason. */
  requestsShed: Counter<'service' | 'reason'>;
  /** A cache store's breaker: 1 while Redis is bypassed after consecutive timeouts, else 0. Labels: service. */
  cacheBreakerOpen: Gauge<'service'>;
}

const metricsByRegistry = new WeakMap<Registry, Metrics>();

/**
 * The contract metrics registered on `registry`. Memoised per registry so that several services
 * sharing one registry (the embedded mode) share the same series, told apart by their label.
 */
export function metricsFor(registry: Registry): Metrics {
  const existing = metricsByRegistry.get(registry);
  if (existing) return existing;
  const registers = [registry];
  const metrics: Metrics = {
    storeQueries: new Counter({
      name: 'store_queries_total',
      help: 'Round trips to a service store',
      labelNames: ['service'],
      registers,
    }),
    storeBackgroundQueries: new Counter({
      name: 'store_background_queries_total',
      help: 'Round trips to a service store made by background work (outbox relay)',
      labelNames: ['service'],
      registers,
    }),
    subgraphRequests: new Counter({
      name: 'gateway_subgraph_requests_total',
      help: 'Requests sent by the gateway to a subgraph',
      labelNames: ['subgraph'],
      registers,
    }),
    entityRepresentations: new Counter({
      name: 'gateway_entity_representations_total',
      help: 'Entity representations sent by the gateway to a subgraph',
      labelNames: ['subgraph'],
      registers,
    }),
    cacheRequests: new Counter({
      name: 'cache_requests_total',
      help: 'Cache look-ups by cache and result',
      labelNames: ['service', 'cache', 'result'],
      registers,
    }),
    cacheErrors: new Counter({
      name: 'cache_errors_total',
      help: 'Cache calls that failed or timed out (the request carried on without the cache)',
      labelNames: ['service', 'cache', 'op'],
      registers,
    }),
    dataloaderBatchSize: new Histogram({
      name: 'dataloader_batch_size',
      help: 'Keys per DataLoader batch',
      labelNames: ['service', 'loader'],
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000],
      registers,
    }),
    httpRequests: new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests served',
      labelNames: ['service', 'route', 'status'],
      registers,
    }),
    httpRequestDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'Time from a request arriving to its response being handed to the socket, by route and status',
      labelNames: ['service', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
      // With tracing on the registry speaks OpenMetrics, whose histograms carry exemplars: each
      // bucket names the trace of a request that landed in it (observeDuration in @shop/server's http.ts).
      enableExemplars: withExemplars(registry),
    }),
    eventsPublished: new Counter({
      name: 'events_published_total',
      help: 'Events published to the bus',
      labelNames: ['service', 'type'],
      registers,
    }),
    eventsConsumed: new Counter({
      name: 'events_consumed_total',
      help: 'Events consumed from the bus',
      labelNames: ['service', 'type'],
      registers,
    }),
    outboxPending: new Gauge({
      name: 'outbox_pending',
      help: 'Outbox rows not yet confirmed by the broker',
      labelNames: ['service'],
      registers,
    }),
    eventsDeadLettered: new Counter({
      name: 'events_dead_lettered_total',
      help: 'Events moved to a dead-letter queue after failing every attempt',
      labelNames: ['service', 'type'],
      registers,
    }),
    eventPropagationSeconds: new Histogram({
      name: 'event_propagation_seconds',
      help: 'Time from an event being recorded to a consumer applying it',
      labelNames: ['service'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    documentsRejected: new Counter({
      name: 'graphql_documents_rejected_total',
      help: 'GraphQL documents refused by a document limit (depth, aliases, directives, tokens) before any work',
      labelNames: ['service', 'limit'],
      registers,
    }),
    costEstimated: new Histogram({
      name: 'cost_estimated',
      help: 'Static cost estimate of each operation (IBM cost directive semantics), by result',
      labelNames: ['result'],
      buckets: [1, 10, 50, 100, 500, 1000, 5000, 10000, 100000, 1000000],
      registers,
    }),
    breakerState: new Gauge({
      name: 'gateway_subgraph_breaker_state',
      help: "A subgraph's circuit breaker: 0 closed, 1 half-open (one probe), 2 open (failing fast)",
      labelNames: ['subgraph'],
      registers,
    }),
    breakerTransitions: new Counter({
      name: 'gateway_subgraph_breaker_transitions_total',
      help: 'Circuit breaker transitions per subgraph',
      labelNames: ['subgraph', 'to'],
      registers,
    }),
    subgraphRetries: new Counter({
      name: 'gateway_subgraph_retries_total',
      help: 'Subgraph queries sent again after a connection failure (never mutations)',
      labelNames: ['subgraph'],
      registers,
    }),
    requestsShed: new Counter({
      name: 'http_requests_shed_total',
      help: 'Requests refused before any work: overloaded (503) or rate_limited (429)',
      labelNames: ['service', 'reason'],
      registers,
    }),
    cacheBreakerOpen: new Gauge({
      name: 'cache_breaker_open',
      help: 'A cache store bypassing Redis after consecutive timeouts (1) or using it (0)',
      labelNames: ['service'],
      registers,
    }),
  };
  metricsByRegistry.set(registry, metrics);
  return metrics;
}

/**
 * A counter registered once per registry: a second instance of a component on a shared registry
 * (the embedded mode, tests) gets the existing one instead of a duplicate-name error.
 */
export function sharedCounter<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[]): Counter<L> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<L>;
  return new Counter({ name, help, labelNames, registers: [registry] });
}

/** Everything a process needs to observe itself: its service name, a logger and its metrics. */
export interface Telemetry {
  service: string;
  logger: Logger;
  registry: Registry;
  metrics: Metrics;
}

export interface TelemetryOptions {
  service: string;
  /** @default 'info' */
  logLevel?: string;
  /** Share one registry between services in one process (embedded mode). @default a new registry */
  registry?: Registry;
  /** Share one root logger between services in one process. @default a new pino logger on stdout */
  logger?: Logger;
  /** Collect Node's default process metrics into the registry. @default false */
  processMetrics?: boolean;
}

/** Whether `registry` exposes exemplars: it speaks OpenMetrics, which it does when tracing is on. */
export function withExemplars(registry: Registry): boolean {
  return (registry.contentType as string) === Registry.OPENMETRICS_CONTENT_TYPE;
}

/**
 * A registry for a process: Prometheus's text format, or OpenMetrics when tracing is on (the
 * format exemplars need; Prometheus scrapes both).
 */
export function newRegistry(): Registry {
  const registry = new Registry();
  // The declared type binds a registry to the format it was made with; this one changes once, before use.
  if (tracingEnabled()) (registry as unknown as Registry<OpenMetricsContentType>).setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  return registry;
}

/** Creates the telemetry of one service. */
export function createTelemetry(options: TelemetryOptions): Telemetry {
  const registry = options.registry ?? newRegistry();
  if (options.processMetrics) collectDefaultMetrics({ register: registry });
  const logger = options.logger
    ? options.logger.child({ service: options.service })
    : pino({ level: options.logLevel ?? 'info', base: { service: options.service } });
  return { service: options.service, logger, registry, metrics: metricsFor(registry) };
}

/** Reads the current value of a counter or gauge for the given labels (0 when never set). */
export async function metricValue(metric: Counter<string> | Gauge<string>, labels: Record<string, string>): Promise<number> {
  const data = await metric.get();
  return data.values.filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val)).reduce((sum, v) => sum + v.value, 0);
}
