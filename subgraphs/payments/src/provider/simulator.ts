import { createHash } from 'node:crypto';
import type { PaymentsProviderConfig } from '@shop/config';
import type { LedgerEntry, PspLedger } from '../data/psp-ledger';
import type { ProviderCall, ProviderResult } from '../domain';
import {
  type AuthorizationRequest,
  type AuthorizeRequest,
  type PaymentProvider,
  type ProviderCallOptions,
  ProviderError,
  type ProviderStatus,
} from './provider';

/** How the simulator behaves: the `PSP_*` settings it reads (payments' own ones, attempts and deadline, it ignores). */
export type SimulatorSettings = Pick<PaymentsProviderConfig, 'latencyMs' | 'declineRate' | 'timeoutRate' | 'timeoutChargedRate' | 'seed'>;

/** Why the simulator declines, picked by the key. */
const DECLINE_REASONS = ['INSUFFICIENT_FUNDS', 'CARD_DECLINED', 'EXPIRED_CARD'] as const;

/**
 * A number in [0, 1) that depends only on the seed and the parts: the simulator's dice. A call's
 * fate is a function of the seed, its idempotency key and how many calls that key has had (kept
 * in the ledger), so a test sees the same decisions whatever order its payments run in, and a
 * restarted process continues the same sequence.
 */
export function chance(seed: string, ...parts: Array<string | number>): number {
  const digest = createHash('sha256')
    .update([seed, ...parts].join('\u0000'))
    .digest();
  return digest.readUIntBE(0, 6) / 2 ** 48;
}

/**
 * The default payment provider: a simulator with the behaviour of a real one where it matters to
 * payments. It answers after `latencyMs`; declines a share of authorizations; leaves a share of
 * calls unanswered until the caller gives up (a timeout), and in a share of those did the work
 * anyway (the "timed out but charged" case); records every key it has seen in its ledger (its own
 * table, `psp_simulator_ledger`) and answers a key it has seen from the record, so a retried call
 * never charges twice; tells the status of any key; refuses a capture of a voided authorization,
 * a void of a captured one and a refund of one never captured.
 */
export class SimulatedProvider implements PaymentProvider {
  constructor(
    private readonly ledger: PspLedger,
    private readonly settings: SimulatorSettings,
  ) {}

  authorize(request: AuthorizeRequest): Promise<ProviderResult> {
    return this.call('authorize', request, { amount: request.amount, currency: request.currency }, async (key) => {
      if (chance(this.settings.seed, key, 'decline') < this.settings.declineRate) {
        const reason = DECLINE_REASONS[Math.floor(chance(this.settings.seed, key, 'reason') * DECLINE_REASONS.length)] ?? 'CARD_DECLINED';
        return { outcome: 'declined', reason };
      }
      return { outcome: 'approved', reference: this.reference('auth', key) };
    });
  }

  capture(request: AuthorizationRequest): Promise<ProviderResult> {
    return this.call('capture', request, { authorization: request.authorization, amount: request.amount }, async (key) => {
      const authorization = await this.authorizationOf(request.authorization);
      if (request.amount > (authorization.amount ?? 0))
        throw new ProviderError('rejected', `capture of ${request.amount} exceeds the authorized ${authorization.amount}`);
      const done = await this.ledger.actionsOn(request.authorization);
      if (done.some((e) => e.call === 'void')) throw new ProviderError('rejected', `authorization ${request.authorization} was voided`);
      return { outcome: 'approved', reference: this.reference('cap', key) };
    });
  }

  void(request: ProviderCallOptions & { authorization: string }): Promise<ProviderResult> {
    return this.call('void', request, { authorization: request.authorization }, async (key) => {
      await this.authorizationOf(request.authorization);
      const done = await this.ledger.actionsOn(request.authorization);
      if (done.some((e) => e.call === 'capture'))
        throw new ProviderError('rejected', `authorization ${request.authorization} was captured: refund it instead`);
      return { outcome: 'approved', reference: this.reference('void', key) };
    });
  }

  refund(request: AuthorizationRequest): Promise<ProviderResult> {
    return this.call('refund', request, { authorization: request.authorization, amount: request.amount }, async (key) => {
      await this.authorizationOf(request.authorization);
      const done = await this.ledger.actionsOn(request.authorization);
      if (!done.some((e) => e.call === 'capture'))
        throw new ProviderError('rejected', `authorization ${request.authorization} was never captured: void it instead`);
      return { outcome: 'approved', reference: this.reference('ref', key) };
    });
  }

  async status(request: ProviderCallOptions): Promise<ProviderStatus> {
    const key = request.idempotencyKey;
    await this.wait(this.settings.latencyMs, request.signal);
    const entry = await this.ledger.asked(key);
    // A status query can go unanswered too: the provider is down for everyone.
    if (chance(this.settings.seed, key, 'status', entry.statusCalls, 'timeout') < this.settings.timeoutRate)
      await this.hang(request.signal);
    return statusOf(entry);
  }

  /**
   * One call under its key: latency, then the ledger counts it; then, by the dice for this key's
   * n-th call, a timeout (having done the work or not) or an answer. The work is done at most once
   * per key: a key with an outcome is answered from the ledger.
   */
  private async call(
    call: ProviderCall,
    request: ProviderCallOptions,
    details: { authorization?: string; amount?: number; currency?: string },
    decide: (key: string) => Promise<ProviderResult>,
  ): Promise<ProviderResult> {
    const key = request.idempotencyKey;
    await this.wait(this.settings.latencyMs, request.signal);
    const entry = await this.ledger.received(key, call, details);
    if (entry.call !== call) throw new ProviderError('rejected', `idempotency key ${key} was used for ${entry.call}, not ${call}`);
    const perform = async (): Promise<ProviderResult> => {
      const recorded = entry.outcome ? entry : await this.ledger.perform(key, await decide(key));
      return resultOf(recorded);
    };
    if (chance(this.settings.seed, key, entry.calls, 'timeout') < this.settings.timeoutRate) {
      if (chance(this.settings.seed, key, entry.calls, 'charged') < this.settings.timeoutChargedRate) await perform();
      return this.hang(request.signal);
    }
    return perform();
  }

  private async authorizationOf(reference: string): Promise<LedgerEntry> {
    const authorization = await this.ledger.authorization(reference);
    if (!authorization) throw new ProviderError('rejected', `no approved authorization ${reference}`);
    return authorization;
  }

  private reference(prefix: string, key: string): string {
    return `${prefix}_${createHash('sha256').update(`${this.settings.seed}\u0000${key}`).digest('hex').slice(0, 20)}`;
  }

  /** The latency: cut short by the caller giving up, and then nothing was done. */
  private wait(ms: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(timeoutError());
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(timer);
        reject(timeoutError());
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** No answer: until the caller gives up (payments always calls with a deadline). */
  private hang(signal: AbortSignal): Promise<never> {
    if (signal.aborted) return Promise.reject(timeoutError());
    return new Promise((_, reject) => signal.addEventListener('abort', () => reject(timeoutError()), { once: true }));
  }
}

const timeoutError = () => new ProviderError('timeout', 'the payment provider did not answer in time');

function resultOf(entry: LedgerEntry): ProviderResult {
  if (entry.outcome === 'approved' && entry.reference) return { outcome: 'approved', reference: entry.reference };
  return { outcome: 'declined', reason: entry.reason ?? 'CARD_DECLINED' };
}

function statusOf(entry: LedgerEntry): ProviderStatus {
  if (!entry.outcome || !entry.call) return { found: false };
  return { found: true, call: entry.call, ...resultOf(entry) };
}
