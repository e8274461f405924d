// The gateway's subscriptions: who follows what, and, for each bus event, running the operation
// of every subscriber it concerns through the same Apollo pipeline as a query (trusted documents,
// authorization, cost, our executor with its batching and caches), with the event handed to the
// field's owner. The transports (ws.ts, sse.ts) only carry what this yields.
import { randomUUID } from 'node:crypto';
import type { ApolloServer } from '@apollo/server';
import {
  type FormattedExecutionResult,
  GraphQLError,
  type OperationDefinitionNode,
  getOperationAST,
  parse,
  valueFromASTUntyped,
} from 'graphql';
import type { Identity } from '@shop/server';
import type { Logger } from '@shop/telemetry';
import type { SubscriptionEventFields, SubscriptionPhase } from '../execute';
import { type EventTopic, type EventTopics, matchedValue } from './topics';

/** What a client sends to subscribe (graphql-ws's `subscribe` payload, or an SSE request's body). */
export interface SubscribeRequest {
  query: string;
  variables?: Record<string, unknown> | null | undefined;
  operationName?: string | null | undefined;
  extensions?: Record<string, unknown> | null | undefined;
}

/** The caller and the stream a subscription belongs to. */
export interface Subscriber {
  identity: Identity | undefined;
  /** The connection (a WebSocket, an SSE stream): its own count of subscriptions. */
  connection: { id: string; active: number };
  logger: Logger;
}

/** The context the hub builds for each run of a subscriber's operation. */
export type ContextFor = (subscriber: Subscriber, requestId: string, phase: SubscriptionPhase | undefined) => object;

export interface HubLimits {
  /** Active subscriptions on one connection. */
  perConnection: number;
  /** Active subscriptions of one user (per replica). */
  perUser: number;
  /** Active subscriptions on this replica. */
  total: number;
  /** Events waiting (to run or to be read) per subscription before it is ended as too slow. */
  queue: number;
  /** Event runs at once on this replica. */
  concurrency: number;
}

export const defaultHubLimits: HubLimits = { perConnection: 20, perUser: 50, total: 20_000, queue: 32, concurrency: 64 };

/** Codes a subscription ends or is refused with. */
export const SUBSCRIPTION_LIMIT = 'SUBSCRIPTION_LIMIT';
export const SLOW_CONSUMER = 'SLOW_CONSUMER';
export const SHUTTING_DOWN = 'SHUTTING_DOWN';
export const SUBSCRIPTION_NOT_FED = 'SUBSCRIPTION_NOT_FED';

export interface HubOptions {
  apollo: ApolloServer<never>;
  logger: Logger;
  topics: () => EventTopics;
  contextFor: ContextFor;
  limits?: Partial<HubLimits>;
  /** Awaited before an event is run for anyone: evicts what the event changed from the gateway's caches. */
  beforeDispatch?: (event: HubEvent) => Promise<void>;
  /** Largest number of tokens a subscription document may have (the gateway's document limit). */
  maxTokens?: number;
  onMetrics?: {
    active(delta: number): void;
    delivered(field: string, seconds: number): void;
    ended(reason: string): void;
  };
}

/** A bus event as the hub needs it. */
export type HubEvent = SubscriptionEventFields & { source: string; occurredAt?: string };

/** A subscription's stream of results; `return()` ends it (the client completed or went away). */
export type ResultStream = AsyncIterableIterator<FormattedExecutionResult> & {
  return(): Promise<IteratorResult<FormattedExecutionResult>>;
};

/** Either the stream, or the errors that refused the subscription. */
export type SubscribeOutcome = { ok: true; stream: ResultStream } | { ok: false; errors: readonly GraphQLError[] };

/**
 * Whether a request's operation is a subscription: parsed with the gateway's token limit (a
 * hostile document costs linear time, once); a document that does not parse is not one (it is
 * run as a query, and the pipeline reports why it does not parse).
 */
export function isSubscriptionRequest(request: SubscribeRequest, maxTokens: number): boolean {
  try {
    const document = parse(request.query, { noLocation: true, maxTokens });
    return getOperationAST(document, request.operationName)?.operation === 'subscription';
  } catch {
    return false;
  }
}

const coded = (message: string, code: string) => new GraphQLError(message, { extensions: { code } });

