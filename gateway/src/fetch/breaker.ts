import { BrokenCircuitError, CircuitState, ConsecutiveBreaker, circuitBreaker, handleWhen } from 'cockatiel';
import type { Metrics } from '@shop/telemetry';
import { trace, tracingEnabled } from '@shop/tracing';
import type { Layer } from './layer';
import { ResponseTooLargeError, UnusableResponseError } from './transport';

/** A subgraph's circuit breaker settings. */
export interface BreakerOptions {
  /** Consecutive failed requests that open the breaker. @default 5 */
  failures: number;
  /** How long an open breaker fails fast before it lets one probe through (half-open). @default 5000 */
  halfOpenAfterMs: number;
}

export const defaultBreakerOptions: BreakerOptions = { failures: 5, halfOpenAfterMs: 5_000 };

/** Thrown (then coded SUBGRAPH_UNAVAILABLE by error mapping) while a subgraph's breaker is open. */
export { BrokenCircuitError };

/**
 * A failure that says the subgraph is unwell: no connection, a timeout, a 5xx without a GraphQL
 * body. Not: the client going away, an oversized answer (one bad query, not a sick subgraph), or
 * a 4xx (the request was refused, the subgraph is fine).
 */
function isSubgraphFailure(err: unknown, signal: AbortSignal | undefined): boolean {
  if (signal?.aborted) return false;
  if (err instanceof ResponseTooLargeError) return false;
  if (err instanceof UnusableResponseError) return err.status >= 500;
  return true;
}

const STATE_VALUE: Record<CircuitState, number> = {
  [CircuitState.Closed]: 0,
  [CircuitState.HalfOpen]: 1,
  [CircuitState.Open]: 2,
  [CircuitState.Isolated]: 2,
};
const STATE_NAME: Record<CircuitState, string> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.HalfOpen]: 'half_open',
  [CircuitState.Open]: 'open',
  [CircuitState.Isolated]: 'open',
};

/**
 * One circuit breaker per subgraph (cockatiel): after `failures` consecutive failures every request
 * to that subgraph fails at once, instead of each client waiting out the timeout on a frozen
 * subgraph, and its fields come back null with SUBGRAPH_UNAVAILABLE while the rest of the answer is
 * served. After `halfOpenAfterMs` one request probes (the others still fail fast); its success
 * closes the breaker. Mutations go
 * through it too: failing fast never sends a write twice. The state is the
 * `gateway_subgraph_breaker_state` gauge.
 */
export function breakerLayer(subgraph: string, metrics: Metrics, options: BreakerOptions = defaultBreakerOptions): Layer {
  const policy = circuitBreaker(
    handleWhen((err) => !(err instanceof NotCounted)),
    { halfOpenAfter: options.halfOpenAfterMs, breaker: new ConsecutiveBreaker(options.failures) },
  );
  const gauge = metrics.breakerState.labels({ subgraph });
  gauge.set(0);
  policy.onStateChange((state) => {
    gauge.set(STATE_VALUE[state]);
    metrics.breakerTransitions.inc({ subgraph, to: STATE_NAME[state] });
  });
  return async (request, next) => {
    // In a trace, the fetch's span says what the breaker did with it (the state it found).
    if (tracingEnabled()) trace.getActiveSpan()?.setAttribute('shop.breaker.state', STATE_NAME[policy.state]);
    // cockatiel queues every call behind a half-open probe; against a frozen subgraph that is a
    // wait of up to the timeout for every client. Only the probe waits: the rest fail fast.
    if (policy.state === CircuitState.HalfOpen) throw new BrokenCircuitError();
    try {
      return await policy.execute(async () => {
        try {
          return await next(request);
        } catch (err) {
          // cockatiel's predicate sees only the error: the request's own verdict travels with it.
          throw isSubgraphFailure(err, request.signal) ? err : new NotCounted(err);
        }
      });
    } catch (err) {
      throw err instanceof NotCounted ? err.original : err;
    }
  };
}

/** A failure that is not the subgraph's fault, carried through the breaker without counting. */
class NotCounted extends Error {
  constructor(readonly original: unknown) {
    super('not counted by the breaker');
  }
}
