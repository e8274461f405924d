import { ExponentialBackoff, handleWhen, retry } from 'cockatiel';
import type { Metrics } from '@shop/telemetry';
import type { Layer } from './layer';
import { DeadlinePassedError, UnusableResponseError } from './transport';

/** Retries of a subgraph query. */
export interface RetryOptions {
  /** Retries after the first attempt (0: none). @default 2 */
  retries: number;
  /** The first backoff; each next one is up to about twice as long, with decorrelated jitter. @default 25 */
  initialDelayMs: number;
  /** @default 250 */
  maxDelayMs: number;
}

export const defaultRetryOptions: RetryOptions = { retries: 2, initialDelayMs: 25, maxDelayMs: 250 };

/** Connection failures undici reports when the request surely never reached a resolver, or a gateway in between said so. */
const RETRYABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ENOTFOUND', 'EAI_AGAIN']);

function isRetryable(err: unknown): boolean {
  if (err instanceof UnusableResponseError) return err.status === 502 || err.status === 503 || err.status === 504;
  const e = (err ?? {}) as { code?: unknown; cause?: { code?: unknown } };
  const code = typeof e.code === 'string' ? e.code : e.cause?.code;
  // Not timeouts: a subgraph that took the whole timeout once would only take it again, and the
  // client would wait twice.
  return typeof code === 'string' && RETRYABLE_CODES.has(code);
}

/**
 * Sends a subgraph query again after a connection failure (a restarted subgraph, a dropped
 * keep-alive socket), with jittered exponential backoff (cockatiel), never past the request's
 * deadline and never once the client has gone. Mutations are never retried: a write whose answer
 * was lost may have been applied, and sending it again could apply it twice. Sits below in-flight
 * sharing (one retry serves every caller) and below the breaker (which counts the request once,
 * after its retries).
 */
export function retryLayer(subgraph: string, metrics: Metrics, options: RetryOptions = defaultRetryOptions): Layer {
  const policy = retry(handleWhen(isRetryable), {
    maxAttempts: options.retries,
    backoff: new ExponentialBackoff({ initialDelay: options.initialDelayMs, maxDelay: options.maxDelayMs }),
  });
  const retries = metrics.subgraphRetries.labels({ subgraph });
  policy.onRetry(() => retries.inc());
  return (request, next) => {
    if (request.mutation) return next(request);
    return policy.execute(({ attempt }) => {
      if (attempt > 0 && request.deadline !== undefined && Date.now() >= request.deadline) {
        throw new DeadlinePassedError();
      }
      return next(request);
    }, request.signal);
  };
}
