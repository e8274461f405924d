import type { Logger, Telemetry } from '@shop/telemetry';
import { SpanKind, contextFrom, inSpanUnder, linkFrom, tracingEnabled } from '@shop/tracing';
import {
  type Bus,
  type DeadLetter,
  type EventEnvelope,
  PermanentError,
  type RedriveOptions,
  type SubscribeOptions,
  type Subscription,
} from './types';

// ---------------------------------------------------------------------------------------------
// Delivery semantics shared by MemoryBus and AmqpBus: one copy, so the two cannot drift apart.
// ---------------------------------------------------------------------------------------------

/** The backoff of `SubscribeOptions.retryDelayMs` when none is given: 50, 100, 200 ... at most 2000 ms. */
export function defaultRetryDelayMs(attempt: number): number {
  return Math.min(2000, 50 * 2 ** Math.max(0, attempt - 1));
}

/**
 * True for a `PermanentError`, also one thrown from another copy of this module or another realm
 * (a second bundle, a vm context), where `instanceof` fails: the name is the contract.
 */
export function isPermanentError(err: unknown): boolean {
  return (
    err instanceof PermanentError || (typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'PermanentError')
  );
}

/** A thrown value as the text a dead letter keeps. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  if (typeof err === 'object' && err !== null && typeof (err as { message?: unknown }).message === 'string')
    return (err as { message: string }).message;
  return String(err);
}

/** A dead letter as the buses return it: `raw` is set when the body was not an EventEnvelope. */
export interface BusDeadLetter extends DeadLetter {
  /**
   * The message body as received, present only when it could not be read as an EventEnvelope;
   * `event` then holds whatever fields could be recovered (empty strings and zeros otherwise).
   */
  raw?: string;
}

export type ParsedBody = { ok: true; event: EventEnvelope } | { ok: false; error: string; partial: EventEnvelope };

const isInteger = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const isText = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/** Reads a message body as an EventEnvelope, or says why it is not one (the message then goes to dead letters). */
export function parseEnvelope(body: string, routingKey = ''): ParsedBody {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (err) {
    return { ok: false, error: `malformed message: not JSON (${errorMessage(err)})`, partial: partialEnvelope(undefined, routingKey) };
  }
  const problems: string[] = [];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, error: 'malformed message: not an EventEnvelope object', partial: partialEnvelope(undefined, routingKey) };
  }
  const v = value as Record<string, unknown>;
  for (const key of ['id', 'type', 'source', 'aggregateId', 'occurredAt'] as const)
    if (!isText(v[key])) problems.push(`${key} must be a non-empty string`);
  if (!isInteger(v.aggregateVersion) || v.aggregateVersion < 1) problems.push('aggregateVersion must be an integer >= 1');
  if (!isInteger(v.schemaVersion) || v.schemaVersion < 1) problems.push('schemaVersion must be an integer >= 1');
  if (typeof v.payload !== 'object' || v.payload === null || Array.isArray(v.payload)) problems.push('payload must be an object');
  if (problems.length > 0)
    return { ok: false, error: `malformed message: ${problems.join('; ')}`, partial: partialEnvelope(v, routingKey) };
  // A trace context that is not one is dropped, not a reason to refuse the event (W3C: ignore it).
  if (v.traceContext !== undefined && !isTraceContext(v.traceContext)) delete v.traceContext;
  return { ok: true, event: v as unknown as EventEnvelope };
}

/** At most a few short string fields (`traceparent` is 55 characters; `tracestate` at most 512). */
function isTraceContext(value: unknown): value is Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const entries = Object.entries(value);
  return entries.length <= 4 && entries.every(([k, v]) => k.length <= 32 && typeof v === 'string' && v.length <= 512);
}

/**
 * Runs one handling of `event` in a consumer span (with tracing on) under the span that published
 * it: the trace of the request that wrote the event goes on through every consumer's handler and
 * the statements it runs.
 */
function handled(group: string, event: EventEnvelope, attempt: number, handle: () => Promise<void>): Promise<void> {
  if (!tracingEnabled()) return handle();
  const attributes = {
    'messaging.operation.type': 'process',
    'messaging.destination.name': event.type,
    'messaging.consumer.group.name': group,
    'messaging.message.id': event.id,
    'shop.service': group,
    'shop.attempt': attempt,
  };
  return inSpanUnder(contextFrom(event.traceContext), `${group} process ${event.type}`, { kind: SpanKind.CONSUMER, attributes }, handle);
}

