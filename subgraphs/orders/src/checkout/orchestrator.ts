import {
  AUTHORIZE_PAYMENT,
  CAPTURE_PAYMENT,
  COMMIT_STOCK,
  type CheckoutMessageType,
  type EventEnvelope,
  PAYMENT_AUTHORIZED,
  PAYMENT_CAPTURED,
  PAYMENT_DECLINED,
  PAYMENT_REFUNDED,
  PAYMENT_UNAVAILABLE,
  PAYMENT_VOIDED,
  REFUND_PAYMENT,
  RELEASE_STOCK,
  RESERVE_STOCK,
  RESTOCK,
  STOCK_COMMITTED,
  STOCK_COMMIT_FAILED,
  STOCK_RELEASED,
  STOCK_RESERVATION_FAILED,
  STOCK_RESERVED,
  STOCK_RESTOCKED,
  VOID_PAYMENT,
  appendEvents,
  checkoutMessage,
  parseCheckoutMessage,
} from '@shop/events';
import { EventStore, slotOf } from '@shop/eventstore';
import { newCheckoutId } from '../sharding/ids';
import { DomainError } from '@shop/server';
import { type Kysely, inBackground } from '@shop/store';
import type { Logger, Telemetry } from '@shop/telemetry';
import { Counter, Histogram } from 'prom-client';
import type { OrdersRepository } from '../data/repository';
import type { Order } from '../domain';
import {
  type Checkout,
  type CheckoutEvent,
  type CheckoutState,
  type RecordedCheckoutEvent,
  type Reply,
  type StepName,
  type StepPolicy,
  checkoutStream,
  decideReply,
  decideReverse,
  decideStart,
  decideTimeout,
  evolve,
  isTerminal,
  replayCheckout,
  toCheckoutEvent,
} from './domain';
import type { CheckoutTables } from './projection';

export interface CheckoutOptions extends StepPolicy {
  /** How long inventory holds a reservation before its sweeper releases it. */
  reservationHoldMs: number;
  /** How often the sweeper looks for steps past their deadline. */
  timerIntervalMs: number;
  currency: string;
}

/** Defaults: `CHECKOUT_*` variables override them (see packages/config). */
export const defaultCheckoutOptions: CheckoutOptions = {
  stepTimeoutMs: 5_000,
  maxStepTimeoutMs: 60_000,
  maxAttempts: 4,
  reservationHoldMs: 60_000,
  timerIntervalMs: 500,
  currency: 'EUR',
};

/** The replies the orchestrator consumes, as the decider reads them. */
function replyOf(event: EventEnvelope): Reply {
  switch (event.type) {
    case STOCK_RESERVED:
      parseCheckoutMessage(STOCK_RESERVED, event);
      return { kind: 'stockReserved' };
    case STOCK_RESERVATION_FAILED:
      return { kind: 'stockReservationFailed', lines: parseCheckoutMessage(STOCK_RESERVATION_FAILED, event).lines };
    case STOCK_COMMITTED:
      parseCheckoutMessage(STOCK_COMMITTED, event);
      return { kind: 'stockCommitted' };
    case STOCK_COMMIT_FAILED:
      return { kind: 'stockCommitFailed', reason: parseCheckoutMessage(STOCK_COMMIT_FAILED, event).reason };
    case STOCK_RELEASED:
      return { kind: 'stockReleased', expired: parseCheckoutMessage(STOCK_RELEASED, event).expired };
    case STOCK_RESTOCKED:
      parseCheckoutMessage(STOCK_RESTOCKED, event);
      return { kind: 'stockRestocked' };
    case PAYMENT_AUTHORIZED:
      return { kind: 'paymentAuthorized', paymentId: parseCheckoutMessage(PAYMENT_AUTHORIZED, event).paymentId };
    case PAYMENT_DECLINED: {
      const p = parseCheckoutMessage(PAYMENT_DECLINED, event);
      return { kind: 'paymentDeclined', paymentId: p.paymentId, reason: p.reason };
    }
    case PAYMENT_UNAVAILABLE: {
      const p = parseCheckoutMessage(PAYMENT_UNAVAILABLE, event);
      return { kind: 'paymentUnavailable', paymentId: p.paymentId, reason: p.reason };
    }
    case PAYMENT_CAPTURED:
      return { kind: 'paymentCaptured', paymentId: parseCheckoutMessage(PAYMENT_CAPTURED, event).paymentId };
    case PAYMENT_VOIDED:
      return { kind: 'paymentVoided', paymentId: parseCheckoutMessage(PAYMENT_VOIDED, event).paymentId };
    case PAYMENT_REFUNDED:
      return { kind: 'paymentRefunded', paymentId: parseCheckoutMessage(PAYMENT_REFUNDED, event).paymentId };
    default:
      throw new Error(`not a checkout reply: ${event.type}`);
  }
}

