import type { Logger, Metrics } from '@shop/telemetry';
import { type BreakerOptions, breakerLayer } from './breaker';
import { cachePolicyLayer } from './cache-policy';
import { dedupeLayer } from './dedupe';
import { entityCacheLayer } from './entity-cache';
import type { EntityCache } from './entity-cache-store';
import { errorMappingLayer } from './error-mapping';
import { type ChangedEntity, evictAfterMutationLayer } from './evict-after-mutation';
import { inflightLayer } from './inflight';
import type { FetchRequest, FetchResponse, Layer } from './layer';
import { mergeLayer } from './merge';
import { requestIdLayer } from './request-id';
import { requestMemoLayer } from './request-memo';
import { type RetryOptions, retryLayer } from './retry';
import { signLayer } from './sign';
import { type Transport, transportLayer } from './transport';

/** The switchable layers between the query planner and the subgraphs; responses are identical with any of them off. */
export interface FetchLayers {
  /** Send identical representations in one `_entities` fetch once. @default true */
  dedupe: boolean;
  /**
   * Send the `_entities` fetches to one subgraph issued in one turn of the event loop as one
   * request: one selection's as one list, other selections beside it as aliased fields. @default true
   */
  merge: boolean;
  /** Fetch each entity and selection once per client request: later plan nodes reuse the answer. @default true */
  memo: boolean;
  /** Share one request among identical concurrent subgraph queries (never mutations). @default true */
  inflight: boolean;
}

export const allLayersOn: FetchLayers = { dedupe: true, merge: true, memo: true, inflight: true };
export const allLayersOff: FetchLayers = { dedupe: false, merge: false, memo: false, inflight: false };

/** What the pipeline of one subgraph is built from. */
export interface DataSourceDeps {
  transport: Transport;
  metrics: Metrics;
  logger: Logger;
  layers: FetchLayers;
  /** The entity cache layer runs with this store. @default undefined (no entity caching) */
  entityCache?: EntityCache | undefined;
  /** Evictions after mutations: called after each mutation with the entities its response names. @default undefined (none) */
  onMutation?: ((entities: ChangedEntity[]) => Promise<void>) | undefined;
  /** This subgraph's timeout (SUBGRAPH_TIMEOUT_MS, or SUBGRAPH_<NAME>_TIMEOUT_MS), named in the error of a request that exceeds it. */
  timeoutMs: number;
  /** The subgraph's circuit breaker, or none. @default undefined (none) */
  breaker?: BreakerOptions | undefined;
  /** Retries of queries after a connection failure, or none. @default undefined (none) */
  retry?: RetryOptions | undefined;
  /**
   * `SUBGRAPH_SECRET`: every request is signed with it and carries the caller's identity. Without
   * it requests go unsigned and without identity (another team's subgraphs). @default undefined
   */
  subgraphSecret?: string | undefined;
  /** How many invalidations this process has made: in-flight sharing never spans one. @default none */
  writes?: (() => number) | undefined;
}

/** A subgraph's whole fetch path: a request in, the subgraph's (or the caches') answer out. */
export type Fetch = (request: FetchRequest) => Promise<FetchResponse>;

/**
 * The layers of one subgraph, outermost first. A layer that is off is not in the list. The
 * order is what keeps the counts: the request's memo first (an entity this client request has
 * fetched already costs nothing below), dedupe before the entity cache (one look-up per distinct
 * representation), the cache before merging (only misses are merged), and merging deduplicates
 * again where the callers' representations meet (each distinct one sent once per request).
 */
export function fetchLayers(subgraph: string, url: string, deps: DataSourceDeps): Layer[] {
  const { layers, entityCache, onMutation } = deps;
  return [
    requestIdLayer,
    cachePolicyLayer,
    ...(onMutation ? [evictAfterMutationLayer(onMutation)] : []),
    ...(layers.memo ? [requestMemoLayer(deps.metrics)] : []),
    ...(layers.dedupe ? [dedupeLayer] : []),
    ...(entityCache ? [entityCacheLayer(subgraph, entityCache)] : []),
    errorMappingLayer({ subgraph, url, logger: deps.logger, timeoutMs: deps.timeoutMs }),
    // Above merging and sharing: while the breaker is half-open, other requests must not be merged
    // into its one probe or join it (and wait out a frozen subgraph's timeout with it); each fails
    // fast on its own. Error mapping above it codes the breaker's refusals too.
    ...(deps.breaker ? [breakerLayer(subgraph, deps.metrics, deps.breaker)] : []),
    ...(layers.merge ? [mergeLayer({ dedupe: layers.dedupe })] : []),
    ...(layers.inflight ? [inflightLayer(deps.writes)] : []),
    // Below sharing, so one retry serves every caller of a shared request.
    ...(deps.retry ? [retryLayer(subgraph, deps.metrics, deps.retry)] : []),
    // Last: each attempt signed as it is sent, over the body exactly as sent.
    ...(deps.subgraphSecret ? [signLayer(deps.subgraphSecret, url)] : []),
  ];
}

/** Composes the layers over the transport, once per subgraph: a request allocates no closures. */
export function composePipeline(subgraph: string, url: string, deps: DataSourceDeps): Fetch {
  const send = transportLayer({ subgraph, url, transport: deps.transport, metrics: deps.metrics, timeoutMs: deps.timeoutMs });
  return fetchLayers(subgraph, url, deps).reduceRight<Fetch>((next, layer) => (request) => layer(request, next), send);
}
