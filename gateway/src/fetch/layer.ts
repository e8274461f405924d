import type { GraphQLFormattedError } from 'graphql';
import type { Hint } from './hint';
import { type Representation, stableStringify } from './representation';

// The one interface every fetch layer implements, and the helpers the `_entities` layers share.
// It lives apart from pipeline.ts (which imports every layer) so that no layer imports the
// module that imports it.

/** A subgraph's GraphQL answer. */
export interface GraphQLBody {
  data?: Record<string, unknown> | null;
  errors?: GraphQLFormattedError[];
  extensions?: Record<string, unknown>;
}

/** Apollo's overall cache policy of the client's operation (`incomingRequestContext.overallCachePolicy`). */
export interface CachePolicy {
  restrict(hint: Hint): void;
}

/**
 * One subgraph request on its way down the pipeline. A layer that changes it passes a copy to
 * `next` and leaves the one it got as it was.
 */
export interface FetchRequest {
  readonly query: string;
  readonly operationName: string | undefined;
  /** The operation's variables; for an `_entities` fetch, all but `representations`. */
  readonly variables: Record<string, unknown>;
  /**
   * Set for an `_entities` fetch of a client's query (never a mutation): the representations to
   * resolve. The answer's `data._entities` has one entry per representation, in this order.
   */
  readonly representations: readonly Representation[] | undefined;
  /** Set with `representations`: {@link selectionKeyOf} the request, computed once per fetch. */
  readonly selectionKey: string | undefined;
  /**
   * Each representation's {@link stableStringify}, once a layer has computed them (dedupe, the
   * entity cache): layers below reuse them, so each is computed once per fetch.
   */
  readonly repKeys: readonly string[] | undefined;
  /** A mutation: never shared, merged or cached, and followed by evictions. */
  readonly mutation: boolean;
  /** The client request's id, for the subgraph's logs; absent for the gateway's own requests. */
  readonly requestId: string | undefined;
  /**
   * The client's verified identity as the `x-gateway-identity` header carries it (encoded once per
   * client request); undefined for anonymous requests and the gateway's own. Sharing and merging
   * key on it: two callers' requests are one subgraph request only when they are the same caller.
   */
  readonly identity: string | undefined;
  /** HTTP headers for the subgraph. */
  readonly headers: Record<string, string>;
  /** The client's connection (or a shared one): aborted when it goes away. */
  readonly signal: AbortSignal | undefined;
  /**
   * When the client request must be answered (epoch ms, REQUEST_TIMEOUT_MS after it arrived):
   * subgraph requests get at most what is left, and none is sent after it. A shared or merged
   * request keeps its first caller's. Undefined for the gateway's own requests.
   */
  readonly deadline: number | undefined;
  /** The client operation's cache policy, restricted by the answer's hint. */
  readonly cachePolicy: CachePolicy | undefined;
  /**
   * The JSON body, when a layer has serialised it already (in-flight sharing keys by it; the
   * transport sends it). A layer that changes what is sent passes `undefined`.
   */
  readonly body?: string | undefined;
  /**
   * Representations a request carries in other variables than `representations`: a combined
   * request's parts (`merge.ts`), counted by the transport like `representations`. @default 0
   */
  readonly representationCount?: number | undefined;
  /**
   * The client request this fetch is part of (Apollo's context object for it), for what lives as
   * long as one client request; undefined for the gateway's own requests.
   */
  readonly scope?: object | undefined;
  /**
   * The shared write clock when the client request began (the response cache reads it), or
   * undefined: in-flight sharing never lets a request join one that began before a write it has
   * seen.
   */
  readonly freshness?: string | undefined;
  /**
   * Set for a request that asked for its query plan (`Apollo-Expose-Query-Plan`): the layers that
   * answer representations without the subgraph count them here, per fetch. Copies of the request
   * share the object. Undefined otherwise: nothing is counted.
   */
  readonly stats?: FetchStats | undefined;
}

/** Per fetch, the representations answered without asking the subgraph, by where the answer came from. */
export interface FetchStats {
  /** By an earlier fetch of the same client request (the request memo). */
  memoHits: number;
  /** By the entity cache. */
  cacheHits: number;
}

