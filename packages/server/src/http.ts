import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ApolloServer, BaseContext, HTTPGraphQLRequest } from '@apollo/server';
import getPort from 'get-port';
import { HeaderMap } from '@apollo/server';
import { type Logger, type Telemetry, withExemplars } from '@shop/telemetry';
import { activeTraceIds, inSpan, trace, tracingEnabled } from '@shop/tracing';
import { type AdmissionOptions, createAdmitter } from './admission';
import { quote } from './client-errors';

/** What a request handler sees besides Node's request and response. */
export interface RequestInfo {
  req: IncomingMessage;
  requestId: string;
  logger: Logger;
  /**
   * Aborted when the client goes away before its response is written: the work done for it
   * (subgraph fetches at the gateway, resolvers in a subgraph) stops.
   */
  signal: AbortSignal;
  /**
   * When the caller stops waiting (epoch ms): the sooner of the server's `requestTimeoutMs` and the
   * caller's `x-request-timeout-ms` header (the gateway sends what is left of its client's budget).
   * Undefined when neither is set.
   */
  deadline: number | undefined;
  /**
   * Who the request is from, once verified: at the gateway, the claims of a valid bearer token
   * (`authenticate`); in a subgraph, the identity the gateway signed (`gatewaySecret`). Undefined
   * for an anonymous request, and always undefined where nothing verifies it.
   */
  identity: Identity | undefined;
  /**
   * In a subgraph: the bus event a subscription field is resolved for, as the gateway sends it in
   * the body's `extensions.subscriptionEvent` (see `subscriptionEventOf`). Read only from a body
   * whose signature was verified, or where the subgraph checks none (then, like the identity, it
   * comes from whoever reached it: resolvers still authorize the caller on what they read).
   */
  subscriptionEvent?: SubscriptionEvent | undefined;
}

/** What a subscription field's resolver is told about the event it answers (a bus envelope's fields). */
export interface SubscriptionEvent {
  id: string;
  type: string;
  aggregateId: string;
  aggregateVersion: number;
  payload: Record<string, unknown>;
}

/** The `extensions.subscriptionEvent` of a parsed request body, when it has that shape. */
export function subscriptionEventOf(body: unknown): SubscriptionEvent | undefined {
  const event = (body as { extensions?: { subscriptionEvent?: unknown } } | null)?.extensions?.subscriptionEvent;
  if (typeof event !== 'object' || event === null) return undefined;
  const e = event as Record<string, unknown>;
  if (typeof e.id !== 'string' || typeof e.type !== 'string' || typeof e.aggregateId !== 'string') return undefined;
  if (typeof e.aggregateVersion !== 'number' || typeof e.payload !== 'object' || e.payload === null) return undefined;
  return {
    id: e.id,
    type: e.type,
    aggregateId: e.aggregateId,
    aggregateVersion: e.aggregateVersion,
    payload: e.payload as Record<string, unknown>,
  };
}

/** A verified caller: the token's subject, roles and scopes. */
export interface Identity {
  sub: string;
  roles: readonly string[];
  scopes: readonly string[];
}

/** Thrown by an `authenticate` hook: the request is answered 401 UNAUTHENTICATED with this message. */
export class AuthenticationError extends Error {
  readonly code = 'UNAUTHENTICATED';
  constructor(message: string) {
    super(message);
    this.name = 'AuthenticationError';
  }
}

/** The gateway's verified caller, as it sends it to a subgraph (base64url JSON of an {@link Identity}). */
export const IDENTITY_HEADER = 'x-gateway-identity';
/** `t=<unix ms>,v1=<hex HMAC-SHA256>`: the gateway's signature of a subgraph request. */
export const SIGNATURE_HEADER = 'x-gateway-signature';
/** A signature older than this (or this far in the future: clocks differ) is refused. */
export const SIGNATURE_MAX_AGE_MS = 60_000;

/** The header value of an identity: base64url, so it needs no escaping and cannot break a header. */
export function encodeIdentity(identity: Identity): string {
  return Buffer.from(JSON.stringify({ sub: identity.sub, roles: identity.roles, scopes: identity.scopes })).toString('base64url');
}

const isStringList = (value: unknown): value is string[] => Array.isArray(value) && value.every((v) => typeof v === 'string');

/** The identity in a header value, or undefined when it is not one. The HTTP front decodes only signed values. */
export function decodeIdentity(value: string): Identity | undefined {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(value, 'base64url').toString('utf8'));
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const { sub, roles, scopes } = parsed as Record<string, unknown>;
    if (typeof sub !== 'string' || !isStringList(roles) || !isStringList(scopes)) return undefined;
    return { sub, roles, scopes };
  } catch {
    return undefined;
  }
}