/** A small counting semaphore: at most `limit` event runs at once. */
class Limiter {
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly limit: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.running++;
    try {
      return await fn();
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }
}

class ActiveSubscription implements ResultStream {
  readonly id = randomUUID();
  /** Results made and not yet read. */
  private readonly results: FormattedExecutionResult[] = [];
  private readonly readers: Array<(r: IteratorResult<FormattedExecutionResult>) => void> = [];
  /** Events accepted and not yet run, plus results not yet read: bounded by `limits.queue`. */
  private backlog = 0;
  private chain: Promise<void> = Promise.resolve();
  /** Per aggregate (source and id), the newest version run: a redelivered or older event is skipped. */
  private readonly versions = new Map<string, number>();
  /** Until the subscriber's check passes, events wait here (none is lost between check and start). */
  private held: HubEvent[] | undefined = [];
  done = false;
  /** Resolves once the stream has ended and its reader has taken every result (the transport sent them). */
  readonly drained: Promise<void>;
  private onDrained!: () => void;

  constructor(
    private readonly hub: SubscriptionHub,
    readonly subscriber: Subscriber,
    readonly request: SubscribeRequest,
    readonly topic: EventTopic,
    readonly key: string,
  ) {
    this.drained = new Promise((resolve) => (this.onDrained = resolve));
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** An event for this subscriber: run after the ones before it, in bus order. */
  accept(event: HubEvent): void {
    if (this.done) return;
    if (this.held) {
      this.held.push(event);
      return;
    }
    const aggregate = `${event.source}\0${event.aggregateId}`;
    const last = this.versions.get(aggregate);
    if (last !== undefined && event.aggregateVersion <= last) return;
    this.versions.set(aggregate, event.aggregateVersion);
    if (++this.backlog > this.hub.limits.queue) {
      this.fail(coded('The subscription fell too far behind its events and was ended; subscribe again.', SLOW_CONSUMER), 'slow_consumer');
      return;
    }
    const accepted = performance.now();
    this.chain = this.chain.then(() => this.runEvent(event, accepted));
  }

  /** The check passed: the events that arrived meanwhile run now. */
  start(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const event of held) this.accept(event);
  }

  private async runEvent(event: HubEvent, accepted: number): Promise<void> {
    if (this.done) return;
    const result = await this.hub.run(this, { phase: 'event', event }, `${this.id}:${event.id}`);
    if (this.done) return;
    this.hub.options.onMetrics?.delivered(this.topic.field, (performance.now() - accepted) / 1000);
    this.push(result);
  }

  /** A result in place of the event it was made for (the backlog is unchanged until it is read). */
  private push(result: FormattedExecutionResult): void {
    const reader = this.readers.shift();
    if (reader) {
      this.backlog--;
      reader({ value: result, done: false });
    } else this.results.push(result);
  }

  /** Ends the stream with one last result carrying `error` (the transport then completes it). */
  fail(error: GraphQLError, reason: string): void {
    if (this.done) return;
    this.results.push({ errors: [error.toJSON()] });
    this.finish(reason);
    // Whoever waits gets the error now, then the end.
    while (this.readers.length > 0 && this.results.length > 0) this.readers.shift()?.({ value: this.results.shift()!, done: false });
    for (const reader of this.readers.splice(0)) reader({ value: undefined, done: true });
  }

  private finish(reason: string): void {
    if (this.done) return;
    this.done = true;
    this.held = undefined;
    this.hub.release(this, reason);
  }

  next(): Promise<IteratorResult<FormattedExecutionResult>> {
    const value = this.results.shift();
    if (value) {
      this.backlog = Math.max(0, this.backlog - 1);
      return Promise.resolve({ value, done: false });
    }
    if (this.done) {
      this.onDrained();
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve) => this.readers.push(resolve));
  }

  return(): Promise<IteratorResult<FormattedExecutionResult>> {
    this.finish('complete');
    this.onDrained();
    this.results.length = 0;
    for (const reader of this.readers.splice(0)) reader({ value: undefined, done: true });
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(): Promise<IteratorResult<FormattedExecutionResult>> {
    return this.return();
  }
}

/**
 * Subscriptions on this replica, indexed by what feeds them (`field \0 matched value`): an event
 * reaches exactly the subscribers whose argument it matches, each in bus order, each once.
 */
