import { type FetchRequest, type FetchResponse, type Layer, type Next, bodyOf } from './layer';
import { SharedAbort } from './shared-abort';

/**
 * In-flight sharing: identical concurrent subgraph queries (same document, variables and
 * operation name) of the same caller (the same verified identity, or both anonymous) share one
 * request: a subgraph answers per identity, so another user's answer is never handed on. Never mutations: a mutation must run once per client, as
 * federation's `RemoteGraphQLDataSource` never retries one. `_entities` fetches pass: merging
 * shares those. The shared request is cancelled only once every client waiting on it has gone.
 */
export function inflightLayer(writes: () => number = () => 0): Layer {
  const inflight = new Map<string, { result: Promise<FetchResponse>; abort: SharedAbort }>();
  const share = async (request: FetchRequest, next: Next): Promise<FetchResponse> => {
    const body = bodyOf(request);
    // The identity is base64url: it holds no NUL, so no identity and body run into another pair.
    // Never joined across a write: one this process invalidated for (a mutation through it, an
    // event) since the shared request began, or, when the response cache read it, the shared
    // write clock every replica renews. A read after a write never gets an answer from before it.
    const epoch = `${writes()}:${request.freshness ?? ''}`;
    const key = request.identity === undefined ? `${epoch}\u0000${body}` : `${epoch}\u0000${request.identity}\u0000${body}`;
    const shared = inflight.get(key);
    // One whose every caller went away is being cancelled: do not join it.
    if (shared && !shared.abort.signal.aborted) {
      shared.abort.join(request.signal);
      // @apollo/gateway merges later fetches into the objects a response holds: a joiner gets
      // its own copy, or one request's data would be written into another's.
      return structuredClone(await shared.result);
    }
    const abort = new SharedAbort();
    abort.join(request.signal);
    const result = next({ ...request, signal: abort.signal, body }).finally(() => {
      // A cancelled request may have been replaced by a newer one under the same key: keep that.
      if (inflight.get(key)?.result === result) inflight.delete(key);
    });
    inflight.set(key, { result, abort });
    return result;
  };
  return (request, next) => (request.mutation || request.representations ? next(request) : share(request, next));
}