/** What the gateway signs of a subgraph request. */
export interface SignedParts {
  method: string;
  /** The request target: path and query string. */
  path: string;
  /** Unix ms. */
  timestamp: number;
  /** The {@link IDENTITY_HEADER} value, '' for an anonymous request. */
  identity: string;
  body: string;
}

/**
 * HMAC-SHA256 over method, path, timestamp, identity and body, one per line: none of the first
 * four can hold a newline (the identity is base64url), so no two requests sign the same text.
 */
export function gatewaySignature(secret: string, parts: SignedParts): string {
  return createHmac('sha256', secret)
    .update(`${parts.method.toUpperCase()}\n${parts.path}\n${parts.timestamp}\n${parts.identity}\n${parts.body}`)
    .digest('hex');
}

/** The {@link SIGNATURE_HEADER} value for a request. */
export function signatureHeader(secret: string, parts: SignedParts): string {
  return `t=${parts.timestamp},v1=${gatewaySignature(secret, parts)}`;
}

/**
 * The headers of a request to `url` as the gateway would sign it, for tools and tests that call
 * a subgraph directly (the gateway's own signing is its fetch pipeline's `signLayer`).
 */
export function gatewayHeaders(
  secret: string,
  url: string,
  body: string,
  options: { identity?: Identity; method?: string; timestamp?: number } = {},
): Record<string, string> {
  const { pathname, search } = new URL(url);
  const identity = options.identity ? encodeIdentity(options.identity) : '';
  const signature = signatureHeader(secret, {
    method: options.method ?? 'POST',
    path: `${pathname}${search}`,
    timestamp: options.timestamp ?? Date.now(),
    identity,
    body,
  });
  return identity === '' ? { [SIGNATURE_HEADER]: signature } : { [SIGNATURE_HEADER]: signature, [IDENTITY_HEADER]: identity };
}

const SIGNATURE_FORMAT = /^t=(\d{1,15}),v1=([0-9a-f]{64})$/;

/**
 * The first half of a subgraph's check, before the body is read: a signature header is there,
 * well-formed and fresh. Returns its timestamp and MAC for {@link verifySignedBody}.
 */
function signatureOf(req: IncomingMessage, now: number): { timestamp: number; mac: Buffer } {
  const header = req.headers[SIGNATURE_HEADER];
  if (typeof header !== 'string') throw new HttpError(401, 'UNAUTHENTICATED', 'This service answers only requests signed by the gateway.');
  const match = SIGNATURE_FORMAT.exec(header);
  if (!match) throw new HttpError(401, 'UNAUTHENTICATED', `The ${SIGNATURE_HEADER} header is malformed.`);
  const timestamp = Number(match[1]);
  if (Math.abs(now - timestamp) > SIGNATURE_MAX_AGE_MS) {
    throw new HttpError(401, 'UNAUTHENTICATED', 'The request signature is stale or from the future.');
  }
  return { timestamp, mac: Buffer.from(match[2] as string, 'hex') };
}

/** The second half: the MAC matches the request as received; returns the identity it carries. */
function verifySignedBody(
  secret: string,
  req: IncomingMessage,
  signature: { timestamp: number; mac: Buffer },
  body: string,
): Identity | undefined {
  const identityHeader = req.headers[IDENTITY_HEADER];
  const identity = typeof identityHeader === 'string' ? identityHeader : '';
  const expected = Buffer.from(
    gatewaySignature(secret, { method: req.method ?? 'GET', path: req.url ?? '/', timestamp: signature.timestamp, identity, body }),
    'hex',
  );
  if (!timingSafeEqual(expected, signature.mac)) throw new HttpError(401, 'UNAUTHENTICATED', 'The request signature does not match.');
  if (identity === '') return undefined;
  const decoded = decodeIdentity(identity);
  // Signed by the gateway yet unreadable: a bug, not an attack; refused all the same.
  if (!decoded) throw new HttpError(401, 'UNAUTHENTICATED', `The ${IDENTITY_HEADER} header is not an identity.`);
  return decoded;
}

/** The header a caller names its remaining patience in, in milliseconds. */
export const REQUEST_TIMEOUT_HEADER = 'x-request-timeout-ms';
/** A caller's `x-request-timeout-ms` above this is read as this. */
const MAX_REQUEST_TIMEOUT_MS = 600_000;