/** A consumer span for a batch: under the first event's trace, linked to every event's. */
function handledBatch(group: string, events: EventEnvelope[], handle: () => Promise<void>): Promise<void> {
  if (!tracingEnabled()) return handle();
  const links = events.flatMap((e) => {
    const link = linkFrom(e.traceContext);
    return link ? [link] : [];
  });
  const attributes = { 'messaging.operation.type': 'process', 'messaging.batch.message_count': events.length, 'shop.service': group };
  return inSpanUnder(
    contextFrom(events[0]?.traceContext),
    `${group} process ${events.length} events`,
    { kind: SpanKind.CONSUMER, attributes, links },
    handle,
  );
}

function partialEnvelope(v: Record<string, unknown> | undefined, routingKey: string): EventEnvelope {
  const text = (x: unknown) => (typeof x === 'string' ? x : '');
  const int = (x: unknown) => (isInteger(x) ? x : 0);
  const payload =
    v && typeof v.payload === 'object' && v.payload !== null && !Array.isArray(v.payload) ? (v.payload as Record<string, unknown>) : {};
  return {
    id: text(v?.id),
    type: text(v?.type) || routingKey,
    source: text(v?.source),
    aggregateId: text(v?.aggregateId),
    aggregateVersion: int(v?.aggregateVersion),
    occurredAt: text(v?.occurredAt),
    schemaVersion: int(v?.schemaVersion),
    payload,
  };
}

/** The dead letter for a stored body and the reason it died. */
export function toDeadLetter(body: string, routingKey: string, error: string, attempts: number, deadAt: string): BusDeadLetter {
  const parsed = parseEnvelope(body, routingKey);
  return parsed.ok ? { event: parsed.event, error, attempts, deadAt } : { event: parsed.partial, error, attempts, deadAt, raw: body };
}

/** SubscribeOptions with the defaults applied, checked once so a misuse fails at subscribe, not at the first event. */
export type ResolvedSubscribeOptions = Required<Omit<SubscribeOptions, 'batchHandler'>> & Pick<SubscribeOptions, 'batchHandler'>;

/** Group names become queue names (`shop.<group>`): letters, digits and `._:-` only. */
const GROUP = /^[A-Za-z0-9._:-]{1,200}$/;

export function resolveSubscribeOptions(options: SubscribeOptions): ResolvedSubscribeOptions {
  const { group, types, handler } = options;
  if (typeof group !== 'string' || !GROUP.test(group)) {
    throw new TypeError(`subscribe: group must be 1-200 characters of letters, digits and ._:- (received ${JSON.stringify(group)})`);
  }
  if (!Array.isArray(types) || types.length === 0 || !types.every((t) => typeof t === 'string' && t.length > 0 && !/[*#]/.test(t))) {
    // A type is a topic routing key: `*` and `#` would make it a wildcard pattern.
    throw new TypeError(`subscribe: types must be a non-empty array of event types without * or # (received ${JSON.stringify(types)})`);
  }
  if (typeof handler !== 'function') throw new TypeError(`subscribe: handler must be a function (received ${typeof handler})`);
  const maxAttempts = options.maxAttempts ?? 5;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1)
    throw new TypeError(`subscribe: maxAttempts must be an integer >= 1 (received ${maxAttempts})`);
  const { batchHandler } = options;
  if (batchHandler !== undefined && typeof batchHandler !== 'function')
    throw new TypeError(`subscribe: batchHandler must be a function (received ${typeof batchHandler})`);
  const maxBatch = batchHandler ? (options.maxBatch ?? 100) : 1;
  if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > 1000)
    throw new TypeError(`subscribe: maxBatch must be an integer from 1 to 1000 (received ${maxBatch})`);
  return {
    group,
    types: [...new Set(types)],
    handler,
    maxAttempts,
    retryDelayMs: options.retryDelayMs ?? defaultRetryDelayMs,
    batchHandler,
    maxBatch,
    ephemeral: options.ephemeral ?? false,
  };
}

/**
 * Tries the group's batchHandler on consecutive messages. True when it handled them all; false
 * when there is none, the batch is a single event, or it threw: the caller then delivers each
 * event on its own (with retries and dead letters), in order.
 */
export async function deliverBatch(events: EventEnvelope[], options: ResolvedSubscribeOptions, control: DeliveryControl): Promise<boolean> {
  if (!options.batchHandler || events.length < 2 || control.stopped()) return false;
  try {
    const batchHandler = options.batchHandler;
    await handledBatch(options.group, events, () => batchHandler(events));
    return true;
  } catch (err) {
    control.logger.debug(
      { group: options.group, events: events.length, err: errorMessage(err) },
      'event batch failed; handling its events one by one',
    );
    return false;
  }
}