/** The command each step sends. */
const COMMAND_OF: Record<StepName, CheckoutMessageType> = {
  reserveStock: RESERVE_STOCK,
  authorizePayment: AUTHORIZE_PAYMENT,
  commitStock: COMMIT_STOCK,
  capturePayment: CAPTURE_PAYMENT,
  voidPayment: VOID_PAYMENT,
  releaseStock: RELEASE_STOCK,
  refundPayment: REFUND_PAYMENT,
  restock: RESTOCK,
};

const metricsOf = (telemetry: Telemetry) => {
  const registry = telemetry.registry;
  const existing = <T>(name: string) => registry.getSingleMetric(name) as T | undefined;
  return {
    sagas:
      existing<Counter<'outcome' | 'reason'>>('sagas_total') ??
      new Counter({
        name: 'sagas_total',
        help: 'Checkout sagas that ended, by outcome (CONFIRMED, REJECTED, REVERSED) and rejection reason',
        labelNames: ['outcome', 'reason'],
        registers: [registry],
      }),
    steps:
      existing<Histogram<'step' | 'outcome'>>('saga_step_duration_seconds') ??
      new Histogram({
        name: 'saga_step_duration_seconds',
        help: "Time from a checkout step's first command to its reply, by step and outcome (done, failed)",
        labelNames: ['step', 'outcome'],
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
        registers: [registry],
      }),
  };
};

/**
 * The checkout saga's process manager. Its state is the checkout's event stream in orders' event
 * store; every decision is appended in one transaction with what it causes: the commands in the
 * outbox (so the relay sends them through the bus), the step's deadline in `checkout_timers`,
 * and at the end the order's own event (OrderConfirmed, OrderRejected). Replies arrive through
 * orders' inbox, in the inbox's transaction, so each is applied once. Nothing is held in memory:
 * a restarted process finds every open checkout's next deadline in `checkout_timers`, and the
 * sweeper sends the step's command again when it passes (receivers answer a repeated command
 * with the outcome they recorded).
 */
export class CheckoutOrchestrator {
  private readonly metrics: ReturnType<typeof metricsOf>;
  private readonly logger: Logger;
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<unknown> = Promise.resolve();
  private stopped = true;

  constructor(
    private readonly orders: OrdersRepository,
    private readonly events: EventStore,
    private readonly source: string,
    telemetry: Telemetry,
    readonly options: CheckoutOptions = defaultCheckoutOptions,
  ) {
    this.metrics = metricsOf(telemetry);
    this.logger = telemetry.logger;
  }

  private db(trx: Kysely<never>): Kysely<CheckoutTables> {
    return trx as unknown as Kysely<CheckoutTables>;
  }

  /** A checkout's state, read in `trx`. */
  async load(trx: Kysely<never> | undefined, checkoutId: string): Promise<CheckoutState> {
    const stream = await this.events.readStream(checkoutStream(checkoutId), trx ? { db: trx } : {});
    return replayCheckout(stream.map((e) => toCheckoutEvent(e.type, e.data, e.version)));
  }

