// The gateway's fetch path from the query planner to the subgraphs: the data source Apollo
// calls (data-source.ts), the pipeline that composes the layers from config (pipeline.ts), one
// file per layer, the interface they share (layer.ts). What the rest of the gateway uses:
export { BatchingDataSource } from './data-source';
export { type DataSourceDeps, type FetchLayers, allLayersOff, allLayersOn, composePipeline, fetchLayers } from './pipeline';
export type { FetchRequest, FetchResponse, Layer, Next } from './layer';
export { SUBGRAPH_UNAVAILABLE } from './error-mapping';
export { type BreakerOptions, defaultBreakerOptions } from './breaker';
export { type RetryOptions, defaultRetryOptions } from './retry';
export { EntityCache, type EntityCacheOptions } from './entity-cache-store';
export type { Hint } from './hint';
export { type Representation, stableStringify } from './representation';
export {
  DeadlinePassedError,
  ResponseTooLargeError,
  TIMEOUT_HEADER,
  type Transport,
  type TransportOptions,
  type TransportResponse,
  createTransport,
} from './transport';
