import type { ApolloServerPlugin, BaseContext, GraphQLRequestContextDidEncounterErrors } from '@apollo/server';
import type { GraphQLError, GraphQLFormattedError } from 'graphql';
import type { Logger } from '@shop/telemetry';

/**
 * The codes domain code refuses with (a {@link DomainError}'s): the client's input, who it is, or
 * the state it asked to change. Every one is also a client code (spread into
 * {@link CLIENT_ERROR_CODES}), so a refusal is never masked; a new domain code is added here.
 */
export const DOMAIN_ERROR_CODES = [
  // The argument or input at fault (`extensions.field` names it).
  'BAD_USER_INPUT',
  // Who is asking.
  'UNAUTHENTICATED',
  'FORBIDDEN',
  // A field the caller may not see (@authenticated, @requiresScopes, @policy at the gateway, or the
  // owning subgraph's own check): null at its path, the rest of the query runs. Apollo Router's code.
  'UNAUTHORIZED_FIELD_OR_TYPE',
  // The state: an unknown id, a duplicate, a lost race (the event store's version check).
  'NOT_FOUND',
  'CONFLICT',
  'CONCURRENCY_CONFLICT',
  // Orders' decider: commands an order's state refuses.
  'ORDER_ALREADY_EXISTS',
  'ORDER_NOT_DRAFT',
  'ORDER_EMPTY',
  'ORDER_ALREADY_CANCELLED',
  'ORDER_LINE_NOT_FOUND',
  // A cancel while the order's checkout saga runs.
  'CHECKOUT_IN_PROGRESS',
  // A sharded store's shard cannot be reached, or a slot's move outlasted the write's wait (orders).
  'SHARD_UNAVAILABLE',
] as const;

export type DomainErrorCode = (typeof DOMAIN_ERROR_CODES)[number];

/**
 * Every `extensions.code` that a client may see together with the message its thrower wrote: the
 * client's own mistakes (a bad request, document, argument or state) and the gateway's coded
 * refusals. Anything else, a missing code included, is an internal error, and in production its
 * message is replaced (see {@link clientErrors}). The one list: a new client-facing code is
 * added here (or to {@link DOMAIN_ERROR_CODES}), or production clients see it as
 * INTERNAL_SERVER_ERROR.
 */
export const CLIENT_ERROR_CODES = [
  // Apollo Server: the request or the document is wrong (its BAD_USER_INPUT is a domain code too).
  'BAD_REQUEST',
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'OPERATION_RESOLUTION_FAILURE',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  // Trusted documents at the gateway: an operation not in the list, or whose hash does not match.
  'PERSISTED_QUERY_NOT_IN_LIST',
  'PERSISTED_QUERY_HASH_MISMATCH',
  // The HTTP front (`sendError`), before Apollo sees the request.
  'PAYLOAD_TOO_LARGE',
  'METHOD_NOT_ALLOWED',
  'UNSUPPORTED_MEDIA_TYPE',
  // Admission (admission.ts): load shedding (503) and the gateway's rate limit per client (429).
  'OVERLOADED',
  'RATE_LIMITED',
  // Domain refusals: what resolvers and domain code throw as DomainError.
  ...DOMAIN_ERROR_CODES,
  // The gateway's limits and its view of the subgraphs.
  'COST_ESTIMATED_TOO_EXPENSIVE',
  'RESPONSE_TOO_LARGE',
  'SUBGRAPH_UNAVAILABLE',
  // A subgraph answered null for a non-null field; the gateway bubbled the null up (value-completion.ts).
  'SUBGRAPH_NON_NULL_VIOLATION',
] as const;

export type ClientErrorCode = (typeof CLIENT_ERROR_CODES)[number];

const CLIENT_CODES: ReadonlySet<string> = new Set(CLIENT_ERROR_CODES);

/** Whether `code` is one of {@link CLIENT_ERROR_CODES}. */
export const isClientErrorCode = (code: unknown): code is ClientErrorCode => typeof code === 'string' && CLIENT_CODES.has(code);

/** A value a {@link DomainError} adds to `extensions` (JSON scalars: it goes to the client as is). */
export type DomainErrorDetail = string | number | boolean | null;

