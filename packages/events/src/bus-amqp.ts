import { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage, type Message, connect } from 'amqplib';
import type { Logger, Telemetry } from '@shop/telemetry';
import { context, contextFrom } from '@shop/tracing';
import {
  type ResolvedSubscribeOptions,
  type DeliveryControl,
  assertPublishable,
  deliverBatch,
  deliverWithRetries,
  errorMessage,
  parseEnvelope,
  redriveSelects,
  reportDeadLetter,
  resolveSubscribeOptions,
  toDeadLetter,
} from './bus-memory';
import { withTimeout } from './deadline';
import type { Bus, DeadLetter, EventEnvelope, RedriveOptions, SubscribeOptions, Subscription } from './types';

/** The durable topic exchange every service publishes to; the routing key is the event type. */
export const EVENTS_EXCHANGE = 'shop.events';
/** A group's durable queue. */
export const groupQueue = (group: string): string => `shop.${group}`;
/** A group's durable dead-letter queue. */
export const deadLetterQueue = (group: string): string => `shop.${group}.dlq`;

/** Headers a dead letter carries; redrive strips them so the message starts afresh. */
const DEAD_HEADERS = ['x-error', 'x-attempts', 'x-dead-at', 'x-routing-key', 'x-group'] as const;
/** amqplib refuses a header table over 64 KiB: keep an error message well below that. */
const MAX_ERROR_CHARS = 4000;

export interface AmqpBusOptions {
  /** e.g. `amqp://guest:guest@127.0.0.1:5672`. */
  url: string;
  /** The publishing service: `eventsPublished{service}` and the connection's name. */
  service: string;
  /** Logger and metrics (`eventsConsumed{service}` is labelled with the consumer group). */
  telemetry: Telemetry;
  /** Longest wait for the broker's confirms before publish rejects (the outbox retries). @default 5000 */
  publishTimeoutMs?: number;
  /** Longest wait for a connection: in `connectAmqpBus`, and in a subscribe made during an outage. @default 10000 */
  connectTimeoutMs?: number;
  /**
   * Delay before reconnect attempt n after the connection dropped. @default 100 * 2^(n-1), at most
   * 1000: a connection attempt costs the broker little, and the cap is how long after the broker's
   * return the events written meanwhile may wait (issue #13: a 5 s cap made catching up take seconds).
   */
  reconnectDelayMs?: (attempt: number) => number;
  /** AMQP heartbeat: a peer that went silent is noticed after about two of these. @default 5 */
  heartbeatSeconds?: number;
  /**
   * Prefix of the exchange and queue names (`<namespace>.events`, `<namespace>.<group>`), so
   * several deployments or test runs can share one broker without taking each other's messages.
   * @default 'shop'
   */
  namespace?: string;
  /** `connection_name` shown by `rabbitmqctl list_connections client_properties`. @default the service */
  connectionName?: string;
}

const defaultReconnectDelayMs = (attempt: number): number => Math.min(1000, 100 * 2 ** Math.max(0, attempt - 1));

/** Closing must finish even when the peer no longer answers (a stalled network): bounded, errors ignored. */
async function quietly(op: () => Promise<unknown>, ms = 2000): Promise<boolean> {
  try {
    await withTimeout(Promise.resolve().then(op), ms, () => 'timed out');
    return true;
  } catch {
    return false;
  }
}

const redact = (url: string): string => {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable url)';
  }
};

const isNotFound = (err: unknown): boolean => (err as { code?: unknown } | null)?.code === 404;

/** Sends one message on a confirm channel; resolves when the broker confirmed it. */
function confirmed(send: (callback: (err: unknown) => void) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    // A closed channel throws synchronously; inside the executor that becomes a rejection.
    send((err) => (err ? reject(err instanceof Error ? err : new Error('broker refused the message', { cause: err })) : resolve()));
  });
}

/**
 * Opens an AmqpBus and waits for its first connection (bounded by `connectTimeoutMs`), so a
 * process can fail at start-up when the broker is unreachable.
 */
export async function connectAmqpBus(options: AmqpBusOptions): Promise<AmqpBus> {
  const bus = new AmqpBus(options);
  try {
    await bus.whenConnected();
  } catch (err) {
    await bus.close();
    throw err;
  }
  return bus;
}