export class SubscriptionHub {
  readonly limits: HubLimits;
  private readonly byKey = new Map<string, Set<ActiveSubscription>>();
  private readonly perUser = new Map<string, number>();
  private count = 0;
  private readonly limiter: Limiter;
  private closed = false;

  constructor(readonly options: HubOptions) {
    this.limits = { ...defaultHubLimits, ...options.limits };
    this.limiter = new Limiter(this.limits.concurrency);
  }

  /** Subscriptions registered and still being checked (their events are held). */
  private checking = 0;

  /** Active subscriptions on this replica: checked, and fed every event that concerns them. */
  get active(): number {
    return this.count - this.checking;
  }

  /**
   * Subscribes: checks the caps, registers the subscription (events are held from here), runs
   * the operation once with phase `check` (validation, authorization, cost, and the owner's own
   * check of the caller and the object), and either starts the stream or refuses with the errors.
   */
  async subscribe(request: SubscribeRequest, subscriber: Subscriber): Promise<SubscribeOutcome> {
    if (this.closed) return { ok: false, errors: [coded('The server is shutting down; subscribe again.', SHUTTING_DOWN)] };
    const user = subscriber.identity?.sub;
    const { perConnection, perUser, total } = this.limits;
    if (subscriber.connection.active >= perConnection)
      return { ok: false, errors: [coded(`A connection may hold at most ${perConnection} subscriptions.`, SUBSCRIPTION_LIMIT)] };
    if (user !== undefined && (this.perUser.get(user) ?? 0) >= perUser)
      return { ok: false, errors: [coded(`A user may hold at most ${perUser} subscriptions.`, SUBSCRIPTION_LIMIT)] };
    if (this.count >= total) return { ok: false, errors: [coded('This server holds all the subscriptions it can.', SUBSCRIPTION_LIMIT)] };

    const target = this.targetOf(request);
    const sub = target ? new ActiveSubscription(this, subscriber, request, target.topic, target.key) : undefined;
    if (sub) this.register(sub);
    if (sub) this.checking++;
    let checked: FormattedExecutionResult;
    try {
      checked = await this.runOnce(request, subscriber, { phase: 'check' }, `${subscriber.connection.id}:check:${randomUUID()}`);
    } finally {
      if (sub) this.checking--;
    }
    if (checked.errors && checked.errors.length > 0) {
      void sub?.return();
      return { ok: false, errors: checked.errors.map((e) => new GraphQLError(e.message, { path: e.path, extensions: e.extensions })) };
    }
    if (!sub) {
      // Valid, but no event feeds it (a field without @fromEvents, or an argument that is not a value).
      return { ok: false, errors: [coded('No event feeds this subscription field.', SUBSCRIPTION_NOT_FED)] };
    }
    sub.start();
    return { ok: true, stream: sub };
  }

  /** The topic and index key of a request's root field, or undefined (the check reports what is wrong). */
  private targetOf(request: SubscribeRequest): { topic: EventTopic; key: string } | undefined {
    let operation: OperationDefinitionNode | null | undefined;
    try {
      // Bounded like the gateway's own parse: a hostile document costs linear time, once.
      operation = getOperationAST(
        parse(request.query, { noLocation: true, maxTokens: this.options.maxTokens ?? 15_000 }),
        request.operationName,
      );
    } catch {
      return undefined;
    }
    if (operation?.operation !== 'subscription' || operation.selectionSet.selections.length !== 1) return undefined;
    const field = operation.selectionSet.selections[0];
    if (field?.kind !== 'Field') return undefined;
    const topic = this.options.topics().byField.get(field.name.value);
    if (!topic) return undefined;
    const arg = field.arguments?.find((a) => a.name.value === topic.arg);
    if (!arg) return undefined;
    const value =
      arg.value.kind === 'Variable'
        ? (request.variables ?? {})[arg.value.name.value]
        : valueFromASTUntyped(arg.value, request.variables ?? {});
    if (typeof value !== 'string' && typeof value !== 'number') return undefined;
    return { topic, key: `${topic.field}\0${String(value)}` };
  }