/** Checks what publish needs from each event before anything is sent, so a batch is never half sent for a misuse. */
export function assertPublishable(events: readonly EventEnvelope[]): void {
  if (!Array.isArray(events)) throw new TypeError(`publish: expected an array of events (received ${typeof events})`);
  for (const e of events as readonly unknown[]) {
    const type: unknown = typeof e === 'object' && e !== null ? (e as { type?: unknown }).type : undefined;
    if (!isText(type) || /[*#]/.test(type)) {
      throw new TypeError(`publish: every event needs a type without * or # (received ${JSON.stringify(type)})`);
    }
  }
}

/** One dead letter as it is reported: the consumer group, the routing key, and why. */
export interface DeadLetterReport {
  group: string;
  /** The event type (the routing key for a body that could not be read). */
  type: string;
  /** Empty when the body was not an EventEnvelope. */
  eventId: string;
  /** 0 when the handler was never called (a malformed body). */
  attempts: number;
  error: string;
}

/**
 * What every dead letter costs, on either bus: one `events_dead_lettered_total` and one warning.
 * Called once the message IS in the dead-letter queue, so a failed move (the message goes back to
 * the group's queue) is neither counted nor logged as dead.
 */
export function reportDeadLetter(telemetry: Telemetry, logger: Logger, dead: DeadLetterReport): void {
  telemetry.metrics.eventsDeadLettered.inc({ service: dead.group, type: dead.type });
  logger.warn(
    { group: dead.group, type: dead.type, eventId: dead.eventId, attempts: dead.attempts, err: dead.error },
    'event dead-lettered',
  );
}

/** Whether a dead letter is one a redrive asked for: all of them, or those whose event id is listed. */
export function redriveSelects(options: RedriveOptions | undefined): (eventId: string) => boolean {
  if (options?.ids === undefined) return () => true;
  if (!Array.isArray(options.ids) || !options.ids.every((id) => typeof id === 'string')) {
    throw new TypeError(`redrive: ids must be an array of event ids (received ${JSON.stringify(options.ids)})`);
  }
  const wanted = new Set(options.ids);
  return (eventId) => wanted.has(eventId);
}

/** How one delivery ended. `released`: the consumer stopped first, so the message goes back to the queue. */
export type DeliveryOutcome =
  { kind: 'handled'; attempts: number } | { kind: 'dead'; attempts: number; error: string } | { kind: 'released' };

export interface DeliveryControl {
  /** True once the consumer stopped (subscription closed, channel lost): no further attempts. */
  stopped(): boolean;
  /** Waits `ms` before the next attempt; resolves false if the consumer stopped meanwhile. */
  wait(ms: number): Promise<boolean>;
  logger: Logger;
}

/**
 * Runs the handler with retries in place: the message stays held (unacknowledged) during the
 * backoff, so the group's next message waits and per-aggregate order holds. A PermanentError
 * ends it at once; after `maxAttempts` failures it is dead.
 */
export async function deliverWithRetries(
  event: EventEnvelope,
  options: ResolvedSubscribeOptions,
  control: DeliveryControl,
): Promise<DeliveryOutcome> {
  if (control.stopped()) return { kind: 'released' };
  for (let attempt = 1; ; attempt++) {
    try {
      await handled(options.group, event, attempt, () => options.handler(event));
      return { kind: 'handled', attempts: attempt };
    } catch (err) {
      const error = errorMessage(err);
      if (isPermanentError(err)) return { kind: 'dead', attempts: attempt, error };
      if (attempt >= options.maxAttempts) return { kind: 'dead', attempts: attempt, error };
      if (control.stopped()) return { kind: 'released' };
      const delay = Math.max(0, Number(options.retryDelayMs(attempt)) || 0);
      control.logger.debug(
        { group: options.group, eventId: event.id, type: event.type, attempt, delay, err: error },
        'event handler failed; retrying',
      );
      if (!(await control.wait(delay))) return { kind: 'released' };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The in-process broker.
// ---------------------------------------------------------------------------------------------

/** A message as the broker keeps it: the serialised body (as on the wire) and its routing key. */
interface StoredMessage {
  body: string;
  type: string;
}

interface StoredDeadLetter extends StoredMessage {
  error: string;
  attempts: number;
  deadAt: string;
}

/** One group's durable queue, its dead letters and its consumers (replicas), served round-robin. */
class GroupQueue {
  readonly messages: StoredMessage[] = [];
  readonly dead: StoredDeadLetter[] = [];
  readonly consumers: MemoryConsumer[] = [];
  private next = 0;

  constructor(readonly group: string) {}

  /** Hands messages to idle consumers: one at a time, or up to `maxBatch` to a batching one (AMQP's prefetch). */
  dispatch(): void {
    while (this.messages.length > 0) {
      const n = this.consumers.length;
      let idle: MemoryConsumer | undefined;
      for (let i = 0; i < n && !idle; i++) {
        const candidate = this.consumers[(this.next + i) % n];
        if (candidate && !candidate.busy) {
          idle = candidate;
          this.next = (this.next + i + 1) % n;
        }
      }
      if (!idle) return;
      idle.take(this.messages.splice(0, idle.maxBatch));
    }
  }
}

/**
 * What RabbitMQ is to AmqpBus, in process: durable queues per group bound by event type, dead
 * letters per group. Share one broker between the MemoryBus of every service in a process (the
 * embedded mode); messages outlive subscriptions, as durable queues do.
 */
export class MemoryBroker {
  private readonly queues = new Map<string, GroupQueue>();
  private readonly bindings = new Map<string, Set<GroupQueue>>();

  /** The group's queue, declared on first use (like `assertQueue`). */
  queue(group: string): GroupQueue {
    let q = this.queues.get(group);
    if (!q) {
      q = new GroupQueue(group);
      this.queues.set(group, q);
    }
    return q;
  }

  /** Deletes a group's queue and its bindings (an ephemeral subscriber's, when it closes). */
  drop(group: string): void {
    const q = this.queues.get(group);
    if (!q) return;
    this.queues.delete(group);
    for (const bound of this.bindings.values()) bound.delete(q);
  }

  /** The group's queue if it was ever declared. */
  existing(group: string): GroupQueue | undefined {
    return this.queues.get(group);
  }

  bind(queue: GroupQueue, type: string): void {
    let bound = this.bindings.get(type);
    if (!bound) {
      bound = new Set();
      this.bindings.set(type, bound);
    }
    bound.add(queue);
  }

  /**
   * Routes a serialised message by type to every bound queue (topic semantics: none bound means
   * dropped). Public so a test can send what a foreign or broken publisher would.
   * @returns how many queues it reached
   */
  publishRaw(type: string, body: string): number {
    const bound = this.bindings.get(type);
    if (!bound) return 0;
    for (const q of bound) {
      q.messages.push({ body, type });
      q.dispatch();
    }
    return bound.size;
  }
}

/** One subscription's consumer: handles one message at a time, retrying in place. */
class MemoryConsumer {
  busy = false;
  private stopping = false;
  private current: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly queue: GroupQueue,
    private readonly options: ResolvedSubscribeOptions,
    private readonly telemetry: Telemetry,
    private readonly logger: Logger,
  ) {}

  get maxBatch(): number {
    return this.options.maxBatch;
  }

  take(messages: StoredMessage[]): void {
    this.busy = true;
    // setImmediate: the handler never runs inside publish's call stack, and a long queue yields
    // to I/O between messages instead of running as one unbroken chain of microtasks.
    this.current = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.processAll(messages))
      .catch((err: unknown) => this.logger.error({ group: this.options.group, err: errorMessage(err) }, 'memory bus delivery failed'))
      .finally(() => {
        this.busy = false;
        this.current = undefined;
        if (!this.stopping) this.queue.dispatch();
      });
  }

  private control(): DeliveryControl {
    return { stopped: () => this.stopping, wait: (ms) => this.wait(ms), logger: this.logger };
  }

  /** A batch when every body reads and the batchHandler takes them all; else one by one, in order. */
  private async processAll(messages: StoredMessage[]): Promise<void> {
    const parsed = messages.map((m) => parseEnvelope(m.body, m.type));
    const events = parsed.flatMap((p) => (p.ok ? [p.event] : []));
    if (events.length === messages.length && (await deliverBatch(events, this.options, this.control()))) {
      for (const e of events) this.telemetry.metrics.eventsConsumed.inc({ service: this.options.group, type: e.type });
      return;
    }
    for (const [i, message] of messages.entries()) {
      if (this.stopping || !(await this.process(message))) {
        // The consumer stopped: this message and the rest go back to the head of the queue, in
        // order, for the next consumer.
        this.queue.messages.unshift(...messages.slice(i));
        return;
      }
    }
  }

  /** Delivers one message; false when the consumer stopped first (the message was not settled). */
  private async process(message: StoredMessage): Promise<boolean> {
    const { group } = this.options;
    const parsed = parseEnvelope(message.body, message.type);
    if (!parsed.ok) {
      this.deadLetter(message, parsed.error, 0);
      return true;
    }
    const outcome = await deliverWithRetries(parsed.event, this.options, this.control());
    if (outcome.kind === 'handled') {
      this.telemetry.metrics.eventsConsumed.inc({ service: group, type: parsed.event.type });
    } else if (outcome.kind === 'dead') {
      this.deadLetter(message, outcome.error, outcome.attempts, parsed.event.id);
    } else {
      return false;
    }
    return true;
  }

  private deadLetter(message: StoredMessage, error: string, attempts: number, eventId = ''): void {
    this.queue.dead.push({ ...message, error, attempts, deadAt: new Date().toISOString() });
    reportDeadLetter(this.telemetry, this.logger, { group: this.options.group, type: message.type, eventId, attempts, error });
  }

  private wait(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve(true);
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve(false);
      };
    });
  }

  /** Stops taking messages; the one in hand finishes its attempt or goes back to the queue. */
  async stop(): Promise<void> {
    this.stopping = true;
    const i = this.queue.consumers.indexOf(this);
    if (i >= 0) this.queue.consumers.splice(i, 1);
    this.wake?.();
    await this.current;
    this.queue.dispatch();
  }
}