/** What a {@link DomainError} carries besides its code and message. */
export interface DomainErrorOptions {
  /**
   * More for the client in `extensions`, e.g. a lost race's `expectedVersion` and `actualVersion`.
   * `code` and `field` are the error's own and win over a detail of that name. @default {}
   */
  details?: Readonly<Record<string, DomainErrorDetail>>;
  /** What failed underneath (a driver's error, the event store's): for logs and debuggers, never shown. */
  cause?: unknown;
}

/**
 * The one error domain code, data code and resolvers throw when they refuse a request: a code from
 * {@link DOMAIN_ERROR_CODES}, a message meant for the client, and the argument or input field at
 * fault. Resolvers never catch or wrap it: the server's `formatError` ({@link clientErrors}) finds
 * it behind graphql-js's located error and gives the client `extensions: { code, field, ...details }`
 * with the message, in production too. Anything thrown that is not a DomainError (nor a
 * GraphQLError with a client code) is internal and masked in production.
 */
export class DomainError extends Error {
  /** The argument or input field at fault (`input.email`), when there is one: `extensions.field`. */
  readonly field: string | undefined;
  /** Extra client-facing `extensions`; see {@link DomainErrorOptions.details}. */
  readonly details: Readonly<Record<string, DomainErrorDetail>>;

  constructor(
    readonly code: DomainErrorCode,
    message: string,
    field?: string,
    options: DomainErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DomainError';
    this.field = field;
    this.details = options.details ?? {};
  }

  /** The `extensions` a client gets for this error. */
  extensionsForClient(): Record<string, DomainErrorDetail> {
    return { ...this.details, code: this.code, ...(this.field ? { field: this.field } : {}) };
  }
}

/**
 * The DomainError behind an error Apollo is formatting or logging: the error itself, or at the
 * end of its `originalError` chain (graphql-js wraps a resolver's throw in a located GraphQLError;
 * Apollo wraps a variable's coercion error once more). Bounded, in case a chain loops.
 */
export function domainErrorOf(error: unknown): DomainError | undefined {
  let current = error;
  for (let hop = 0; hop < 8 && typeof current === 'object' && current !== null; hop++) {
    if (current instanceof DomainError) return current;
    current = (current as { originalError?: unknown }).originalError;
  }
  return undefined;
}

/** The code of every error a client is not told the cause of. */
export const INTERNAL_SERVER_ERROR = 'INTERNAL_SERVER_ERROR';

/**
 * A value from the request, for an error message: quoted, and cut to its first `max` characters
 * with the full length said, so that a 10 KB argument costs the response about 60 bytes.
 * `quote('abc')` is `"abc"`; `quote('x'.repeat(10_000), 3)` is `"xxx"… (10000 characters)`.
 */
export function quote(value: unknown, max = 40): string {
  if (typeof value !== 'string') {
    const text = String(value);
    return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
  }
  if (value.length <= max) return JSON.stringify(value);
  return `${JSON.stringify(value.slice(0, max))}… (${value.length} characters)`;
}

/** How errors are shown to clients. */
export interface ClientErrorOptions {
  /**
   * Production: an error whose code is not in {@link CLIENT_ERROR_CODES} reaches the client as
   * `INTERNAL_SERVER_ERROR` with the request id and nothing else (no message, stack, SQL, driver
   * text or extensions), and the original is logged with that request id. Client errors lose any
   * stack trace. Set from `NODE_ENV=production`. @default false
   */
  maskErrors?: boolean;
  /**
   * Remove graphql-js's `Did you mean ...?` suggestions, which name fields, arguments, types and
   * enum values: they describe the schema to whoever cannot introspect it. @default maskErrors
   */
  hideSuggestions?: boolean;
  /** The longest message a client gets, in characters; longer ones are cut. @default 300 */
  maxMessageLength?: number;
  /**
   * The longest double-quoted run kept in a message. graphql-js quotes whole values from the
   * request (`Variable "$x" got invalid value "<10 KB>"`); they are cut to this prefix. @default 40
   */
  maxQuotedLength?: number;
}

const SUGGESTION = / ?Did you mean\b[^?]*(?:\?|$)/g;

