import { STATUS_CODES } from 'node:http';
import { GraphQLError } from 'graphql';
import type { Logger } from '@shop/telemetry';
import type { Layer } from './layer';
import { BrokenCircuitError } from 'cockatiel';
import { DeadlinePassedError, ResponseTooLargeError, UnusableResponseError } from './transport';

/** The `extensions.code` of a subgraph that could not be reached, timed out or did not answer GraphQL. */
export const SUBGRAPH_UNAVAILABLE = 'SUBGRAPH_UNAVAILABLE';

/** What error mapping needs to name the subgraph and log the failure. */
export interface ErrorMappingOptions {
  subgraph: string;
  /** Logged, never shown to the client. */
  url: string;
  logger: Logger;
  /** The transport's timeout, for the reason a timed-out request gives. */
  timeoutMs: number;
}

/**
 * Turns every way a subgraph request can fail (transport error, timeout, oversized body, an
 * HTTP status without a GraphQL body, an open breaker, a passed deadline, the client going away)
 * into a GraphQL error with a code and the subgraph's name. @apollo/gateway reports it without a
 * path; value-completion.ts copies it to each field the failed fetch owed.
 */
export function errorMappingLayer({ subgraph, url, logger, timeoutMs }: ErrorMappingOptions): Layer {
  const unavailable = (reason: string, err?: unknown): GraphQLError => {
    logger.warn({ err, subgraph, url, reason }, 'subgraph request failed');
    // The client learns which subgraph failed and why, not its internal URL.
    return new GraphQLError(`Subgraph "${subgraph}" is unavailable: ${reason}`, {
      extensions: { code: SUBGRAPH_UNAVAILABLE, serviceName: subgraph, reason },
    });
  };

  const reasonOf = (err: unknown): string => {
    // Duck-typed: errors from undici and AbortSignal may come from another realm (DOMException).
    const e = (err ?? {}) as { name?: unknown; code?: unknown; message?: unknown; cause?: { code?: unknown } };
    if (e.name === 'AbortError' || e.name === 'TimeoutError' || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT') {
      return `timed out after ${timeoutMs} ms`;
    }
    const code = typeof e.code === 'string' ? e.code : e.cause?.code;
    if (typeof code === 'string') return code;
    return typeof e.message === 'string' ? e.message : String(err);
  };

  const mapped = (err: unknown, signal: AbortSignal | undefined): GraphQLError => {
    if (err instanceof UnusableResponseError) {
      const { status } = err;
      if (status === 401) {
        return new GraphQLError(`Subgraph "${subgraph}" refused the request: unauthenticated`, {
          extensions: { code: 'UNAUTHENTICATED', serviceName: subgraph },
        });
      }
      if (status === 403) {
        return new GraphQLError(`Subgraph "${subgraph}" refused the request: forbidden`, {
          extensions: { code: 'FORBIDDEN', serviceName: subgraph },
        });
      }
      return unavailable(status >= 300 ? `HTTP ${status}: ${STATUS_CODES[status] ?? 'error'}` : 'the response is not GraphQL');
    }
    if (err instanceof ResponseTooLargeError) {
      logger.warn({ subgraph, limit: err.limit }, 'subgraph response too large');
      return new GraphQLError(`Subgraph "${subgraph}" answered with more than ${err.limit} bytes`, {
        extensions: { code: 'RESPONSE_TOO_LARGE', serviceName: subgraph },
      });
    }
    if (err instanceof BrokenCircuitError) {
      // Not logged per request: the breaker's transition was, and the gauge shows it.
      return new GraphQLError(`Subgraph "${subgraph}" is unavailable: failing fast after consecutive failures`, {
        extensions: { code: SUBGRAPH_UNAVAILABLE, serviceName: subgraph, reason: 'circuit open' },
      });
    }
    if (err instanceof DeadlinePassedError) {
      return new GraphQLError(`Subgraph "${subgraph}" was not asked: the request's deadline passed`, {
        extensions: { code: SUBGRAPH_UNAVAILABLE, serviceName: subgraph, reason: 'deadline passed' },
      });
    }
    if (signal?.aborted) {
      // The client went away: nobody reads this error, and it is not the subgraph's fault.
      return new GraphQLError(`The request to subgraph "${subgraph}" was cancelled: the client went away`, {
        extensions: { code: 'CLIENT_CLOSED_REQUEST', serviceName: subgraph },
      });
    }
    return unavailable(reasonOf(err), err);
  };

  return async (request, next) => {
    try {
      return await next(request);
    } catch (err) {
      throw mapped(err, request.signal);
    }
  };
}