export interface MemoryBusOptions {
  /** The publishing service and, for its logs, the owner of this bus. */
  service: string;
  /** Metrics: `eventsPublished{service}` with `service`, `eventsConsumed{service}` with the consumer group. */
  telemetry: Telemetry;
  /** Share one broker between the services of one process. @default a broker of its own */
  broker?: MemoryBroker;
}

/**
 * The in-process Bus (embedded mode, fast tests), with AmqpBus's semantics: a queue per group,
 * one message at a time per subscription, retries in place with the same backoff, dead letters
 * per group. Bodies are serialised as on the wire, so a handler never shares the publisher's
 * objects.
 */
export class MemoryBus implements Bus {
  readonly kind = 'memory' as const;
  readonly broker: MemoryBroker;
  private readonly logger: Logger;
  private readonly subscriptions = new Set<MemoryConsumer>();
  private closed = false;

  constructor(private readonly options: MemoryBusOptions) {
    this.broker = options.broker ?? new MemoryBroker();
    this.logger = options.telemetry.logger.child({ component: 'bus', bus: 'memory' });
  }

  async publish(events: readonly EventEnvelope[]): Promise<void> {
    if (this.closed) throw new Error('publish: the bus is closed');
    assertPublishable(events);
    // Serialise the whole batch first: a failure (a BigInt, a cycle) then sends nothing.
    const bodies = events.map((e) => JSON.stringify(e));
    events.forEach((e, i) => {
      this.broker.publishRaw(e.type, bodies[i] as string);
      this.options.telemetry.metrics.eventsPublished.inc({ service: this.options.service, type: e.type });
    });
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    if (this.closed) throw new Error('subscribe: the bus is closed');
    const resolved = resolveSubscribeOptions(options);
    const queue = this.broker.queue(resolved.group);
    for (const type of resolved.types) this.broker.bind(queue, type);
    const consumer = new MemoryConsumer(queue, resolved, this.options.telemetry, this.logger);
    queue.consumers.push(consumer);
    this.subscriptions.add(consumer);
    queue.dispatch();
    let closing: Promise<void> | undefined;
    return {
      close: () => {
        closing ??= consumer.stop().finally(() => {
          this.subscriptions.delete(consumer);
          // An ephemeral queue goes with its subscriber, as RabbitMQ's auto-deleted one does.
          if (resolved.ephemeral) this.broker.drop(resolved.group);
        });
        return closing;
      },
    };
  }

  async deadLetters(group: string): Promise<DeadLetter[]> {
    const queue = this.broker.existing(group);
    return (queue?.dead ?? []).map((d) => toDeadLetter(d.body, d.type, d.error, d.attempts, d.deadAt));
  }

  async redrive(group: string, options?: RedriveOptions): Promise<number> {
    const selects = redriveSelects(options);
    const queue = this.broker.existing(group);
    if (!queue) return 0;
    const moved: StoredDeadLetter[] = [];
    const kept: StoredDeadLetter[] = [];
    for (const d of queue.dead) (selects(toDeadLetter(d.body, d.type, d.error, d.attempts, d.deadAt).event.id) ? moved : kept).push(d);
    queue.dead.splice(0, queue.dead.length, ...kept);
    for (const d of moved) queue.messages.push({ body: d.body, type: d.type });
    queue.dispatch();
    return moved.length;
  }

  async ready(): Promise<boolean> {
    return !this.closed;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.subscriptions].map((c) => c.stop()));
    this.subscriptions.clear();
  }
}
