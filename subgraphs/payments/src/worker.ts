import { randomUUID } from 'node:crypto';
import { Counter, Histogram } from 'prom-client';
import type { BackgroundWorker } from '@shop/server';
import { inBackground } from '@shop/store';
import type { Telemetry } from '@shop/telemetry';
import type { OperationRow, Outcome, PaymentRow, PaymentsRepository } from './data/repository';
import {
  type Payment,
  type ProviderCall,
  type ProviderResult,
  afterCall,
  afterResolve,
  giveUp,
  idempotencyKey,
  plan,
  retryDelayMs,
  stateReply,
} from './domain';
import { withDeadline } from './provider/deadline';
import { type PaymentProvider, ProviderError, type ProviderStatus } from './provider/provider';

/** How the worker paces itself. */
export interface WorkerOptions {
  /** `PSP_MAX_ATTEMPTS`: provider calls for one authorization before it is FAILED (PaymentUnavailable). @default 5 */
  maxAttempts: number;
  /** `PSP_CALL_TIMEOUT_MS`: how long one provider call may take; past it the outcome is unknown. @default 2000 */
  callTimeoutMs: number;
  /** How often it looks for due operations when nothing kicked it: what resumes work after a crash. @default 200 */
  pollMs?: number;
  /** The first retry's pause; doubled per attempt, with jitter. @default 100 */
  retryBaseMs?: number;
  /** The longest pause between two attempts (also between a FAILED payment's status queries). @default 5000 */
  retryMaxMs?: number;
  /** Operations in flight at once (each one payment's). @default 32 */
  concurrency?: number;
}