/**
 * Cuts every double-quoted run longer than `max` to its prefix. One pass, linear in the message
 * (no backtracking regex over input), honouring backslash escapes as graphql-js's quoting writes
 * them; an unterminated quote runs to the end.
 */
function shortenQuoted(message: string, max: number): string {
  let out = '';
  let from = 0;
  while (from < message.length) {
    const open = message.indexOf('"', from);
    if (open < 0) {
      out += message.slice(from);
      break;
    }
    let close = open + 1;
    while (close < message.length && message[close] !== '"') close += message[close] === '\\' ? 2 : 1;
    const inner = message.slice(open + 1, Math.min(close, message.length));
    out += message.slice(from, open + 1);
    if (inner.length > max) {
      let cut = inner.slice(0, max);
      // Do not leave half an escape sequence (`\u00`) before the ellipsis.
      const escape = cut.lastIndexOf('\\');
      if (escape >= 0 && escape >= cut.length - 6) cut = cut.slice(0, escape);
      out += `${cut}…"`;
    } else {
      out += close < message.length ? `${inner}"` : inner;
    }
    from = close + 1;
  }
  return out;
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}

/** A request's id and its logger (which carries the id), for the plugin to log and stamp with. */
export interface RequestTag {
  requestId: string;
  logger: Logger;
}

/** What {@link clientErrors} needs besides its options. */
export interface ClientErrorDeps<TContext extends BaseContext> {
  /** The process logger, used when a request's own cannot be found. */
  logger: Logger;
  /** The request id and logger of a request, from its context. */
  requestOf: (context: TContext) => RequestTag | undefined;
}

/** The two halves Apollo Server needs: `formatError` (no context) and a plugin (with it). */
export interface ClientErrors<TContext extends BaseContext> {
  /** Pass as ApolloServer's `formatError`. */
  formatError: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;
  /** Logs internal errors with the request logger and, when masking, stamps the request id on them. */
  plugin: ApolloServerPlugin<TContext>;
}

/**
 * The one place errors are formatted for clients, used by the gateway and by every subgraph.
 *
 * - Client errors (a code in {@link CLIENT_ERROR_CODES}) keep their message and extensions; in
 *   production, without a stack trace.
 * - Anything else is internal. It is logged with the request's logger (hence its request id), the
 *   original error with its stack and cause. In production the client gets only
 *   `{ message: "Internal server error (request id <id>)", path, locations, extensions: { code:
 *   "INTERNAL_SERVER_ERROR", requestId } }`. `path` and `locations` stay: they point into the
 *   client's own document and result (the spec has field errors carry them so a client can tell
 *   which null is an error) and say nothing about the server.
 * - Every message is bounded: quoted runs cut to `maxQuotedLength`, the whole to
 *   `maxMessageLength`, in development too. `Did you mean ...?` is removed when `hideSuggestions`.
 *
 * Apollo's `formatError` has no context, so the request id is added in `willSendResponse`, where
 * every INTERNAL_SERVER_ERROR is one that `formatError` masked.
 */