  /**
   * Starts the checkout of `orderId`, or returns the one this customer already started with this
   * key (sequential and concurrent retries alike: the key's row and the order's version decide
   * one winner; the others read the winner's checkout). `authorize` sees the order first.
   */
  async start(input: {
    orderId: string;
    idempotencyKey: string;
    customerId: string;
    correlationId: string;
    authorize: (order: Order) => void;
  }): Promise<{ checkoutId: string; started: boolean }> {
    const existing = await this.byKey(input.customerId, input.idempotencyKey);
    if (existing) return this.startedBefore(existing, input.orderId);
    const checkoutId = newCheckoutId(input.customerId);
    try {
      await this.orders.transaction(async (trx) => {
        const { order } = await this.orders.executeIn(
          trx,
          input.orderId,
          { type: 'StartCheckout', checkoutId },
          { correlationId: input.correlationId, authorize: input.authorize },
        );
        await this.db(trx)
          .insertInto('checkout_keys')
          .values({
            customer_id: input.customerId,
            idempotency_key: input.idempotencyKey,
            checkout_id: checkoutId,
            order_id: order.id,
            slot: slotOf(input.customerId),
          })
          .execute();
        const now = new Date();
        const events = decideStart(
          {
            checkoutId,
            orderId: order.id,
            customerId: order.customerId,
            idempotencyKey: input.idempotencyKey,
            lines: order.lines.map((l) => ({ productId: l.productId, quantity: l.quantity })),
            amount: order.total,
            currency: this.options.currency,
          },
          now,
          this.options,
        );
        await this.record(trx, null, events, input.correlationId);
      });
    } catch (err) {
      // A concurrent request with the same key (or for the same order) won the race: answer with its checkout.
      const winner = await this.byKey(input.customerId, input.idempotencyKey);
      if (winner) return this.startedBefore(winner, input.orderId);
      throw err;
    }
    await this.orders.projections.catchUp().catch((err: unknown) => this.logger.error({ err }, 'projection catch-up after checkout'));
    return { checkoutId, started: true };
  }

  /**
   * The checkout an earlier or concurrent request started with this key. That request may not
   * have projected it yet (it is still running, its client gave up on it, or its process died
   * after the commit): catch up first, so the caller reads the checkout's view like the first did.
   */
  private async startedBefore(
    found: { checkout_id: string; order_id: string },
    orderId: string,
  ): Promise<{ checkoutId: string; started: boolean }> {
    const same = this.sameOrder(found, orderId);
    await this.orders.projections
      .catchUp()
      .catch((err: unknown) => this.logger.error({ err }, 'projection catch-up after a repeated checkout'));
    return same;
  }

  private sameOrder(found: { checkout_id: string; order_id: string }, orderId: string): { checkoutId: string; started: boolean } {
    if (found.order_id !== orderId) {
      throw new DomainError('CONFLICT', 'this idempotency key was used for the checkout of another order', 'idempotencyKey');
    }
    return { checkoutId: found.checkout_id, started: false };
  }

  private byKey(customerId: string, key: string) {
    return (this.orders.db as unknown as Kysely<CheckoutTables>)
      .selectFrom('checkout_keys')
      .select(['checkout_id', 'order_id'])
      .where('customer_id', '=', customerId)
      .where('idempotency_key', '=', key)
      .executeTakeFirst();
  }

  /** The inbox handler of every reply: decide on the stream as it is in this transaction. */
  async onReply(trx: Kysely<never>, event: EventEnvelope): Promise<void> {
    const reply = replyOf(event);
    const checkoutId = String((event.payload as { checkoutId?: unknown }).checkoutId);
    const state = await this.load(trx, checkoutId);
    if (!state) {
      this.logger.warn({ checkoutId, type: event.type }, 'a reply for a checkout orders does not know: ignored');
      return;
    }
    const decided = decideReply(state, reply, new Date(), this.options);
    await this.record(trx, state, decided, `checkout:${checkoutId}`, event.id);
    // Order.checkout and the order's status read the projections: bring them up once this commits
    // (the poller would, within a second).
    if (decided.length > 0) this.projectSoon();
  }

  private projectTimer: NodeJS.Timeout | undefined;
  private projectSoon(): void {
    if (this.projectTimer || this.stopped) return;
    this.projectTimer = setTimeout(() => {
      this.projectTimer = undefined;
      inBackground(() => this.orders.projections.catchUp()).catch(() => undefined);
    }, 5);
    this.projectTimer.unref();
  }