/** `payments_provider_calls_total` and `payments_provider_call_duration_seconds`, once per registry. */
function providerMetrics(telemetry: Telemetry) {
  const registry = telemetry.registry;
  const calls =
    (registry.getSingleMetric('payments_provider_calls_total') as Counter<'service' | 'operation' | 'outcome'> | undefined) ??
    new Counter({
      name: 'payments_provider_calls_total',
      help: 'Calls to the payment provider by operation (authorize, capture, void, refund, status) and outcome (approved, declined, found, not_found, timeout, unavailable, rejected)',
      labelNames: ['service', 'operation', 'outcome'],
      registers: [registry],
    });
  const duration =
    (registry.getSingleMetric('payments_provider_call_duration_seconds') as Histogram<'service' | 'operation'> | undefined) ??
    new Histogram({
      name: 'payments_provider_call_duration_seconds',
      help: 'Time a payment provider call took, until its answer or payments gave up on it',
      labelNames: ['service', 'operation'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
  return { calls, duration };
}

/**
 * Performs the provider calls payments' commands asked for, outside any store transaction: the
 * command handler only recorded the intent (the payment and a pending operation, in the inbox's
 * transaction); the worker claims due operations with a lease, calls the provider under the
 * operation's idempotency key, and records the outcome, the payment's new state and the reply to
 * the saga in one transaction. An attempt without an answer is recorded with a jittered backoff;
 * a timeout marks the operation uncertain, and its next attempt asks the provider for the key's
 * status before calling again. Leases make a crashed worker's operations someone else's after
 * `leaseMs`; polling makes a restarted process find them.
 */
export class PaymentWorker implements BackgroundWorker {
  /** This worker's name on the leases it takes: a restarted process is a new owner. */
  private readonly owner = randomUUID();
  private readonly pollMs: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly concurrency: number;
  /** Long enough for an attempt's calls (at most two, each with its deadline) and their recording. */
  private readonly leaseMs: number;
  private readonly metrics: ReturnType<typeof providerMetrics>;
  private readonly inFlight = new Map<string, Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private kicked = false;
  private stopped = true;
  /** Aborted by `stop`: calls in flight stop waiting (their outcome unknown, recorded so). */
  private shutdown = new AbortController();

  constructor(
    private readonly repository: PaymentsRepository,
    private readonly provider: PaymentProvider,
    private readonly telemetry: Telemetry,
    private readonly options: WorkerOptions,
  ) {
    this.pollMs = options.pollMs ?? 200;
    this.retryBaseMs = options.retryBaseMs ?? 100;
    this.retryMaxMs = options.retryMaxMs ?? 5000;
    this.concurrency = options.concurrency ?? 32;
    this.leaseMs = 2 * options.callTimeoutMs + 5000;
    this.metrics = providerMetrics(telemetry);
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.shutdown = new AbortController();
    this.schedule(0);
  }

  kick(): void {
    if (this.stopped) return;
    this.kicked = true;
    if (!this.running) this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    this.shutdown.abort();
    await Promise.all(this.inFlight.values());
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.loop(), ms);
    this.timer.unref();
  }

  private async loop(): Promise<void> {
    if (this.stopped || this.running) return;
    this.kicked = false;
    let wait = this.pollMs;
    this.running = inBackground(async () => {
      await this.pass();
      const next = await this.repository.nextDueAt();
      if (next !== null) wait = Math.min(wait, Math.max(0, Date.parse(next) - Date.now()));
    }).catch((err: unknown) => this.telemetry.logger.error({ err }, 'payments worker pass failed'));
    await this.running;
    this.running = undefined;
    if (this.stopped) return;
    // A kick during the pass: what it committed may have been read before the commit.
    this.schedule(this.kicked ? 0 : Math.max(wait, this.inFlight.size >= this.concurrency ? this.pollMs : 0));
  }

  /** Claims what is due, up to the free room, and starts each; an operation that finishes kicks the next pass. */
  private async pass(): Promise<void> {
    const room = this.concurrency - this.inFlight.size;
    if (room <= 0) return;
    const now = new Date();
    const until = new Date(now.getTime() + this.leaseMs).toISOString();
    for (const op of await this.repository.due(now.toISOString(), room)) {
      if (this.stopped || this.inFlight.has(op.id)) continue;
      if (!(await this.repository.claim(op.id, this.owner, now.toISOString(), until))) continue;
      const work = inBackground(() => this.process(op))
        .catch((err: unknown) =>
          this.telemetry.logger.error({ err, operation: op.id }, 'payment operation failed; retried after its lease'),
        )
        .finally(() => {
          this.inFlight.delete(op.id);
          this.kick();
        });
      this.inFlight.set(op.id, work);
    }
  }

  /** One attempt at one operation: plan, call the provider if the plan says so, record the outcome. */
  private async process(op: OperationRow): Promise<void> {
    const payment = await this.repository.payment(op.paymentId);
    if (!payment) throw new Error(`operation ${op.id} names payment ${op.paymentId}, which does not exist`);
    const step = plan(op.operation, payment);
    switch (step.kind) {
      case 'wait':
        await this.repository.retryLater(op, this.owner, {
          calls: 0,
          uncertain: op.uncertain,
          nextAttemptAt: new Date(Date.now() + this.pollMs).toISOString(),
          error: null,
        });
        return;
      case 'answer':
        await this.repository.complete(op, this.owner, { payment: null, reply: step.reply, calls: 0 });
        return;
      case 'call':
        return this.call(op, payment, step.call);
      case 'resolve':
        return this.resolve(op, payment);
    }
  }

  /** A provider call, after a status query when an earlier attempt's outcome is unknown. */
  private async call(op: OperationRow, payment: PaymentRow, call: ProviderCall): Promise<void> {
    const key = idempotencyKey(payment.checkoutId, call);
    let calls = 0;
    try {
      let result: ProviderResult | undefined;
      if (op.uncertain) {
        // The last attempt may have reached the provider: ask what it did before doing anything.
        calls += 1;
        const status = await this.status(key);
        if (status.found) result = status;
      }
      if (!result) {
        calls += 1;
        result = await this.invoke(call, key, payment);
      }
      await this.repository.complete(op, this.owner, { ...afterCall(payment, call, result), calls });
    } catch (err) {
      await this.failed(op, payment, err, calls);
    }
  }

  /**
   * A FAILED payment whose authorization's outcome is unknown: ask the provider, and void an
   * authorization it finds (under the checkout's void key, so a void the saga asks for later is
   * the same call). Never gives up: money may be held.
   */
  private async resolve(op: OperationRow, payment: PaymentRow): Promise<void> {
    let calls = 1;
    try {
      const status = await this.status(idempotencyKey(payment.checkoutId, 'authorize'));
      let found: { authorization: string; voided: true } | null = null;
      if (status.found && status.outcome === 'approved') {
        calls += 1;
        const key = idempotencyKey(payment.checkoutId, 'void');
        const result = await this.invoke('void', key, { ...payment, authorization: status.reference });
        if (result.outcome !== 'approved') throw new ProviderError('rejected', `void of ${status.reference} declined: ${result.reason}`);
        found = { authorization: status.reference, voided: true };
        this.telemetry.logger.warn(
          { payment: payment.id, authorization: status.reference },
          'the provider had authorized a payment reported unavailable: voided',
        );
      }
      await this.repository.complete(op, this.owner, { ...afterResolve(payment, op.operation, found), calls });
    } catch (err) {
      await this.failed(op, payment, err, calls, { resolving: true });
    }
  }

  /** An attempt without an answer: give up (authorizations only), record a refusal, or try again later. */
  private async failed(op: OperationRow, payment: Payment, err: unknown, calls: number, how: { resolving?: boolean } = {}): Promise<void> {
    const error = asProviderError(err);
    const attempts = op.attempts + calls;
    const uncertain = op.uncertain || error.kind === 'timeout';
    if (error.kind === 'rejected' && !how.resolving) {
      this.telemetry.logger.error({ err: error, operation: op.id }, 'the payment provider refused a call');
      const outcome: Outcome =
        op.operation === 'authorize'
          ? { ...afterCall(payment, 'authorize', { outcome: 'declined', reason: 'PROVIDER_REJECTED' }), calls, error: error.message }
          : { payment: null, reply: stateReply(payment), calls, error: error.message };
      await this.repository.complete(op, this.owner, outcome);
      return;
    }
    // Shutting down is not the provider's fault: the attempt counts, the give-up waits for a real one.
    const shuttingDown = this.shutdown.signal.aborted;
    if (op.operation === 'authorize' && attempts >= this.options.maxAttempts && !shuttingDown) {
      this.telemetry.logger.warn({ operation: op.id, attempts, uncertain }, 'payment provider unavailable: authorization FAILED');
      await this.repository.complete(op, this.owner, { ...giveUp(payment, uncertain), calls, error: error.message, reconcile: uncertain });
      return;
    }
    const delay = shuttingDown ? 0 : retryDelayMs(attempts, Math.random(), this.retryBaseMs, this.retryMaxMs);
    await this.repository.retryLater(op, this.owner, {
      calls,
      uncertain,
      nextAttemptAt: new Date(Date.now() + delay).toISOString(),
      error: error.message,
    });
  }

  private invoke(call: ProviderCall, key: string, payment: Payment): Promise<ProviderResult> {
    return this.timed(call, (signal) => {
      const base = { idempotencyKey: key, signal };
      if (call === 'authorize')
        return this.provider.authorize({ ...base, amount: payment.amount, currency: payment.currency, reference: payment.id });
      const authorization = payment.authorization;
      if (!authorization) throw new ProviderError('rejected', `${call} of payment ${payment.id}, which has no authorization`);
      if (call === 'void') return this.provider.void({ ...base, authorization });
      const request = { ...base, authorization, amount: payment.amount };
      return call === 'capture' ? this.provider.capture(request) : this.provider.refund(request);
    }).then(
      (result) => {
        this.metrics.calls.inc({ service: this.telemetry.service, operation: call, outcome: result.outcome });
        return result;
      },
      (err: unknown) => {
        this.metrics.calls.inc({ service: this.telemetry.service, operation: call, outcome: asProviderError(err).kind });
        throw err;
      },
    );
  }

  private status(key: string): Promise<ProviderStatus> {
    return this.timed('status', (signal) => this.provider.status({ idempotencyKey: key, signal })).then(
      (status) => {
        this.metrics.calls.inc({ service: this.telemetry.service, operation: 'status', outcome: status.found ? 'found' : 'not_found' });
        return status;
      },
      (err: unknown) => {
        this.metrics.calls.inc({ service: this.telemetry.service, operation: 'status', outcome: asProviderError(err).kind });
        throw err;
      },
    );
  }

  /**
   * A call with its deadline (`callTimeoutMs`, or the shutdown): past it the call counts as a
   * timeout whatever the adapter does, so a provider that never answers holds nothing up.
   */
  private async timed<T>(operation: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const stopTimer = this.metrics.duration.startTimer({ service: this.telemetry.service, operation });
    try {
      return await withDeadline(
        this.options.callTimeoutMs,
        this.shutdown.signal,
        fn,
        () => new ProviderError('timeout', `no answer from the payment provider within ${this.options.callTimeoutMs} ms`),
      );
    } finally {
      stopTimer();
    }
  }
}

/** Anything an adapter throws that is not a ProviderError leaves the outcome unknown: a timeout. */
function asProviderError(err: unknown): ProviderError {
  if (err instanceof ProviderError) return err;
  return new ProviderError('timeout', err instanceof Error ? err.message : String(err));
}
