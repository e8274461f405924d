import { hintTallies } from './hint';
import type { CachePolicy, FetchRequest, FetchResponse, Layer } from './layer';

/**
 * Restricts the client operation's overall cache policy by each subgraph answer's hint, so the
 * response cache and the client's `Cache-Control` never outlive the shortest-lived part; the
 * response cache's tally of the request (`hintTallies`), when it keeps one, counts the hint too.
 */
export const cachePolicyLayer: Layer = (request, next) =>
  request.cachePolicy ? restrict(request.cachePolicy, request, next(request)) : next(request);

// Apart from the layer so that a request without a policy costs no async frame: this is the hot path.
async function restrict(cachePolicy: CachePolicy, request: FetchRequest, pending: Promise<FetchResponse>): Promise<FetchResponse> {
  const response = await pending;
  cachePolicy.restrict(response.hint);
  if (request.scope) hintTallies.get(request.scope)?.add(response.hint);
  return response;
}