/**
 * The Bus over RabbitMQ. Publishes persistent messages on a confirm channel to the durable topic
 * exchange `shop.events`; each group consumes its durable queue `shop.<group>` (one channel per
 * subscription, its messages handled one at a time, or in batches of those already waiting with a
 * batchHandler, in publish order per replica) and dead-letters to `shop.<group>.dlq`. When the connection drops it reconnects with
 * backoff, re-asserts the topology and resumes every subscription; meanwhile publish rejects at
 * once and `ready()` is false.
 */
export class AmqpBus implements Bus {
  readonly kind = 'amqp' as const;
  /** The exchange and queue names, under `namespace`. */
  readonly names: { exchange: string; queue: (group: string) => string; dlq: (group: string) => string };
  private readonly logger: Logger;
  private readonly url: string;
  private readonly publishTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly reconnectDelayMs: (attempt: number) => number;
  private state: 'connecting' | 'open' | 'closed' = 'connecting';
  private conn: ChannelModel | undefined;
  private publisher: ConfirmChannel | undefined;
  private connecting: Promise<void> | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectAttempt = 0;
  private lastError: string | undefined;
  private connects = 0;
  private readonly openWaiters = new Set<{ resolve: () => void; reject: (err: Error) => void }>();
  /** @internal read by AmqpSubscription */
  readonly subscriptions = new Set<AmqpSubscription>();
  /** Dead-letter reads and redrives of this bus run one at a time (a peek holds the messages meanwhile). */
  private adminTail: Promise<unknown> = Promise.resolve();
  private closing: Promise<void> | undefined;

  constructor(private readonly options: AmqpBusOptions) {
    const ns = options.namespace ?? 'shop';
    this.names = { exchange: `${ns}.events`, queue: (group) => `${ns}.${group}`, dlq: (group) => `${ns}.${group}.dlq` };
    this.logger = options.telemetry.logger.child({ component: 'bus', bus: 'amqp' });
    this.publishTimeoutMs = options.publishTimeoutMs ?? 5000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.reconnectDelayMs = options.reconnectDelayMs ?? defaultReconnectDelayMs;
    const u = new URL(options.url);
    if (!u.searchParams.has('heartbeat')) u.searchParams.set('heartbeat', String(options.heartbeatSeconds ?? 5));
    this.url = u.toString();
    this.startConnecting();
  }

  /** How many times the bus has connected: 1 after start-up, one more per reconnect (health pages, tests). */
  get connectCount(): number {
    return this.connects;
  }

