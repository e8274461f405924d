// Admission: what decides, before any GraphQL work, whether a request is taken at all. Load
// shedding answers 503 when the process is saturated (its event loop lags, or too many requests
// are in flight), so that the requests it does take are answered in time and /health keeps
// answering; rate limiting answers 429 to one client that asks for more than its share.
import type { IncomingMessage } from 'node:http';
import type { RateLimiter } from '@shop/cache';

/** When a process refuses new requests with 503. */
export interface LoadSheddingOptions {
  /**
   * Shed when the process's timers fire this much later than asked three times in a row (it is
   * CPU-bound: everything it takes now waits that long), until `windowMs` passes without such a
   * delay. One long synchronous stretch (a supergraph composed, a big GC) is one late timer, not
   * overload. 0 turns the check off. @default 500
   */
  maxEventLoopDelayMs: number;
  /** Shed while this many requests are in flight. 0 turns the check off. @default 2000 */
  maxInFlight: number;
  /** How long shedding lasts after the last delay over the limit. @default 500 */
  windowMs?: number;
}

export const defaultLoadShedding: LoadSheddingOptions = { maxEventLoopDelayMs: 500, maxInFlight: 2000 };

/** The verdict on one request: taken, or refused with a status, a code and a Retry-After. */
export type Admission =
  | { admitted: true; done(): void }
  | { admitted: false; status: 429 | 503; code: 'RATE_LIMITED' | 'OVERLOADED'; message: string; retryAfterS: number };

/** Admission of a process: call `admit` per request, `done` when its response is written. */
export interface Admitter {
  admit(req: IncomingMessage): Promise<Admission>;
  /** The in-flight count and the sampler's last event-loop delay, for tests and logs. */
  state(): { inFlight: number; eventLoopDelayMs: number; shedding: boolean };
  close(): void;
}

export interface AdmissionOptions {
  loadShedding?: LoadSheddingOptions | false;
  /** Requests per client per window, or none. The gateway's; subgraphs are called by the gateway only. */
  rateLimiter?: RateLimiter | undefined;
  /**
   * Who the client is for rate limiting: the authenticated user when there is one, else the
   * connection's address. @default the connection's address
   */
  clientKey?: (req: IncomingMessage) => string;
}

/** How often the event loop is sampled. */
const SAMPLE_MS = 20;
const loopListeners = new Set<(delay: number, now: number) => void>();
let loopSampler: NodeJS.Timeout | undefined;

/**
 * One sampler timer per process, shared by every HTTP server in it (the embedded mode runs six):
 * how late it fires is how long anything queued now waits. (Node's monitorEventLoopDelay histogram
 * loses the one long delay that matters when it is reset in the same turn that delay ends, so a
 * window could read a blocked loop as idle.) Returns the unsubscribe; the last one stops the timer.
 */
function onLoopSample(listener: (delay: number, now: number) => void): () => void {
  loopListeners.add(listener);
  if (!loopSampler) {
    let expected = performance.now() + SAMPLE_MS;
    loopSampler = setInterval(() => {
      const now = performance.now();
      const delay = Math.max(0, now - expected);
      expected = now + SAMPLE_MS;
      for (const l of loopListeners) l(delay, now);
    }, SAMPLE_MS);
    // A process with nothing else to do may exit: this timer is not a reason to stay up.
    loopSampler.unref();
  }
  return () => {
    loopListeners.delete(listener);
    if (loopListeners.size === 0 && loopSampler) {
      clearInterval(loopSampler);
      loopSampler = undefined;
    }
  };
}

/** Late sampler timers in a row that mean overload rather than one long synchronous stretch. */
const LATE_IN_A_ROW = 3;

/** The connection's address: proxies in front are not trusted to name the client. */
export const addressOf = (req: IncomingMessage): string => req.socket.remoteAddress ?? 'unknown';

/**
 * Hand-written rather than a library: the Node options (`under-pressure`, `overload-protection`)
 * are Express or Fastify middleware, and this server is neither; the measure itself is Node's
 * own timers.
 */
export function createAdmitter(options: AdmissionOptions): Admitter {
  const shedding = options.loadShedding === false ? undefined : { ...defaultLoadShedding, ...options.loadShedding };
  const clientKey = options.clientKey ?? addressOf;
  let inFlight = 0;
  let lastDelay = 0;
  let sheddingUntil = 0;
  let lateInARow = 0;
  let unsubscribe: (() => void) | undefined;
  if (shedding && shedding.maxEventLoopDelayMs > 0) {
    const holdMs = shedding.windowMs ?? 500;
    unsubscribe = onLoopSample((delay, now) => {
      lastDelay = delay;
      lateInARow = delay > shedding.maxEventLoopDelayMs ? lateInARow + 1 : 0;
      if (lateInARow >= LATE_IN_A_ROW) sheddingUntil = now + holdMs;
    });
  }
  const over = () =>
    performance.now() < sheddingUntil || (shedding !== undefined && shedding.maxInFlight > 0 && inFlight >= shedding.maxInFlight);
  const admitted = (): Admission => {
    inFlight++;
    let released = false;
    return {
      admitted: true,
      done: () => {
        if (released) return;
        released = true;
        inFlight--;
      },
    };
  };
  return {
    async admit(req) {
      if (over()) {
        return {
          admitted: false,
          status: 503,
          code: 'OVERLOADED',
          message: 'The server is overloaded; retry after the time in Retry-After',
          retryAfterS: 1,
        };
      }
      if (options.rateLimiter) {
        const verdict = await options.rateLimiter.consume(clientKey(req));
        if (!verdict.allowed) {
          return {
            admitted: false,
            status: 429,
            code: 'RATE_LIMITED',
            message: 'Too many requests from this client; retry after the time in Retry-After',
            retryAfterS: Math.max(1, Math.ceil(verdict.retryAfterMs / 1000)),
          };
        }
      }
      return admitted();
    },
    state: () => ({ inFlight, eventLoopDelayMs: lastDelay, shedding: over() }),
    close() {
      unsubscribe?.();
    },
  };
}