export function clientErrors<TContext extends BaseContext>(
  options: ClientErrorOptions,
  deps: ClientErrorDeps<TContext>,
): ClientErrors<TContext> {
  const mask = options.maskErrors ?? false;
  const hideSuggestions = options.hideSuggestions ?? mask;
  const maxMessage = options.maxMessageLength ?? 300;
  const maxQuoted = options.maxQuotedLength ?? 40;

  const bound = (message: string): string => {
    let text = shortenQuoted(message, maxQuoted);
    if (hideSuggestions) text = text.replace(SUGGESTION, '').trimEnd();
    return clip(text, maxMessage);
  };

  const formatError = (input: GraphQLFormattedError, error?: unknown): GraphQLFormattedError => {
    const formatted = domainErrorCoded(input, error) ?? requestErrorCoded(input, error);
    // Apollo has already defaulted a missing code to INTERNAL_SERVER_ERROR.
    const code = formatted.extensions?.code;
    if (mask && !isClientErrorCode(code)) {
      return {
        message: 'Internal server error',
        ...(formatted.locations ? { locations: formatted.locations } : {}),
        ...(formatted.path ? { path: formatted.path } : {}),
        extensions: { code: INTERNAL_SERVER_ERROR },
      };
    }
    const { extensions } = formatted;
    let shown = extensions;
    if (extensions && Array.isArray(extensions.stacktrace)) {
      // A stack trace is a development aid: gone in production, bounded line by line otherwise
      // (its first line repeats the message).
      const { stacktrace, ...rest } = extensions;
      shown = mask ? rest : { ...rest, stacktrace: (stacktrace as unknown[]).map((line) => bound(String(line))) };
    }
    return { ...formatted, message: bound(formatted.message), ...(shown ? { extensions: shown } : {}) };
  };

  const tagOf = (context: TContext): RequestTag | undefined => deps.requestOf(context);

  const plugin: ApolloServerPlugin<TContext> = {
    async requestDidStart() {
      return {
        async didEncounterErrors(requestContext: GraphQLRequestContextDidEncounterErrors<TContext>) {
          const tag = tagOf(requestContext.contextValue);
          const logger = tag?.logger ?? deps.logger;
          for (const error of requestContext.errors) logInternal(logger, error, mask);
        },
        async willSendResponse({ response, contextValue }) {
          if (!mask) return;
          const result = response.body.kind === 'single' ? response.body.singleResult : response.body.initialResult;
          if (!result.errors?.some((e) => e.extensions?.code === INTERNAL_SERVER_ERROR)) return;
          const requestId = tagOf(contextValue)?.requestId;
          if (!requestId) return;
          result.errors = result.errors.map((e) =>
            e.extensions?.code === INTERNAL_SERVER_ERROR
              ? { ...e, message: `Internal server error (request id ${requestId})`, extensions: { code: INTERNAL_SERVER_ERROR, requestId } }
              : e,
          );
        },
      };
    },
  };

  return { formatError, plugin };
}

/**
 * A thrown {@link DomainError} as the client sees it: its code, field and details replace Apollo's
 * default INTERNAL_SERVER_ERROR. The message stays Apollo's, which for a resolver's throw is the
 * DomainError's own (graphql-js copies it) and for a variable's coercion keeps graphql-js's
 * `Variable "$x" got invalid value` context. A stack trace Apollo added stays for the rules after
 * (kept in development with `debug`, dropped in production). Undefined when no DomainError is behind it.
 */
function domainErrorCoded(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError | undefined {
  const domain = domainErrorOf(error);
  if (!domain) return undefined;
  return { ...formatted, extensions: { ...formatted.extensions, ...domain.extensionsForClient() } };
}

/**
 * Apollo Server refuses some malformed requests with a GraphQLError that has an HTTP 4xx but no
 * code ("Unsupported persisted query version", "provided sha does not match query"), which it then
 * defaults to INTERNAL_SERVER_ERROR. They are the client's mistakes: BAD_REQUEST. Only errors
 * GraphQL itself raised qualify (no `originalError`), never a resolver's exception.
 */
function requestErrorCoded(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError {
  if (formatted.extensions?.code !== INTERNAL_SERVER_ERROR || !error || typeof error !== 'object') return formatted;
  const original = error as { originalError?: unknown; extensions?: { http?: { status?: unknown } } };
  const status = original.extensions?.http?.status;
  if (original.originalError !== undefined || typeof status !== 'number' || status < 400 || status >= 500) return formatted;
  return { ...formatted, extensions: { ...formatted.extensions, code: 'BAD_REQUEST' } };
}

/** Logs an error that is not a client error, with what the client was not told. */
function logInternal(logger: Logger, error: GraphQLError, masked: boolean): void {
  // A DomainError's code is on the error behind this one until formatError moves it.
  const code = domainErrorOf(error)?.code ?? error.extensions?.code ?? INTERNAL_SERVER_ERROR;
  if (isClientErrorCode(code)) return;
  const serviceName = error.extensions?.serviceName;
  logger.error(
    {
      err: error.originalError ?? error,
      code,
      ...(error.path ? { path: error.path } : {}),
      ...(typeof serviceName === 'string' ? { serviceName } : {}),
    },
    masked ? 'internal error (the client was given INTERNAL_SERVER_ERROR and this request id)' : 'internal error',
  );
}
