import type { CachePolicy, FetchResponse, Layer } from './layer';

/**
 * Restricts the client operation's overall cache policy by each subgraph answer's hint, so the
 * response cache and the client's `Cache-Control` never outlive the shortest-lived part.
 */
export const cachePolicyLayer: Layer = (request, next) =>
  request.cachePolicy ? restrict(request.cachePolicy, next(request)) : next(request);

// Apart from the layer so that a request without a policy costs no async frame: this is the hot path.
async function restrict(cachePolicy: CachePolicy, pending: Promise<FetchResponse>): Promise<FetchResponse> {
  const response = await pending;
  cachePolicy.restrict(response.hint);
  return response;
}