  /** Resolves once connected; rejects after `timeoutMs` with the last connection error. */
  whenConnected(timeoutMs = this.connectTimeoutMs): Promise<void> {
    if (this.state === 'open') return Promise.resolve();
    if (this.state === 'closed') return Promise.reject(new Error('the bus is closed'));
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        resolve: () => {
          clearTimeout(timer);
          this.openWaiters.delete(waiter);
          resolve();
        },
        reject: (err: Error) => {
          clearTimeout(timer);
          this.openWaiters.delete(waiter);
          reject(err);
        },
      };
      const timer = setTimeout(
        () =>
          waiter.reject(
            new Error(
              `could not connect to ${redact(this.options.url)} within ${timeoutMs} ms${this.lastError ? `: ${this.lastError}` : ''}`,
            ),
          ),
        timeoutMs,
      );
      this.openWaiters.add(waiter);
    });
  }

  async publish(events: readonly EventEnvelope[]): Promise<void> {
    if (this.state === 'closed') throw new Error('publish: the bus is closed');
    assertPublishable(events);
    if (events.length === 0) return;
    const channel = this.publisher;
    if (this.state !== 'open' || !channel) {
      // Reject at once: the outbox keeps the events and tries again after its backoff.
      throw new Error(`publish: not connected to the broker${this.lastError ? ` (${this.lastError})` : ''}`);
    }
    const bodies = events.map((e) => Buffer.from(JSON.stringify(e)));
    const timestamp = Math.floor(Date.now() / 1000);
    // One callback per message rather than waitForConfirms: a concurrent publisher's nack then
    // fails only its own batch. Messages on one channel reach a queue in publish order.
    const confirms = events.map((e, i) =>
      confirmed((cb) => {
        const options = {
          persistent: true,
          contentType: 'application/json',
          messageId: e.id,
          type: e.type,
          appId: this.options.service,
          timestamp,
        };
        if (!e.traceContext) return channel.publish(this.names.exchange, e.type, bodies[i] as Buffer, options, cb);
        // The W3C headers too (traceparent, tracestate), for tools that read the message, not the
        // body; published in the event's context so amqplib's instrumentation nests under it.
        const withHeaders = { ...options, headers: { ...e.traceContext } };
        return context.with(contextFrom(e.traceContext), () =>
          channel.publish(this.names.exchange, e.type, bodies[i] as Buffer, withHeaders, cb),
        );
      }),
    );
    await withTimeout(
      Promise.all(confirms),
      this.publishTimeoutMs,
      () => `publish: the broker did not confirm ${events.length} event(s) within ${this.publishTimeoutMs} ms`,
    );
    for (const e of events) this.options.telemetry.metrics.eventsPublished.inc({ service: this.options.service, type: e.type });
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    if (this.state === 'closed') throw new Error('subscribe: the bus is closed');
    const resolved = resolveSubscribeOptions(options);
    const subscription = new AmqpSubscription(this, resolved, this.logger, this.options.telemetry, this.publishTimeoutMs);
    this.subscriptions.add(subscription);
    const deadline = Date.now() + this.connectTimeoutMs;
    try {
      // Resolve only once the queue is bound and consumed, so events published afterwards reach
      // it. During an outage, wait (bounded) for the reconnect, which attaches it too.
      for (;;) {
        await this.whenConnected(Math.max(1, deadline - Date.now()));
        const conn = this.conn;
        if (!conn) continue;
        try {
          await subscription.attach(conn);
          return subscription;
        } catch (err) {
          if (this.conn === conn || Date.now() >= deadline) throw err;
          // The connection dropped meanwhile: the next one attaches it.
        }
      }
    } catch (err) {
      await subscription.close();
      throw err;
    }
  }

  async deadLetters(group: string): Promise<DeadLetter[]> {
    return this.admin(async (conn) => {
      const channel = await this.openChannel(conn, false);
      try {
        try {
          await channel.checkQueue(this.names.dlq(group));
        } catch (err) {
          if (isNotFound(err)) return [];
          throw err;
        }
        const out: DeadLetter[] = [];
        for (;;) {
          const message = await channel.get(this.names.dlq(group), { noAck: false });
          if (message === false) break;
          out.push(readDeadLetter(message));
        }
        // A peek: requeue everything read (RabbitMQ restores the original positions), then a
        // round trip to the queue so the requeue is done before the next reader looks.
        channel.nackAll(true);
        await channel.checkQueue(this.names.dlq(group));
        return out;
      } finally {
        await quietly(() => channel.close());
      }
    });
  }

  async redrive(group: string, options?: RedriveOptions): Promise<number> {
    const selects = redriveSelects(options);
    return this.admin(async (conn) => {
      const channel = (await this.openChannel(conn, true)) as ConfirmChannel;
      try {
        let count: number;
        try {
          count = (await channel.checkQueue(this.names.dlq(group))).messageCount;
        } catch (err) {
          if (isNotFound(err)) return 0;
          throw err;
        }
        // The default exchange drops a message for a missing queue without a word: make sure.
        await channel.assertQueue(this.names.queue(group), { durable: true });
        // Only what was there when we started: a message that dies again right away stays dead.
        const taken: Message[] = [];
        const skipped: Message[] = [];
        const sends: Promise<void>[] = [];
        while (taken.length + skipped.length < count) {
          const message = await channel.get(this.names.dlq(group), { noAck: false });
          if (message === false) break;
          if (!selects(readDeadLetter(message).event.id)) {
            skipped.push(message);
            continue;
          }
          taken.push(message);
          const headers = { ...(message.properties.headers ?? {}) };
          for (const h of DEAD_HEADERS) delete headers[h];
          sends.push(
            confirmed((cb) =>
              channel.sendToQueue(
                this.names.queue(group),
                message.content,
                {
                  persistent: true,
                  headers,
                  messageId: message.properties.messageId as string | undefined,
                  type: message.properties.type as string | undefined,
                  contentType: message.properties.contentType as string | undefined,
                },
                cb,
              ),
            ),
          );
        }
        try {
          await withTimeout(
            Promise.all(sends),
            this.publishTimeoutMs,
            () => `redrive: the broker did not confirm within ${this.publishTimeoutMs} ms`,
          );
        } finally {
          // Those not asked for go back where they were (RabbitMQ restores their positions).
          for (const m of skipped) channel.nack(m, false, true);
        }
        // Acknowledged only after the copies are confirmed: a failure leaves them dead, not lost.
        for (const m of taken) channel.ack(m);
        return taken.length;
      } finally {
        await quietly(() => channel.close());
      }
    });
  }

  async ready(): Promise<boolean> {
    return this.state === 'open' && this.conn !== undefined;
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.state = 'closed';
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    for (const waiter of [...this.openWaiters]) waiter.reject(new Error('the bus is closed'));
    await Promise.all([...this.subscriptions].map((s) => s.close()));
    await this.connecting?.catch(() => undefined);
    await this.adminTail;
    const conn = this.conn;
    this.conn = undefined;
    this.publisher = undefined;
    if (conn) await closeConnection(conn);
  }

  /** Runs a dead-letter operation on the live connection, one at a time. */
  private admin<T>(op: (conn: ChannelModel) => Promise<T>): Promise<T> {
    const run = this.adminTail.then(() => {
      const conn = this.conn;
      if (this.state !== 'open' || !conn) throw new Error(`not connected to the broker${this.lastError ? ` (${this.lastError})` : ''}`);
      return op(conn);
    });
    this.adminTail = run.catch(() => undefined);
    return run;
  }

  private async openChannel(conn: ChannelModel, confirm: boolean): Promise<Channel> {
    const channel = confirm ? await conn.createConfirmChannel() : await conn.createChannel();
    // A passive check of a missing queue closes the channel with an error: expected here.
    channel.on('error', (err: Error) => this.logger.debug({ err: err.message }, 'admin channel error'));
    return channel;
  }

  /** A method, not a field test: `state` changes across the awaits of `open`, which narrowing cannot see. */
  private isClosed(): boolean {
    return this.state === 'closed';
  }

  private startConnecting(): void {
    this.connecting = this.open().finally(() => {
      this.connecting = undefined;
    });
  }

  private async open(): Promise<void> {
    let conn: ChannelModel | undefined;
    let lost = false;
    try {
      conn = await connect(this.url, {
        clientProperties: { connection_name: this.options.connectionName ?? this.options.service },
        timeout: this.connectTimeoutMs,
      });
      const opened = conn;
      // Errors arrive as 'error' then 'close': log the first, recover on the second. Without a
      // listener an 'error' event would crash the process.
      opened.on('error', (err: Error) => this.logger.warn({ err: err.message }, 'amqp connection error'));
      opened.on('close', (err?: Error) => {
        lost = true;
        this.onConnectionClosed(opened, err);
      });
      if (this.isClosed()) return await closeConnection(opened);
      const publisher = await opened.createConfirmChannel();
      publisher.on('error', (err: Error) => this.logger.warn({ err: err.message }, 'amqp publish channel error'));
      publisher.on('close', () => this.onChannelClosed(opened, publisher === this.publisher, 'publish channel closed'));
      await publisher.assertExchange(this.names.exchange, 'topic', { durable: true });
      if (lost) throw new Error('connection lost during set-up');
      if (this.isClosed()) return await closeConnection(opened);
      this.conn = opened;
      this.publisher = publisher;
      // Resume every subscription (their queues, bindings and consumers) before reporting ready.
      for (const subscription of [...this.subscriptions]) await subscription.attach(opened);
      if (this.isClosed() || this.conn !== opened) return;
      this.state = 'open';
      this.connects += 1;
      this.reconnectAttempt = 0;
      this.lastError = undefined;
      this.logger.info({ url: redact(this.options.url), connects: this.connects }, 'connected to the broker');
      for (const waiter of [...this.openWaiters]) waiter.resolve();
    } catch (err) {
      this.lastError = errorMessage(err);
      this.logger.warn({ err: this.lastError, attempt: this.reconnectAttempt }, 'could not connect to the broker; will retry');
      if (conn && this.conn === conn) this.detach(conn);
      if (conn) await closeConnection(conn);
      this.scheduleReconnect();
    }
  }

  private detach(conn: ChannelModel): void {
    this.conn = undefined;
    this.publisher = undefined;
    for (const subscription of this.subscriptions) subscription.detach(conn);
  }

  private onConnectionClosed(conn: ChannelModel, err?: Error): void {
    if (this.conn !== conn) return;
    this.detach(conn);
    if (this.state === 'closed') return;
    this.state = 'connecting';
    this.lastError = err ? errorMessage(err) : 'connection closed';
    this.logger.warn({ err: this.lastError }, 'lost the broker connection; reconnecting');
    this.scheduleReconnect();
  }

  /**
   * @internal called by AmqpSubscription.
   * A channel closed on its own (a channel-level error, a consumer cancelled by the broker):
   * start over with a fresh connection, which re-asserts everything. When the whole connection
   * is going down its channels close first, so look again after the connection's own event.
   */
  onChannelClosed(conn: ChannelModel, current: boolean, reason: string): void {
    if (!current) return;
    queueMicrotask(() => {
      if (this.conn !== conn || this.state === 'closed') return;
      this.logger.warn({ reason }, 'amqp channel lost; recycling the connection');
      this.onConnectionClosed(conn, new Error(reason));
      void closeConnection(conn);
    });
  }

  private scheduleReconnect(): void {
    if (this.state === 'closed' || this.reconnectTimer) return;
    this.state = 'connecting';
    this.reconnectAttempt += 1;
    const delay = Math.max(0, this.reconnectDelayMs(this.reconnectAttempt));
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.state !== 'closed') this.startConnecting();
    }, delay);
  }
}