  private register(sub: ActiveSubscription): void {
    let set = this.byKey.get(sub.key);
    if (!set) this.byKey.set(sub.key, (set = new Set()));
    set.add(sub);
    this.count++;
    sub.subscriber.connection.active++;
    const user = sub.subscriber.identity?.sub;
    if (user !== undefined) this.perUser.set(user, (this.perUser.get(user) ?? 0) + 1);
    this.options.onMetrics?.active(1);
  }

  /** Called once per subscription when it ends, whatever ended it. */
  release(sub: ActiveSubscription, reason: string): void {
    const set = this.byKey.get(sub.key);
    if (!set?.delete(sub)) return;
    if (set.size === 0) this.byKey.delete(sub.key);
    this.count--;
    sub.subscriber.connection.active--;
    const user = sub.subscriber.identity?.sub;
    if (user !== undefined) {
      const left = (this.perUser.get(user) ?? 1) - 1;
      if (left > 0) this.perUser.set(user, left);
      else this.perUser.delete(user);
    }
    this.options.onMetrics?.active(-1);
    this.options.onMetrics?.ended(reason);
  }

  /** A bus event: evict what it changed, then hand it to every subscriber it matches. */
  async onEvent(event: HubEvent): Promise<void> {
    const topics = this.options.topics().byType.get(event.type);
    if (!topics || this.count === 0) return;
    const targets: ActiveSubscription[] = [];
    for (const topic of topics) {
      const value = matchedValue(event, topic.match);
      if (value === undefined) continue;
      for (const sub of this.byKey.get(`${topic.field}\0${value}`) ?? []) targets.push(sub);
    }
    if (targets.length === 0) return;
    await this.options.beforeDispatch?.(event);
    for (const sub of targets) sub.accept(event);
  }

  /** One run of a subscriber's operation (bounded by the replica's concurrency). */
  run(sub: ActiveSubscription, phase: SubscriptionPhase, requestId: string): Promise<FormattedExecutionResult> {
    return this.limiter.run(() => this.runOnce(sub.request, sub.subscriber, phase, requestId));
  }

  /** A query or mutation sent over a subscription transport: run once, as over HTTP. */
  execute(request: SubscribeRequest, subscriber: Subscriber, requestId: string): Promise<FormattedExecutionResult> {
    return this.runOnce(request, subscriber, undefined, requestId);
  }

  private async runOnce(
    request: SubscribeRequest,
    subscriber: Subscriber,
    phase: SubscriptionPhase | undefined,
    requestId: string,
  ): Promise<FormattedExecutionResult> {
    try {
      const response = await (this.options.apollo as unknown as ApolloServer<Record<string, unknown>>).executeOperation(
        {
          query: request.query,
          variables: request.variables ?? undefined,
          operationName: request.operationName ?? undefined,
          extensions: request.extensions ?? undefined,
        },
        { contextValue: this.options.contextFor(subscriber, requestId, phase) as Record<string, unknown> },
      );
      if (response.body.kind !== 'single')
        return { errors: [coded('Incremental delivery is not supported in subscriptions.', 'BAD_REQUEST').toJSON()] };
      return response.body.singleResult;
    } catch (err) {
      subscriber.logger.error({ err, requestId }, 'subscription run failed');
      return { errors: [coded('Internal server error', 'INTERNAL_SERVER_ERROR').toJSON()] };
    }
  }

  /**
   * Ends every subscription with `code` (the server drains): each stream's last result says why.
   * Resolves when the transports have taken those last results (at most `graceMs`), so that a
   * socket closed next sends them first.
   */
  closeAll(message: string, code: string, graceMs = 1_000): Promise<void> {
    this.closed = true;
    return this.end(() => true, coded(message, code), code.toLowerCase(), graceMs);
  }

  /** Ends the subscriptions of one connection with `error` (its token expired); resolves as closeAll does. */
  endConnection(connectionId: string, error: GraphQLError, reason: string, graceMs = 1_000): Promise<void> {
    return this.end((sub) => sub.subscriber.connection.id === connectionId, error, reason, graceMs);
  }

  private async end(which: (sub: ActiveSubscription) => boolean, error: GraphQLError, reason: string, graceMs: number): Promise<void> {
    const ending: Array<Promise<void>> = [];
    for (const set of [...this.byKey.values()])
      for (const sub of [...set]) {
        if (!which(sub)) continue;
        sub.fail(error, reason);
        ending.push(sub.drained);
      }
    if (ending.length === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(ending), new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
  }
}