  /**
   * Cancels an order, and when its checkout had confirmed it, starts the reverse saga (refund,
   * restock) in the same transaction: a cancelled confirmed order is never left unrefunded.
   */
  async cancel(input: {
    orderId: string;
    reason: string | null;
    expectedVersion: number | undefined;
    correlationId: string;
    authorize: (order: Order) => void;
  }): Promise<Order> {
    const order = await this.orders.transaction(async (trx) => {
      const { order: cancelled, events } = await this.orders.executeIn(
        trx,
        input.orderId,
        { type: 'CancelOrder', reason: input.reason },
        { correlationId: input.correlationId, authorize: input.authorize, expectedVersion: input.expectedVersion },
      );
      const wasConfirmed = events.length > 0 && cancelled.checkoutId !== null;
      if (wasConfirmed) await this.reverseIn(trx, cancelled.checkoutId!, input.correlationId);
      return cancelled;
    });
    await this.orders.projections.catchUp().catch((err: unknown) => this.logger.error({ err }, 'projection catch-up after cancel'));
    return order;
  }

  /**
   * Cancelling the order of a confirmed checkout: the reverse saga (refund, restock), in the
   * cancel's own transaction. Other checkouts have nothing to undo.
   */
  async reverseIn(trx: Kysely<never>, checkoutId: string, correlationId: string): Promise<void> {
    const state = await this.load(trx, checkoutId);
    await this.record(trx, state, decideReverse(state, new Date(), this.options), correlationId);
  }

  /**
   * Appends `decided` to the checkout's stream at the version `state` was read at (a concurrent
   * decision makes this one fail and retry), then what the events cause, in the same transaction.
   */
  private async record(
    trx: Kysely<never>,
    state: CheckoutState,
    decided: readonly CheckoutEvent[],
    correlationId: string,
    causationId?: string,
  ): Promise<Checkout | null> {
    if (decided.length === 0) return state;
    const id = state?.id ?? (decided[0] as Extract<CheckoutEvent, { type: 'CheckoutStarted' }>).data.checkoutId;
    const { events } = await this.events.appendIn(
      trx,
      checkoutStream(id),
      decided.map((e) => ({ type: e.type, data: e.data })),
      {
        expectedVersion: state?.version ?? 0,
        partitionKey: state?.customerId ?? (decided[0] as Extract<CheckoutEvent, { type: 'CheckoutStarted' }>).data.customerId,
        metadata: { correlationId, ...(causationId ? { causationId } : {}) },
      },
    );
    let current = state;
    const ended: Array<() => void> = [];
    const published: Array<{ type: string; aggregateId: string; payload: Record<string, unknown> }> = [];
    for (const e of events) {
      const event = toCheckoutEvent(e.type, e.data, e.version);
      const before = current;
      current = evolve(current, event);
      ended.push(...(await this.effects(trx, before, current, event, correlationId)));
      // Published too (schema version 1), in this transaction: the gateway's checkoutProgress
      // subscribers follow them. `version` is the checkout stream's, so a reader can rebuild the
      // checkout exactly as it was after this event.
      if (current)
        published.push({
          type: e.type,
          aggregateId: id,
          payload: {
            ...e.data,
            checkoutId: id,
            orderId: current.orderId,
            customerId: current.customerId,
            version: e.version,
            correlationId,
          },
        });
    }
    if (published.length > 0) await appendEvents(trx, this.source, published);
    if (current && (current.current === null || isTerminal(current.status))) {
      await this.db(trx).deleteFrom('checkout_timers').where('checkout_id', '=', current.id).execute();
    } else if (current?.deadline) {
      const timer = { checkout_id: current.id, due_at: current.deadline, step: current.current ?? '', slot: slotOf(current.customerId) };
      await this.db(trx)
        .insertInto('checkout_timers')
        .values(timer)
        .onConflict((oc) => oc.column('checkout_id').doUpdateSet({ due_at: timer.due_at, step: timer.step }))
        .execute();
    }
    // Counted when decided: the append above already won the stream, so a decision rolled back
    // after this point (a failing outbox write) is rare, and it is counted again when retried.
    for (const f of ended) f();
    return current;
  }