async function closeConnection(conn: ChannelModel): Promise<void> {
  if (await quietly(() => conn.close())) return;
  // The broker did not answer the close (a stalled network): drop the socket rather than leave
  // it, and the heartbeat timers with it, to keep the process alive. amqplib has no public call
  // for this, hence the guarded reach into its connection.
  const stream = (conn as unknown as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream;
  stream?.destroy?.();
}

function readDeadLetter(message: Message): DeadLetter {
  const headers = message.properties.headers ?? {};
  const attempts = Number(headers['x-attempts'] ?? 0);
  return toDeadLetter(
    message.content.toString('utf8'),
    String(headers['x-routing-key'] ?? message.properties.type ?? ''),
    String(headers['x-error'] ?? 'unknown'),
    Number.isFinite(attempts) ? attempts : 0,
    String(headers['x-dead-at'] ?? ''),
  );
}

/** One subscription: a channel of its own (prefetch 1, or maxBatch with a batchHandler), re-attached on every new connection. */
class AmqpSubscription implements Subscription {
  private conn: ChannelModel | undefined;
  private attaching: Promise<void> | undefined;
  private channel: ConfirmChannel | undefined;
  private consumerTag: string | undefined;
  private stopping = false;
  /** Deliveries run one after another, also across a reconnect (the old handler finishes first). */
  private chain: Promise<void> = Promise.resolve();
  /** Delivered, not yet handled, in delivery order (up to the prefetch): the next batch comes from here. */
  private readonly waiting: Array<{ channel: ConfirmChannel; message: ConsumeMessage }> = [];
  private wake: (() => void) | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly bus: AmqpBus,
    private readonly options: ResolvedSubscribeOptions,
    private readonly logger: Logger,
    private readonly telemetry: Telemetry,
    private readonly confirmTimeoutMs: number,
  ) {}

  /** Declares the topology and starts consuming on `conn`; idempotent per connection. */
  attach(conn: ChannelModel): Promise<void> {
    if (this.stopping) return Promise.resolve();
    if (this.conn === conn && this.attaching) return this.attaching;
    this.conn = conn;
    const attaching = this.consume(conn).catch((err: unknown) => {
      if (this.attaching === attaching) {
        this.conn = undefined;
        this.attaching = undefined;
      }
      throw err;
    });
    this.attaching = attaching;
    return attaching;
  }

  private async consume(conn: ChannelModel): Promise<void> {
    const { group, types } = this.options;
    const channel = await conn.createConfirmChannel();
    let consuming = false;
    channel.on('error', (err: Error) => this.logger.warn({ group, err: err.message }, 'amqp consumer channel error'));
    channel.on('close', () => {
      const current = channel === this.channel;
      if (current) {
        this.channel = undefined;
        this.consumerTag = undefined;
        this.wake?.();
      }
      if (consuming && !this.stopping) this.bus.onChannelClosed(conn, current, `consumer channel of ${group} closed`);
    });
    try {
      await channel.assertExchange(this.bus.names.exchange, 'topic', { durable: true });
      if (this.options.ephemeral) {
        // This subscriber's own queue: gone with its connection, bounded while it lags.
        await channel.assertQueue(this.bus.names.queue(group), {
          durable: false,
          exclusive: true,
          autoDelete: true,
          arguments: { 'x-max-length': 10_000, 'x-overflow': 'drop-head', 'x-message-ttl': 60_000 },
        });
      } else {
        await channel.assertQueue(this.bus.names.queue(group), { durable: true });
        await channel.assertQueue(this.bus.names.dlq(group), { durable: true });
      }
      for (const type of types) await channel.bindQueue(this.bus.names.queue(group), this.bus.names.exchange, type);
      // One at a time without a batchHandler; with one, up to maxBatch in hand (they are still
      // handled in order, and unacknowledged ones return to the queue if the process dies).
      await channel.prefetch(this.options.maxBatch);
      if (this.stopping || this.conn !== conn) {
        await quietly(() => channel.close());
        return;
      }
      this.channel = channel;
      const { consumerTag } = await channel.consume(this.bus.names.queue(group), (message) => this.onMessage(conn, channel, message), {
        noAck: false,
      });
      // The channel may have closed (or the connection dropped) while consume was in flight.
      if (this.channel !== channel) throw new Error(`consumer channel of ${group} closed while starting`);
      this.consumerTag = consumerTag;
      consuming = true;
      if (this.stopping) {
        // close() ran meanwhile and found no consumer to cancel: this one must not outlive it.
        await quietly(() => channel.close());
      }
    } catch (err) {
      consuming = false;
      if (this.channel === channel) this.channel = undefined;
      await quietly(() => channel.close());
      throw err;
    }
  }

  /** The connection is gone: its channel with it; the message in hand stops retrying (the broker redelivers it). */
  detach(conn: ChannelModel): void {
    if (this.conn !== conn) return;
    this.conn = undefined;
    this.attaching = undefined;
    this.channel = undefined;
    this.consumerTag = undefined;
    this.wake?.();
  }

  private onMessage(conn: ChannelModel, channel: ConfirmChannel, message: ConsumeMessage | null): void {
    if (message === null) {
      // The broker cancelled the consumer (its queue was deleted): start over, which re-declares it.
      this.logger.warn({ group: this.options.group }, 'consumer cancelled by the broker');
      if (!this.stopping)
        this.bus.onChannelClosed(conn, channel === this.channel, `consumer of ${this.options.group} cancelled by the broker`);
      return;
    }
    this.waiting.push({ channel, message });
    this.chain = this.chain
      .then(() => this.drain())
      .catch((err: unknown) => this.logger.error({ group: this.options.group, err: errorMessage(err) }, 'amqp delivery failed'));
  }

  /** Takes what waits from one channel (up to maxBatch) and handles it; a later link finds the rest. */
  private async drain(): Promise<void> {
    const channel = this.waiting[0]?.channel;
    if (!channel) return;
    let n = 0;
    while (n < this.waiting.length && n < this.options.maxBatch && this.waiting[n]?.channel === channel) n++;
    const messages = this.waiting.splice(0, n).map((w) => w.message);
    // A channel that closed took its unacknowledged messages back: the broker redelivers them.
    if (this.channel !== channel) return;
    const parsed = messages.map((m) => parseEnvelope(m.content.toString('utf8'), m.fields.routingKey));
    const events = parsed.flatMap((p) => (p.ok ? [p.event] : []));
    if (events.length === messages.length && (await deliverBatch(events, this.options, this.control(channel)))) {
      for (const e of events) this.telemetry.metrics.eventsConsumed.inc({ service: this.options.group, type: e.type });
      for (const m of messages) this.settle(channel, m, 'ack');
      return;
    }
    for (const m of messages) await this.process(channel, m);
  }

  private control(channel: ConfirmChannel): DeliveryControl {
    return { stopped: () => this.stopping || this.channel !== channel, wait: (ms) => this.wait(ms), logger: this.logger };
  }

  private async process(channel: ConfirmChannel, message: ConsumeMessage): Promise<void> {
    const { group } = this.options;
    const parsed = parseEnvelope(message.content.toString('utf8'), message.fields.routingKey);
    if (!parsed.ok) {
      await this.deadLetter(channel, message, parsed.error, 0);
      return;
    }
    const outcome = await deliverWithRetries(parsed.event, this.options, this.control(channel));
    if (outcome.kind === 'handled') {
      this.telemetry.metrics.eventsConsumed.inc({ service: group, type: parsed.event.type });
      this.settle(channel, message, 'ack');
    } else if (outcome.kind === 'dead') {
      await this.deadLetter(channel, message, outcome.error, outcome.attempts, parsed.event.id);
    } else if (this.channel === channel) {
      this.settle(channel, message, 'requeue');
    }
  }

  /** Acks or requeues; on a channel that already closed the broker has requeued it (and redelivers: at least once). */
  private settle(channel: ConfirmChannel, message: ConsumeMessage, how: 'ack' | 'requeue'): void {
    try {
      if (how === 'ack') channel.ack(message);
      else channel.nack(message, false, true);
    } catch (err) {
      this.logger.warn(
        { group: this.options.group, err: errorMessage(err) },
        `could not ${how} (channel closed); the broker will redeliver`,
      );
    }
  }

  private async deadLetter(channel: ConfirmChannel, message: ConsumeMessage, error: string, attempts: number, eventId = ''): Promise<void> {
    const { group } = this.options;
    if (this.options.ephemeral) {
      // An ephemeral queue keeps no dead letters: the event is dropped, and said so.
      this.logger.warn(
        { group, eventId, error: error.slice(0, MAX_ERROR_CHARS) },
        'ephemeral subscriber dropped an event it could not handle',
      );
      this.settle(channel, message, 'ack');
      return;
    }
    const headers = {
      ...(message.properties.headers ?? {}),
      'x-error': error.slice(0, MAX_ERROR_CHARS),
      'x-attempts': attempts,
      'x-dead-at': new Date().toISOString(),
      'x-routing-key': message.fields.routingKey,
      'x-group': group,
    };
    try {
      // Confirmed before the ack: the message is in one queue or the other, never in neither.
      await withTimeout(
        confirmed((cb) =>
          channel.sendToQueue(
            this.bus.names.dlq(group),
            message.content,
            {
              persistent: true,
              headers,
              messageId: message.properties.messageId as string | undefined,
              type: message.properties.type as string | undefined,
              contentType: message.properties.contentType as string | undefined,
            },
            cb,
          ),
        ),
        this.confirmTimeoutMs,
        () => `dead letter not confirmed within ${this.confirmTimeoutMs} ms`,
      );
    } catch (err) {
      this.logger.error({ group, err: errorMessage(err) }, 'could not dead-letter; returning the message to the queue');
      if (this.channel === channel) this.settle(channel, message, 'requeue');
      return;
    }
    this.settle(channel, message, 'ack');
    reportDeadLetter(this.telemetry, this.logger, { group, type: message.fields.routingKey, eventId, attempts, error });
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

  close(): Promise<void> {
    this.closing ??= this.stop();
    return this.closing;
  }

  /** Stops consuming: the consumer is cancelled first, the message in hand finishes its attempt or is requeued. */
  private async stop(): Promise<void> {
    this.stopping = true;
    this.bus.subscriptions.delete(this);
    await this.attaching?.catch(() => undefined);
    const channel = this.channel;
    const tag = this.consumerTag;
    if (channel && tag) await quietly(() => channel.cancel(tag));
    this.wake?.();
    await this.chain;
    if (channel) await quietly(() => channel.close());
    this.channel = undefined;
    this.conn = undefined;
  }
}
