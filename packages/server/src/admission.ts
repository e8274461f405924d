// Admission: what decides, before any GraphQL work, whether a request is taken at all. Load
// shedding answers 503 when the process is saturated (its event loop lags, or too many requests
// are in flight), so that the requests it does take are answered in time and /health keeps
// answering; rate limiting answers 429 to one client that asks for more than its share.
import type { IncomingMessage } from 'node:http';
import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import type { RateLimiter } from '@shop/cache';

/** When a process refuses new requests with 503. */
export interface LoadSheddingOptions {
  /**
   * Shed while the event loop's p99 delay over the last window is above this (the process is
   * CPU-bound: everything it takes now waits that long). 0 turns the check off. @default 500
   */
  maxEventLoopDelayMs: number;
  /** Shed while this many requests are in flight. 0 turns the check off. @default 2000 */
  maxInFlight: number;
  /** How often the event-loop delay is judged. @default 500 */
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
  /** The in-flight count and the last window's event-loop p99, for tests and logs. */
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

/** The connection's address: proxies in front are not trusted to name the client. */
const addressOf = (req: IncomingMessage) => req.socket.remoteAddress ?? 'unknown';

/**
 * Hand-written rather than a library: the Node options (`under-pressure`, `overload-protection`)
 * are Express or Fastify middleware, and this server is neither; the measure itself is Node's
 * own event-loop delay histogram.
 */
export function createAdmitter(options: AdmissionOptions): Admitter {
  const shedding = options.loadShedding === false ? undefined : { ...defaultLoadShedding, ...options.loadShedding };
  const clientKey = options.clientKey ?? addressOf;
  let inFlight = 0;
  let lagging = false;
  let lastP99 = 0;
  let histogram: IntervalHistogram | undefined;
  let timer: NodeJS.Timeout | undefined;
  if (shedding && shedding.maxEventLoopDelayMs > 0) {
    const h = monitorEventLoopDelay({ resolution: 10 });
    h.enable();
    histogram = h;
    timer = setInterval(() => {
      lastP99 = h.percentile(99) / 1e6;
      lagging = lastP99 > shedding.maxEventLoopDelayMs;
      h.reset();
    }, shedding.windowMs ?? 500);
    // A process with nothing else to do may exit: this timer is not a reason to stay up.
    timer.unref();
  }
  const over = () => lagging || (shedding !== undefined && shedding.maxInFlight > 0 && inFlight >= shedding.maxInFlight);
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
    state: () => ({ inFlight, eventLoopDelayMs: lastP99, shedding: over() }),
    close() {
      if (timer) clearInterval(timer);
      histogram?.disable();
    },
  };
}