  /** What one event causes, inside the transaction; returns metric updates to make after commit. */
  private async effects(
    trx: Kysely<never>,
    before: CheckoutState,
    state: Checkout,
    event: RecordedCheckoutEvent,
    correlationId: string,
  ): Promise<Array<() => void>> {
    const after: Array<() => void> = [];
    switch (event.type) {
      case 'CheckoutStepStarted':
        await appendEvents(trx, this.source, [this.command(state, event.data.step)]);
        break;
      case 'CheckoutStepSucceeded':
      case 'CheckoutStepFailed': {
        const step = before?.steps.findLast((s) => s.name === event.data.step);
        if (step) {
          const seconds = (Date.parse(event.data.at) - Date.parse(step.startedAt)) / 1000;
          const outcome = event.type === 'CheckoutStepSucceeded' ? 'done' : 'failed';
          after.push(() => this.metrics.steps.observe({ step: event.data.step, outcome }, Math.max(0, seconds)));
        }
        break;
      }
      case 'CheckoutConfirmed':
        await this.orders.executeIn(trx, state.orderId, { type: 'ConfirmOrder', checkoutId: state.id }, { correlationId });
        after.push(() => this.metrics.sagas.inc({ outcome: 'CONFIRMED', reason: '' }));
        break;
      case 'CheckoutRejected':
        await this.orders.executeIn(
          trx,
          state.orderId,
          { type: 'RejectOrder', checkoutId: state.id, reason: event.data.reason },
          { correlationId },
        );
        after.push(() => this.metrics.sagas.inc({ outcome: 'REJECTED', reason: event.data.reason }));
        break;
      case 'CheckoutReversed':
        after.push(() => this.metrics.sagas.inc({ outcome: 'REVERSED', reason: '' }));
        break;
      default:
        break;
    }
    return after;
  }

  /** The message a step sends. */
  private command(state: Checkout, step: StepName) {
    const base = { checkoutId: state.id, orderId: state.orderId };
    switch (COMMAND_OF[step]) {
      case RESERVE_STOCK:
        return checkoutMessage(RESERVE_STOCK, {
          ...base,
          lines: state.lines,
          expiresAt: new Date(Date.now() + this.options.reservationHoldMs).toISOString(),
        });
      case AUTHORIZE_PAYMENT:
        return checkoutMessage(AUTHORIZE_PAYMENT, {
          ...base,
          customerId: state.customerId,
          amount: state.amount,
          currency: state.currency,
          idempotencyKey: state.idempotencyKey,
        });
      case COMMIT_STOCK:
        return checkoutMessage(COMMIT_STOCK, base);
      case CAPTURE_PAYMENT:
        return checkoutMessage(CAPTURE_PAYMENT, base);
      case VOID_PAYMENT:
        return checkoutMessage(VOID_PAYMENT, base);
      case RELEASE_STOCK:
        return checkoutMessage(RELEASE_STOCK, base);
      case REFUND_PAYMENT:
        return checkoutMessage(REFUND_PAYMENT, base);
      default:
        return checkoutMessage(RESTOCK, base);
    }
  }

  /**
   * One pass over the deadlines that have passed: each checkout decides (retry, or fail and
   * compensate) in its own transaction. A checkout another replica or a reply moved on meanwhile
   * fails its append and is looked at again on the next pass.
   */
  async sweep(now = new Date()): Promise<number> {
    const due = await (this.orders.db as unknown as Kysely<CheckoutTables>)
      .selectFrom('checkout_timers')
      .select('checkout_id')
      .where('due_at', '<=', now.toISOString())
      .orderBy('due_at')
      .limit(100)
      .execute();
    let decided = 0;
    for (const { checkout_id: id } of due) {
      try {
        await this.orders.transaction(async (trx) => {
          const state = await this.load(trx, id);
          const events = decideTimeout(state, new Date(), this.options);
          if (events.length > 0) decided++;
          await this.record(trx, state, events, `checkout:${id}`);
        });
      } catch (err) {
        if (!EventStore.isConcurrencyFailure(err))
          this.logger.error({ err, checkoutId: id }, 'checkout deadline pass failed; retried next pass');
      }
    }
    if (decided > 0) await this.orders.projections.catchUp().catch(() => undefined);
    return decided;
  }

  /** Starts the deadline sweeper (every `timerIntervalMs`); `stop` waits for a pass in progress. */
  startSweeper(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const tick = () => {
      if (this.stopped) return;
      // In the background: its queries are not a request's (see inBackground in @shop/store).
      this.sweeping = inBackground(() => this.sweep())
        .catch((err: unknown) => this.logger.error({ err }, 'checkout deadline sweep failed'))
        .finally(() => {
          if (this.stopped) return;
          this.timer = setTimeout(tick, this.options.timerIntervalMs);
          this.timer.unref();
        });
    };
    this.timer = setTimeout(tick, this.options.timerIntervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.projectTimer);
    await this.sweeping;
  }
}