/** A route handler; return false to fall through to the next matching route (404 at the end). */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse, info: RequestInfo) => Promise<boolean | void>;

export interface HttpServerOptions<TContext extends BaseContext> {
  telemetry: Telemetry;
  /** The GraphQL server, mounted at `graphqlPath`. It must already be started. */
  apollo: ApolloServer<TContext>;
  /** Builds the per-request context (DataLoaders live here). */
  context: (info: RequestInfo) => Promise<TContext>;
  /** Answers `GET /ready`: true when every dependency this process needs is reachable. */
  ready: () => Promise<boolean>;
  /** @default '/graphql' */
  graphqlPath?: string;
  /** Largest request body accepted, in bytes. @default 1_000_000 */
  bodyLimit?: number;
  /** Extra routes by path, tried before the GraphQL endpoint (the explorer, admin endpoints). */
  routes?: Record<string, RouteHandler>;
  /**
   * Largest GraphQL response body sent, in bytes (`MAX_RESPONSE_BYTES`); a bigger one is replaced
   * by a `RESPONSE_TOO_LARGE` error. @default 5_000_000
   */
  responseLimit?: number;
  /** Load shedding (503) and rate limiting (429) of GraphQL requests; /health, /ready and /metrics are always answered. */
  admission?: AdmissionOptions | undefined;
  /** Every request's deadline, this long after it arrives (the gateway's REQUEST_TIMEOUT_MS). @default none */
  requestTimeoutMs?: number | undefined;
  /**
   * The gateway's check of a GraphQL request's credentials, after admission and before its body
   * is read: returns the verified identity, undefined for an anonymous request, or throws
   * {@link AuthenticationError} (401 UNAUTHENTICATED). @default none: every request is anonymous
   */
  authenticate?: ((req: IncomingMessage) => Promise<Identity | undefined>) | undefined;
  /**
   * A subgraph's `SUBGRAPH_SECRET`: every request to the GraphQL endpoint must carry the gateway's
   * {@link SIGNATURE_HEADER} over it, fresh and matching the request (the body included) before the
   * body is parsed; otherwise 401 UNAUTHENTICATED. The signed {@link IDENTITY_HEADER} becomes
   * `RequestInfo.identity`. `/health`, `/ready`, `/metrics` and the extra `routes` stay open: they
   * are public by design (accounts' JWKS, which the gateway fetches unsigned, is one).
   * @default none: no check, and no identity
   */
  gatewaySecret?: string | undefined;
  /**
   * `SUBGRAPH_ALLOW_UNSIGNED` beside a `gatewaySecret` (benchmarks only): a request without a
   * {@link SIGNATURE_HEADER} is answered as anonymous instead of refused, so gateways that cannot
   * sign (the bench's peers) reach the same subgraphs as ours. A request that carries a signature
   * is still checked in full, and only a verified one has an identity: an unsigned identity header
   * is never believed. @default false
   */
  allowUnsigned?: boolean | undefined;
  /**
   * Long-lived streams on the GraphQL path (the gateway's subscriptions): `upgrade` takes a
   * WebSocket upgrade of `graphqlPath` (any other path is refused with 404, and every upgrade
   * with 503 while draining); `eventStream` answers a request to `graphqlPath` that accepts only
   * `text/event-stream`, after admission and `authenticate` (it reads the body itself);
   * `close` ends every stream with a coded reason when the server drains, before it stops.
   * @default none: upgrades are refused and event streams are not offered
   */
  streams?: StreamFront | undefined;
}

/** See {@link HttpServerOptions.streams}. */
export interface StreamFront {
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  eventStream(req: IncomingMessage, res: ServerResponse, info: RequestInfo): Promise<void>;
  close(): Promise<void>;
}

/** What `listen().stop()` runs after the drain delay, before it stops the server: the streams' close. */
const closeStreams = new WeakMap<Server, () => Promise<void>>();

/** True when a request asks for Server-Sent Events (and not for a JSON answer as well). */
export function wantsEventStream(accept: string | undefined): boolean {
  // Every GraphQL request asks: the common answer costs one substring search, no parse.
  if (!accept?.includes('text/event-stream')) return false;
  const ranges = accept.split(',').map((range) => parseMediaType(range).essence);
  return ranges.includes('text/event-stream') && !ranges.some((r) => r === 'application/json' || r === 'application/graphql-response+json');
}

/**
 * Servers that are draining: `/ready` answers 503 `draining` (a load balancer's health check
 * takes the process out of rotation) while requests are still served, each response closing its
 * connection so keep-alive clients reconnect to another replica.
 */
