import { Agent, type Dispatcher, request } from 'undici';
import type { Metrics } from '@shop/telemetry';
import { parseHint } from './hint';
import { type FetchRequest, type FetchResponse, type GraphQLBody, bodyOf, withHeader } from './layer';

/** A subgraph's answer: its HTTP status, the headers we use, and the parsed body. */
export interface TransportResponse {
  status: number;
  cacheControl: string | undefined;
  contentType: string | undefined;
  /** Parsed JSON, or the raw text when the body is not JSON. */
  body: unknown;
}

export interface TransportOptions {
  /** A request slower than this is aborted. @default 10_000 */
  timeoutMs?: number;
  /** Keep-alive connections per subgraph origin. @default 64 */
  connections?: number;
  /**
   * A subgraph response body larger than this is cut off and the request fails: a subgraph that
   * answers with gigabytes must not take the gateway's memory with it. @default 5_000_000
   */
  maxResponseBytes?: number;
}

/** Thrown when a subgraph's response body exceeds `maxResponseBytes`. */
export class ResponseTooLargeError extends Error {
  readonly code = 'RESPONSE_TOO_LARGE';
  constructor(readonly limit: number) {
    super(`the response is over ${limit} bytes`);
    this.name = 'ResponseTooLargeError';
  }
}

/**
 * Thrown when a subgraph's answer is not a GraphQL body the gateway can pass on: not GraphQL at
 * all, or a 4xx/5xx status without errors in it. Error mapping turns it into a coded error.
 */
export class UnusableResponseError extends Error {
  constructor(readonly status: number) {
    super(`the subgraph answered HTTP ${status} without a GraphQL body that says why`);
    this.name = 'UnusableResponseError';
  }
}

/**
 * Thrown instead of sending (or sending again) a subgraph request once the client request's
 * deadline has passed: its answer could no longer reach the client.
 */
export class DeadlinePassedError extends Error {
  readonly code = 'DEADLINE_PASSED';
  constructor() {
    super("the request's deadline passed");
    this.name = 'DeadlinePassedError';
  }
}

/**
 * The header that tells a subgraph how many milliseconds the gateway will wait for this answer;
 * the subgraph stops resolving after that (packages/server's http.ts).
 */
export const TIMEOUT_HEADER = 'x-request-timeout-ms';

/** Sends GraphQL requests over HTTP/1.1 keep-alive pools. */
export interface Transport {
  /**
   * `signal`: aborts the request (the client went away); `timeoutMs` (default: the transport's)
   * applies either way.
   */
  post(url: string, body: string, headers: Record<string, string>, signal?: AbortSignal, timeoutMs?: number): Promise<TransportResponse>;
  close(): Promise<void>;
}

/**
 * undici's pooled keep-alive client. In a CPU profile of plain @apollo/gateway, its default
 * fetcher stack (make-fetch-happen, minipass-fetch, agent-base) took about 17% of the gateway's
 * CPU; undici's `request` on a pooled Agent skips all of that.
 */
export function createTransport(options: TransportOptions = {}): Transport {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxResponseBytes = options.maxResponseBytes ?? 5_000_000;
  const agent = new Agent({
    connections: options.connections ?? 64,
    keepAliveTimeout: 30_000,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  return {
    async post(url, body, headers, signal, requestTimeoutMs = timeoutMs) {
      // One controller, one timer and one listener, all released when the request ends: per
      // request, AbortSignal.timeout plus AbortSignal.any cost more (a composite signal that
      // follows both, a timer left to run out) and showed in the gateway's profile.
      const controller = new AbortController();
      const timer = setTimeout(
        () => controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')),
        requestTimeoutMs,
      );
      const follow = () => controller.abort(signal?.reason);
      if (signal?.aborted) follow();
      else signal?.addEventListener('abort', follow, { once: true });
      let text: string;
      let res: Dispatcher.ResponseData;
      try {
        res = await request(url, {
          method: 'POST',
          body,
          headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
          dispatcher: agent,
          signal: controller.signal,
        });
        text = await readLimited(res.body, maxResponseBytes);
      } finally {
        clearTimeout(timer);
        signal?.removeEventListener('abort', follow);
      }
      const header = (name: string) => {
        const value = res.headers[name];
        return Array.isArray(value) ? value.join(', ') : value;
      };
      const contentType = header('content-type');
      let parsed: unknown = text;
      if (contentType?.includes('json')) {
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = text;
        }
      }
      return { status: res.statusCode, cacheControl: header('cache-control'), contentType, body: parsed };
    },
    close: () => agent.close(),
  };
}

/** Reads a body as UTF-8, giving up (and dropping the connection) once it passes `limit` bytes. */
async function readLimited(body: AsyncIterable<Buffer> & { destroy(err?: Error): unknown }, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) {
      const err = new ResponseTooLargeError(limit);
      body.destroy(err);
      throw err;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function isGraphQLBody(body: unknown): body is GraphQLBody {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
  return 'data' in body || 'errors' in body;
}

/** What the transport layer needs to reach one subgraph. */
export interface TransportLayerOptions {
  subgraph: string;
  url: string;
  transport: Transport;
  metrics: Metrics;
  /** This subgraph's timeout (SUBGRAPH_TIMEOUT_MS or SUBGRAPH_<NAME>_TIMEOUT_MS). */
  timeoutMs: number;
}

/**
 * The pipeline's last step: one HTTP request to the subgraph, counted (with its
 * representations), its `Cache-Control` read as the answer's hint.
 */
export function transportLayer({
  subgraph,
  url,
  transport,
  metrics,
  timeoutMs,
}: TransportLayerOptions): (request: FetchRequest) => Promise<FetchResponse> {
  const labels = { subgraph };
  return async (request) => {
    // The subgraph's timeout, or less when the client request's deadline comes first: no subgraph
    // works on an answer nobody will read.
    const budget = request.deadline === undefined ? timeoutMs : Math.min(timeoutMs, request.deadline - Date.now());
    if (budget <= 0) throw new DeadlinePassedError();
    const representations = request.representations?.length ?? request.representationCount ?? 0;
    if (representations > 0) metrics.entityRepresentations.inc(labels, representations);
    metrics.subgraphRequests.inc(labels);
    const headers = withHeader(request.headers, TIMEOUT_HEADER, String(Math.ceil(budget)));
    const response = await transport.post(url, bodyOf(request), headers, request.signal, budget);
    // A subgraph shedding load (503 OVERLOADED) is unavailable for now: a failure the breaker counts.
    if (response.status === 503) throw new UnusableResponseError(503);
    // A subgraph that answers a GraphQL body with a 4xx/5xx status (Apollo Server does for
    // invalid variables) still told us what went wrong: pass its errors, codes intact.
    if (isGraphQLBody(response.body) && (response.status < 300 || (response.body.errors?.length ?? 0) > 0)) {
      return { body: response.body, hint: response.status < 300 ? parseHint(response.cacheControl) : { maxAge: 0 } };
    }
    throw new UnusableResponseError(response.status);
  };
}