/** A subgraph's answer on its way back up. */
export interface FetchResponse {
  /** For an `_entities` fetch `data._entities` holds the entities, a missing entry reading as null. */
  body: GraphQLBody;
  /** The answer's cache hint: `Cache-Control`, or the strictest of the entities' it is made of. */
  hint: Hint;
}

/** What a layer calls to hand the request on: the rest of the pipeline. */
export type Next = (request: FetchRequest) => Promise<FetchResponse>;

/**
 * A fetch layer: does its part and calls `next` (or answers without it). A layer that does not
 * concern a request (the `_entities` layers and an ordinary query) passes it straight to `next`.
 */
export type Layer = (request: FetchRequest, next: Next) => Promise<FetchResponse>;

/**
 * `headers` with one more header, in a new object. Object.assign rather than
 * `{ ...headers, [name]: value }`: in Node 20's V8 a spread followed by a key the original lacks
 * takes a slow path (microseconds per call), and every subgraph request gains headers on its way
 * down the layers.
 */
export function withHeader(headers: Readonly<Record<string, string>>, name: string, value: string): Record<string, string> {
  return Object.assign({}, headers, { [name]: value });
}

/** The JSON a request sends: the transport's body and in-flight sharing's key. */
export function bodyOf(request: FetchRequest): string {
  if (request.body !== undefined) return request.body;
  const { query, operationName, representations } = request;
  // Object.assign, not `{ ...variables, representations }`: a spread followed by a new key is V8's slow path.
  const variables = representations ? Object.assign({}, request.variables, { representations }) : request.variables;
  return JSON.stringify({ query, variables, operationName });
}

const OPERATION_NAME = /^(\s*query)\s+[_A-Za-z][_0-9A-Za-z]*/;
const selections = new Map<string, string>();

/**
 * A subgraph document without its operation name: the planner names each fetch node's operation
 * apart (`Op__inventory__3`, `Op__inventory__7`), though two nodes often select the same thing.
 * Memoised: plans reuse the same strings.
 */
export function withoutOperationName(query: string): string {
  let selection = selections.get(query);
  if (selection === undefined) {
    selection = query.replace(OPERATION_NAME, '$1');
    if (selections.size >= 10_000) selections.clear();
    selections.set(query, selection);
  }
  return selection;
}

/**
 * What identifies an `_entities` fetch apart from its representations: the document (its
 * operation name aside) AND its other variables (`@include(if: $v)` and arguments given as
 * variables stay in the subgraph operation and change what an entity returns). The entity
 * cache's selection, the per-request memo and merging's batches use it.
 */
export function selectionKeyOf(query: string, variables: Record<string, unknown>): string {
  return `${withoutOperationName(query)}\u0000${stableStringify(variables)}`;
}

/** The request for other representations (their keys alongside when known): its body is to be rebuilt. */
export function withRepresentations(
  request: FetchRequest,
  representations: readonly Representation[],
  repKeys: readonly string[] | undefined,
): FetchRequest {
  return { ...request, representations, repKeys, body: undefined };
}

/** The entities of an `_entities` answer, or undefined when it has none (every entry reads as null). */
export function entitiesOf(body: GraphQLBody): readonly unknown[] | undefined {
  const list = body.data?._entities;
  return Array.isArray(list) ? list : undefined;
}

/** An `_entities` answer, as the gateway's query plan reads it. */
export function entitiesBody(entities: unknown[], errors: GraphQLFormattedError[]): GraphQLBody {
  return errors.length > 0 ? { data: { _entities: entities }, errors } : { data: { _entities: entities } };
}

/**
 * Errors of an `_entities` answer re-addressed to the caller's positions: an error at index i
 * goes to every position `positionsOf(i)` names (none: dropped); errors outside `_entities` pass
 * unchanged.
 */
export function remapErrors(
  errors: readonly GraphQLFormattedError[],
  positionsOf: (index: number) => readonly number[],
): GraphQLFormattedError[] {
  return errors.flatMap((error) => {
    const at = error.path?.[1];
    if (error.path?.[0] !== '_entities' || typeof at !== 'number') return [error];
    return positionsOf(at).map((position) => ({ ...error, path: ['_entities', position, ...(error.path?.slice(2) ?? [])] }));
  });
}
