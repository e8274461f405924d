import type { ProviderCall, ProviderResult } from '../domain';

export type { ProviderCall, ProviderResult };

/** What every provider call carries. */
export interface ProviderCallOptions {
  /**
   * The call's idempotency key (see `idempotencyKey`): the provider records the first outcome
   * under it and answers every later call with that key from the record, never doing the work twice.
   */
  idempotencyKey: string;
  /** Aborted when payments stops waiting (its deadline, or a shutdown): the outcome is then unknown. */
  signal: AbortSignal;
}

export interface AuthorizeRequest extends ProviderCallOptions {
  /** Integer cents. */
  amount: number;
  /** ISO 4217. */
  currency: string;
  /** Payments' id of the payment, for the provider's records. */
  reference: string;
}

export interface AuthorizationRequest extends ProviderCallOptions {
  /** The provider's id of the authorization the call acts on (`reference` of the approved authorize). */
  authorization: string;
  /** Integer cents: the amount to capture or refund. */
  amount: number;
}

/** What the provider knows of an idempotency key. */
export type ProviderStatus = { found: false } | ({ found: true; call: ProviderCall } & ProviderResult);

/**
 * Why a call has no answer. `timeout`: no answer in time, so the provider may or may not have
 * done the work (ask `status` before anything else). `unavailable`: the provider was not reached
 * and did nothing (connection refused). `rejected`: the provider refused the request as invalid
 * (capturing a voided authorization); asking again will not help.
 */
export type ProviderErrorKind = 'timeout' | 'unavailable' | 'rejected';

export class ProviderError extends Error {
  constructor(
    readonly kind: ProviderErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'ProviderError';
  }
}

/**
 * A payment service provider, as payments calls it. Every call carries an idempotency key; calls
 * with a key the provider has seen return the recorded outcome. An implementation throws
 * {@link ProviderError} for a call without an answer; anything else it throws counts as a
 * timeout (the outcome unknown). The simulator (`SimulatedProvider`) is the default; a real
 * provider's adapter implements the same five calls.
 */
export interface PaymentProvider {
  /** Holds `amount` on the customer's card: approved with the authorization's id, or declined with a reason. */
  authorize(request: AuthorizeRequest): Promise<ProviderResult>;
  /** Charges an approved authorization. */
  capture(request: AuthorizationRequest): Promise<ProviderResult>;
  /** Releases an authorization that was not captured. */
  void(request: ProviderCallOptions & { authorization: string }): Promise<ProviderResult>;
  /** Pays a captured amount back. */
  refund(request: AuthorizationRequest): Promise<ProviderResult>;
  /** What the provider recorded under a key: how an unknown outcome is resolved, never by calling again blind. */
  status(request: ProviderCallOptions): Promise<ProviderStatus>;
}