const draining = new WeakSet<Server>();

/** A listening HTTP server that drains in-flight requests on `stop()`. */
export interface RunningServer {
  server: Server;
  port: number;
  url: string;
  stop(): Promise<void>;
}

const JSON_TYPE = 'application/json; charset=utf-8';
const GRAPHQL_RESPONSE_TYPE = 'application/graphql-response+json; charset=utf-8';

/** A media type split into its lower-cased essence (`type/subtype`) and parameters. */
interface MediaType {
  essence: string;
  params: Map<string, string>;
}

function parseMediaType(value: string): MediaType {
  const [essence = '', ...rest] = value.split(';');
  const params = new Map<string, string>();
  for (const part of rest) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    params.set(
      part.slice(0, eq).trim().toLowerCase(),
      part
        .slice(eq + 1)
        .trim()
        .replace(/^"(.*)"$/, '$1')
        .toLowerCase(),
    );
  }
  return { essence: essence.trim().toLowerCase(), params };
}

/**
 * The media type a GraphQL response goes out as, for the errors this module writes itself
 * (Apollo negotiates its own): the Accept header's preference between `application/json` and
 * `application/graphql-response+json`, ranked as Apollo's negotiator ranks them (q, then the more
 * specific range, then the range's place in the header), so that one request never gets two
 * answers. No Accept header, or one that accepts neither, is `application/json`: the legacy
 * default of GraphQL over HTTP, and an error is better sent than replaced by a 406.
 */
export function graphqlResponseType(accept: string | undefined): string {
  if (!accept) return JSON_TYPE;
  const ranges = accept.split(',').map((range, index) => {
    const { essence, params } = parseMediaType(range);
    const q = Number(params.get('q') ?? '1');
    return { essence, q: Number.isFinite(q) ? q : 0, index };
  });
  const rank = (type: string) => {
    let best = { q: 0, specificity: -1, index: Number.MAX_SAFE_INTEGER };
    for (const range of ranges) {
      const specificity = range.essence === type ? 2 : range.essence === `${type.split('/')[0]}/*` ? 1 : range.essence === '*/*' ? 0 : -1;
      if (specificity > best.specificity) best = { q: range.q, specificity, index: range.index };
    }
    return best;
  };
  const json = rank('application/json');
  const graphql = rank('application/graphql-response+json');
  const prefersGraphQL =
    graphql.q > 0 &&
    (graphql.q > json.q ||
      (graphql.q === json.q &&
        (graphql.specificity > json.specificity || (graphql.specificity === json.specificity && graphql.index < json.index))));
  return prefersGraphQL ? GRAPHQL_RESPONSE_TYPE : JSON_TYPE;
}

/**
 * Writes a GraphQL-shaped error response: `{ errors: [{ message, extensions: { code } }] }`, in
 * the media type the request's Accept header prefers (see `graphqlResponseType`).
 */
