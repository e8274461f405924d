/** An event as it travels: what happened to which aggregate, at which version, in which shape. */
export interface EventEnvelope {
  /** Unique per event (a UUID): consumers deduplicate on it. */
  id: string;
  /** What happened, e.g. `ProductCreated`. */
  type: string;
  /** The publishing service, e.g. `products`. */
  source: string;
  aggregateId: string;
  /** 1, 2, 3... per aggregate: consumers can tell order and gaps. */
  aggregateVersion: number;
  /** ISO 8601. */
  occurredAt: string;
  /** The payload's shape version; a consumer rejects versions it does not know (to dead letters). */
  schemaVersion: number;
  payload: Record<string, unknown>;
  /**
   * The W3C trace context (`traceparent`, `tracestate`) of the span that wrote the event, kept in
   * the outbox row and carried in the message: the relay's publish and every consumer's handling
   * join the trace of the request that caused them. Absent with tracing off.
   */
  traceContext?: Record<string, string>;
}

/** A message that could not be handled after every attempt, kept with the reason. */
export interface DeadLetter {
  event: EventEnvelope;
  error: string;
  attempts: number;
  deadAt: string;
}

/** Thrown by a handler for a message that can never succeed: dead-lettered at once, no retries. */
export class PermanentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PermanentError';
  }
}

export interface SubscribeOptions {
  /**
   * The consuming service: one durable queue per group, so every replica of a service shares
   * the work and each event reaches each service once (at least once).
   */
  group: string;
  /** Event types to receive, e.g. ['ProductCreated', 'ProductUpdated']. */
  types: string[];
  /** Handles one event; throwing means "try again" unless it is a PermanentError. */
  handler: (event: EventEnvelope) => Promise<void>;
  /** Attempts before a message goes to the dead-letter queue. @default 5 */
  maxAttempts?: number;
  /** Backoff before attempt n+1, in ms. @default 50 * 2^(n-1), at most 2000 */
  retryDelayMs?: (attempt: number) => number;
  /**
   * Handles several consecutive events of the group at once, all or nothing (the inbox consumer
   * applies them in one store transaction: one commit instead of one per event). The bus calls it
   * when more than one message is waiting, in publish order; when it throws, the bus handles the
   * same events one by one with `handler` (retries, dead letters), so a poison message holds
   * nothing back. @default none: always one at a time
   */
  batchHandler?: (events: EventEnvelope[]) => Promise<void>;
  /** Most events per `batchHandler` call; on RabbitMQ also the prefetch. @default 100 with a batchHandler, else 1 */
  maxBatch?: number;
  /**
   * A queue of this subscriber's own, gone when it closes or its connection drops: for a fan-out
   * to every replica (the gateway's subscriptions), where each replica must hear every event and
   * none is wanted once nobody listens. The caller names a `group` unique to it. On RabbitMQ the
   * queue is exclusive, auto-deleted, not durable and bounded (10,000 messages, the oldest
   * dropped first; a message older than 60 s expires); there is no dead-letter queue, and a
   * handler that throws loses its event (`maxAttempts` still applies). Events published while
   * the connection is down are not delivered. @default false: a durable, shared group queue
   */
  ephemeral?: boolean;
}

export interface Subscription {
  /** Stops consuming; in-flight messages finish (or return to the queue). */
  close(): Promise<void>;
}

export interface RedriveOptions {
  /** Only the dead letters of these event ids. @default every dead letter of the group */
  ids?: readonly string[];
}

/**
 * The broker seen from a service: RabbitMQ in services mode, an in-process bus in the embedded
 * mode and in fast tests, with the same delivery semantics (one contract suite runs over both):
 * at least once, in publish order per group, retries with backoff, then a dead-letter queue.
 */
export interface Bus {
  readonly kind: 'memory' | 'amqp';
  /**
   * Publishes events in the given order; resolves only when the broker has confirmed every one
   * (publisher confirms), rejects if it could not (the caller keeps them and tries again).
   */
  publish(events: readonly EventEnvelope[]): Promise<void>;
  subscribe(options: SubscribeOptions): Promise<Subscription>;
  /** The dead letters of a group, oldest first (not removed). */
  deadLetters(group: string): Promise<DeadLetter[]>;
  /**
   * Sends a group's dead letters back to its queue (after a fix), all of them or those `ids`
   * names; returns how many. Those not selected stay dead, in their order.
   */
  redrive(group: string, options?: RedriveOptions): Promise<number>;
  /** True when the broker is reachable. */
  ready(): Promise<boolean>;
  close(): Promise<void>;
}