export function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(status, { 'content-type': graphqlResponseType(res.req.headers.accept) });
  res.end(JSON.stringify({ errors: [{ message, extensions: { code } }] }));
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new HttpError(413, 'PAYLOAD_TOO_LARGE', `Request body exceeds ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > limit) throw new HttpError(413, 'PAYLOAD_TOO_LARGE', `Request body exceeds ${limit} bytes`);
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Our CSRF rule, in place of Apollo's `csrfPrevention` (off in the gateway and the subgraphs):
 * a POST body must be `application/json` in UTF-8. A browser sends that type cross-site only
 * after a CORS preflight, which this server never grants (it sends no CORS headers), so no other
 * site can make a visitor's browser run an operation. The simple-request types a form or a
 * no-cors `fetch` can send (`text/plain`, `application/x-www-form-urlencoded`,
 * `multipart/form-data`), a missing type and every other type are refused with 415 before the
 * body is read. GET needs no such rule here: Apollo runs only queries over GET (a mutation is a
 * 405), queries have no side effects, and credentials are bearer tokens, never cookies, so a
 * cross-site GET runs without the visitor's identity and its answer is unreadable to the site.
 * Apollo's own rule would also refuse every GET without a preflight header, which plain clients
 * and GraphQL over HTTP's URL-encoded GETs do not send.
 */
function refuseUnlessJson(header: string | undefined): void {
  const { essence, params } = parseMediaType(header ?? '');
  const charset = params.get('charset');
  if (essence !== 'application/json') {
    const received = header ? `content-type ${quote(header)}` : 'no content-type';
    throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', `POST requests must send an application/json body; received ${received}`);
  }
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', `POST bodies must be UTF-8; received charset ${quote(charset)}`);
  }
}

/**
 * The codes of GraphQL request errors: a well-formed request whose document does not parse or
 * validate (our document limits included), whose operation cannot be picked, or whose variables
 * do not coerce. Apollo answers them with 400 in every media type. `BAD_REQUEST` (a request that
 * is not well-formed: no `query`, `variables` not an object) is not one of them and keeps its 400.
 */
const REQUEST_ERROR_CODES: ReadonlySet<unknown> = new Set([
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_USER_INPUT',
  'OPERATION_RESOLUTION_FAILURE',
  // Demand control is validation by another name (the spec's own example of a request error).
  'COST_ESTIMATED_TOO_EXPENSIVE',
]);

/**
 * True for Apollo's 400 carrying only request errors, in an `application/json` response. GraphQL
 * over HTTP wants 200 there (a client of the legacy type cannot tell a 4xx from the server from
 * one made by a proxy, so the server vouches for its body with 200); with
 * `application/graphql-response+json` the 400 stays. Parses the body of 400s only.
 */
function isLegacyRequestErrorResponse(status: number, contentType: string | undefined, body: string): boolean {
  if (status !== 400 || parseMediaType(contentType ?? '').essence !== 'application/json') return false;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return false;
  }
  if (typeof parsed !== 'object' || parsed === null || 'data' in parsed) return false;
  const errors = (parsed as { errors?: unknown }).errors;
  return (
    Array.isArray(errors) &&
    errors.length > 0 &&
    errors.every((error: unknown) => REQUEST_ERROR_CODES.has((error as { extensions?: { code?: unknown } } | null)?.extensions?.code))
  );
}

/** Deepest nesting of arrays and objects accepted in a request's JSON. */
export const MAX_JSON_DEPTH = 64;

/**
 * Refuses JSON nested deeper than {@link MAX_JSON_DEPTH}, in one pass over the text before it is
 * parsed. Variables 10,000 levels deep parse fine but overflow the stack of whatever walks them
 * recursively later (graphql-js's input coercion at the gateway did: a RangeError and a 500); no
 * real variable comes near 64 levels.
 */
function refuseDeepJson(text: string, what: string): void {
  if (jsonDeeperThan(text, MAX_JSON_DEPTH))
    throw new HttpError(400, 'BAD_REQUEST', `${what} nests JSON deeper than ${MAX_JSON_DEPTH} levels.`);
}

/**
 * Whether JSON text nests arrays and objects deeper than `max`, in one pass over the text (no
 * parse): for a request body, a URL parameter or a WebSocket message before it is parsed.
 */
export function jsonDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

/** A request's path and query, parsed (the base only completes the relative URL; no host is read from it). */
const searchOf = (req: IncomingMessage): URL => new URL(req.url ?? '/', 'http://localhost');

/** A request body's JSON: refused with a coded 400 when empty, nested too deep or not JSON. */
function parseJsonBody(text: string): unknown {
  if (text.trim() === '') throw new HttpError(400, 'BAD_REQUEST', 'Request body is empty; expected a JSON object');
  refuseDeepJson(text, 'The request body');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new HttpError(400, 'BAD_REQUEST', `Request body is not valid JSON: ${(err as Error).message}`);
  }
}

/** A GraphQL request's parameters, as a stream transport reads them itself. */
export interface GraphQLParams {
  query: string;
  variables: Record<string, unknown> | undefined;
  operationName: string | undefined;
  extensions: Record<string, unknown> | undefined;
}

/**
 * The parameters of a GraphQL request sent to a stream (an SSE request): from the URL of a GET,
 * from the JSON body of a POST, with the checks of the GraphQL endpoint (415 for a body that is
 * not JSON in UTF-8, 413 past `limit` bytes, 400 for JSON nested too deep, not JSON, or without
 * a `query` string); throws what `createHttpServer`'s handler answers with its code.
 */
export async function readGraphQLParams(req: IncomingMessage, limit: number): Promise<GraphQLParams> {
  const method = (req.method ?? 'GET').toUpperCase();
  let raw: Record<string, unknown>;
  if (method === 'POST') {
    refuseUnlessJson(req.headers['content-type']);
    const body = parseJsonBody(await readBody(req, limit));
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new HttpError(400, 'BAD_REQUEST', 'Request body must be a JSON object');
    raw = body as Record<string, unknown>;
  } else if (method === 'GET') {
    const url = searchOf(req);
    raw = {};
    for (const name of ['query', 'operationName']) raw[name] = url.searchParams.get(name) ?? undefined;
    for (const name of ['variables', 'extensions']) {
      const param = url.searchParams.get(name);
      if (param) raw[name] = parseJsonBody(param);
    }
  } else {
    throw new HttpError(405, 'METHOD_NOT_ALLOWED', 'Use GET or POST');
  }
  const objectOrUndefined = (value: unknown, name: string): Record<string, unknown> | undefined => {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'object' || Array.isArray(value)) throw new HttpError(400, 'BAD_REQUEST', `${name} must be an object`);
    return value as Record<string, unknown>;
  };
  if (typeof raw.query !== 'string' || raw.query === '') throw new HttpError(400, 'BAD_REQUEST', 'The request has no query string');
  if (raw.operationName !== undefined && raw.operationName !== null && typeof raw.operationName !== 'string')
    throw new HttpError(400, 'BAD_REQUEST', 'operationName must be a string');
  return {
    query: raw.query,
    variables: objectOrUndefined(raw.variables, 'variables'),
    operationName: typeof raw.operationName === 'string' ? raw.operationName : undefined,
    extensions: objectOrUndefined(raw.extensions, 'extensions'),
  };
}

/**
 * Creates the HTTP front of a process: `/health`, `/ready`, `/metrics`, extra routes and the
 * GraphQL endpoint on Apollo Server's framework-neutral `executeHTTPGraphQLRequest`. A POST whose
 * body is not `application/json` (415), not JSON (400) or too large (413) gets a GraphQL error
 * with a code before Apollo sees it; request errors in an `application/json` response are a 200.
 */
export function createHttpServer<TContext extends BaseContext>(options: HttpServerOptions<TContext>): Server {
  const { telemetry, apollo } = options;
  const graphqlPath = options.graphqlPath ?? '/graphql';
  const bodyLimit = options.bodyLimit ?? 1_000_000;
  const responseLimit = options.responseLimit ?? 5_000_000;
  const routes = options.routes ?? {};
  const httpRequests = telemetry.metrics.httpRequests;
  const httpRequestDuration = telemetry.metrics.httpRequestDuration;
  // Decided once: with tracing on, each observation names its trace (an OpenMetrics exemplar).
  const exemplars = withExemplars(telemetry.registry);
  const observeDuration = (labels: Record<'service' | 'route' | 'status', string>, seconds: number) => {
    if (!exemplars) {
      httpRequestDuration.observe(labels, seconds);
      return;
    }
    const ids = activeTraceIds();
    // prom-client types exemplar labels as the metric's own label names; OpenMetrics allows any.
    const exemplarLabels = ids ? ({ trace_id: ids.traceId, span_id: ids.spanId } as unknown as typeof labels) : undefined;
    httpRequestDuration.observe(exemplarLabels ? { labels, value: seconds, exemplarLabels } : { labels, value: seconds });
  };
  const admitter = createAdmitter(options.admission ?? {});
  const requestsShed = telemetry.metrics.requestsShed;
  const gatewaySecret = options.gatewaySecret;

  const deadlineOf = (req: IncomingMessage, now: number): number | undefined => {
    const header = req.headers[REQUEST_TIMEOUT_HEADER];
    const asked = typeof header === 'string' && /^\d{1,9}$/.test(header) ? Math.min(Number(header), MAX_REQUEST_TIMEOUT_MS) : 0;
    const own = options.requestTimeoutMs ?? 0;
    // Called per request: the sooner of the two that are set (0: not set), without allocating.
    const ms = asked > 0 && own > 0 ? Math.min(asked, own) : asked || own;
    return ms > 0 ? now + ms : undefined;
  };

  const handleGraphQL = async (req: IncomingMessage, res: ServerResponse, info: RequestInfo) => {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = searchOf(req);
    let body: unknown = undefined;
    // Header and freshness first: an unsigned request is refused before its body is read (or, with
    // allowUnsigned, answered as anonymous).
    const unsignedAllowed = options.allowUnsigned === true && req.headers[SIGNATURE_HEADER] === undefined;
    const signature = gatewaySecret === undefined || unsignedAllowed ? undefined : signatureOf(req, Date.now());
    if (method === 'POST') {
      refuseUnlessJson(req.headers['content-type']);
      const text = await readBody(req, bodyLimit);
      if (gatewaySecret !== undefined && signature) info.identity = verifySignedBody(gatewaySecret, req, signature, text);
      body = parseJsonBody(text);
      // A subgraph's: only what the gateway signed (or, where nothing is checked, what was sent).
      if (gatewaySecret === undefined || signature) info.subscriptionEvent = subscriptionEventOf(body);
    } else if (gatewaySecret !== undefined && signature) {
      info.identity = verifySignedBody(gatewaySecret, req, signature, '');
    }
    for (const name of ['variables', 'extensions']) {
      const param = url.searchParams.get(name);
      if (param) refuseDeepJson(param, `The ${name} parameter`);
    }
    const headers = new HeaderMap();
    for (const [key, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
    }
    const httpGraphQLRequest: HTTPGraphQLRequest = { method, headers, search: url.search, body };
    const response = await apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest,
      context: () => options.context(info),
    });
    for (const [key, value] of response.headers) res.setHeader(key, value);
    res.statusCode = response.status ?? 200;
    if (
      response.body.kind === 'complete' &&
      isLegacyRequestErrorResponse(res.statusCode, response.headers.get('content-type'), response.body.string)
    ) {
      res.statusCode = 200;
    }
    if (response.body.kind === 'complete') {
      const size = Buffer.byteLength(response.body.string);
      if (size > responseLimit) {
        info.logger.warn({ size, limit: responseLimit }, 'response over MAX_RESPONSE_BYTES replaced by an error');
        res.statusCode = 200;
        res.setHeader('content-type', response.headers.get('content-type') ?? JSON_TYPE);
        res.end(
          JSON.stringify({
            data: null,
            errors: [
              {
                message: `The response is ${size} bytes; the limit is ${responseLimit}. Ask for fewer items.`,
                extensions: { code: 'RESPONSE_TOO_LARGE' },
              },
            ],
          }),
        );
        return;
      }
      res.end(response.body.string);
    } else {
      for await (const chunk of response.body.asyncIterator) res.write(chunk);
      res.end();
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const requestIdHeader = req.headers['x-request-id'];
    const requestId = typeof requestIdHeader === 'string' && requestIdHeader.length <= 128 ? requestIdHeader : randomUUID();
    res.setHeader('x-request-id', requestId);
    // The request id and the trace meet here: the HTTP span names the id, the logs name both.
    if (tracingEnabled()) trace.getActiveSpan()?.setAttribute('shop.request_id', requestId);
    const aborter = new AbortController();
    // 'close' after the response was written is the normal end; before it, the client went away.
    res.once('close', () => {
      if (!res.writableFinished) aborter.abort(new Error('the client went away'));
    });
    const info: RequestInfo = {
      req,
      requestId,
      logger: telemetry.logger.child({ requestId }),
      signal: aborter.signal,
      deadline: deadlineOf(req, Date.now()),
      identity: undefined,
    };
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const started = performance.now();
    let route = 'other';
    try {
      if (path === '/health') {
        route = 'health';
        res.writeHead(200, { 'content-type': JSON_TYPE }).end(JSON.stringify({ status: 'ok', service: telemetry.service }));
      } else if (path === '/ready') {
        route = 'ready';
        const status = draining.has(server) ? 'draining' : (await options.ready().catch(() => false)) ? 'ready' : 'not ready';
        res
          .writeHead(status === 'ready' ? 200 : 503, { 'content-type': JSON_TYPE })
          .end(JSON.stringify({ status, service: telemetry.service }));
      } else if (path === '/metrics') {
        route = 'metrics';
        const text = await telemetry.registry.metrics();
        res.writeHead(200, { 'content-type': telemetry.registry.contentType }).end(text);
      } else {
        const handler = routes[path];
        if (handler) {
          route = path;
          const handled = await handler(req, res, info);
          if (handled !== false) return;
        }
        if (path === graphqlPath) {
          const stream = options.streams !== undefined && wantsEventStream(req.headers.accept);
          route = stream ? 'graphql-stream' : 'graphql';
          const admission = await admitter.admit(req);
          if (!admission.admitted) {
            requestsShed.inc({ service: telemetry.service, reason: admission.code === 'RATE_LIMITED' ? 'rate_limited' : 'overloaded' });
            res.setHeader('retry-after', String(admission.retryAfterS));
            sendError(res, admission.status, admission.code, admission.message);
            return;
          }
          try {
            if (options.authenticate) info.identity = await options.authenticate(req);
            if (stream && options.streams) {
              // A stream holds no in-flight slot for its life: it has its own caps.
              admission.done();
              info.deadline = undefined;
              await options.streams.eventStream(req, res, info);
              return;
            }
            if (tracingEnabled()) {
              await inSpan(`${telemetry.service} graphql`, { 'shop.service': telemetry.service, 'shop.request_id': requestId }, () =>
                handleGraphQL(req, res, info),
              );
            } else {
              await handleGraphQL(req, res, info);
            }
          } finally {
            admission.done();
          }
        } else {
          // The path is the client's: only a short prefix of it goes back.
          sendError(res, 404, 'NOT_FOUND', `No route for ${req.method ?? 'GET'} ${quote(path)}`);
        }
      }
    } catch (err) {
      if (err instanceof HttpError) {
        sendError(res, err.status, err.code, err.message);
      } else if (err instanceof AuthenticationError) {
        sendError(res, 401, err.code, err.message);
      } else {
        info.logger.error({ err }, 'request failed');
        sendError(res, 500, 'INTERNAL_SERVER_ERROR', 'Internal server error');
      }
    } finally {
      const labels = { service: telemetry.service, route, status: String(res.statusCode) };
      httpRequests.inc(labels);
      observeDuration(labels, (performance.now() - started) / 1000);
      info.logger.debug({ method: req.method, path, status: res.statusCode, ms: Math.round(performance.now() - started) }, 'request');
    }
  };

  const server = createServer((req, res) => {
    if (draining.has(server)) res.setHeader('connection', 'close');
    void handle(req, res);
  });
  server.once('close', () => admitter.close());
  const streams = options.streams;
  if (streams) {
    closeStreams.set(server, () => streams.close());
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      const refuse = (status: string) => {
        socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      };
      if (path !== graphqlPath) refuse('404 Not Found');
      else if (draining.has(server)) refuse('503 Service Unavailable');
      else {
        // Admission as for a request (load shedding, the per-client rate limit), released once the
        // handshake is handed on: a long-lived socket holds no in-flight slot (streams have caps).
        admitter.admit(req).then(
          (admission) => {
            if (!admission.admitted) {
              requestsShed.inc({ service: telemetry.service, reason: admission.code === 'RATE_LIMITED' ? 'rate_limited' : 'overloaded' });
              refuse(admission.status === 429 ? '429 Too Many Requests' : '503 Service Unavailable');
              return;
            }
            admission.done();
            streams.upgrade(req, socket, head);
          },
          () => refuse('503 Service Unavailable'),
        );
      }
    });
  }
  // Keep-alive longer than typical client/load-balancer idle timeouts avoids racing resets.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  return server;
}

export interface DrainOptions {
  /**
   * `DRAIN_DELAY_MS`: on `stop()`, how long `/ready` answers 503 `draining` while requests are
   * still served, before the server stops accepting: long enough for load balancers' health
   * checks (and Kubernetes' endpoint removal) to take the replica out of rotation. @default 0
   */
  drainDelayMs?: number;
}

/**
 * Listens on `port` (0 for any free port) and returns a handle whose `stop()` first reports not
 * ready for `drainDelayMs` while still serving, then stops accepting connections, lets in-flight
 * requests finish and closes idle keep-alive connections.
 */
export async function listen(server: Server, port: number, host = '0.0.0.0', options: DrainOptions = {}): Promise<RunningServer> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = host === '0.0.0.0' || host === '::' ? 'localhost' : host;
  return {
    server,
    port: address.port,
    url: `http://${shownHost}:${address.port}`,
    stop: async () => {
      draining.add(server);
      const delayMs = options.drainDelayMs ?? 0;
      if (delayMs > 0 && server.listening) await new Promise((resolve) => setTimeout(resolve, delayMs));
      // Streams never end by themselves: each is closed with a coded reason, so clients reconnect elsewhere.
      await closeStreams.get(server)?.();
      await stopServer(server);
    },
  };
}

/** Stops accepting, waits for in-flight requests (at most `graceMs`), then drops what is left. */
export function stopServer(server: Server, graceMs = 10_000): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    // A keep-alive connection whose request finishes after close() turns idle and would hold the
    // server open until the grace period ends: keep closing idle connections until none is left.
    const sweeper = setInterval(() => server.closeIdleConnections(), 25);
    server.close(() => {
      clearTimeout(timer);
      clearInterval(sweeper);
      resolve();
    });
    server.closeIdleConnections();
  });
}

/**
 * A free TCP port on loopback, for processes that must be told their port up front. get-port
 * keeps each port it hands out locked for 15 to 30 s, so two callers in one process never get the
 * same port while the first child has yet to bind it (the kernel hands a just-closed port out again).
 */
export function freePort(): Promise<number> {
  return getPort({ host: '127.0.0.1' });
}
