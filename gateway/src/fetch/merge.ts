import DataLoader from 'dataloader';
import type { GraphQLFormattedError } from 'graphql';
import {
  type FetchRequest,
  type FetchResponse,
  type Layer,
  type Next,
  entitiesBody,
  entitiesOf,
  selectionKeyOf,
  withRepresentations,
} from './layer';
import type { Representation } from './representation';
import { SharedAbort } from './shared-abort';

/**
 * Sends the `_entities` fetches of one batch as ONE request: the callers' representations one
 * after another (dedupe, when on, sits below and sends each distinct one once), the answer split
 * back by position. The request is cancelled only once every caller's client has gone.
 */
async function sendMerged(callers: readonly FetchRequest[], next: Next): Promise<FetchResponse[]> {
  const first = callers[0] as FetchRequest;
  if (callers.length === 1) return [await next(first)];
  const reps: Representation[] = [];
  // The callers' keys (dedupe's), when every one has them, so they are not computed again below.
  let keys: string[] | undefined = [];
  const abort = new SharedAbort();
  for (const caller of callers) {
    abort.join(caller.signal);
    const mine = caller.representations as readonly Representation[];
    for (let i = 0; i < mine.length; i++) reps.push(mine[i] as Representation);
    if (keys && caller.repKeys) for (let i = 0; i < caller.repKeys.length; i++) keys.push(caller.repKeys[i] as string);
    else keys = undefined;
  }
  const response = await next({ ...withRepresentations(first, reps, keys), signal: abort.signal });
  const list = entitiesOf(response.body);
  const fetchedErrors = response.body.errors ?? [];
  let offset = 0;
  return callers.map((caller, c) => {
    const count = (caller.representations as readonly Representation[]).length;
    const entities = new Array<unknown>(count);
    for (let i = 0; i < count; i++) entities[i] = list?.[offset + i] ?? null;
    const errors: GraphQLFormattedError[] = [];
    for (const error of fetchedErrors) {
      const at = error.path?.[1];
      // Errors outside `_entities` concern every caller; one at an entity, its caller only.
      if (error.path?.[0] !== '_entities' || typeof at !== 'number') errors.push(error);
      else if (at >= offset && at < offset + count)
        errors.push({ ...error, path: ['_entities', at - offset, ...(error.path?.slice(2) ?? [])] });
    }
    offset += count;
    // Callers after the first get their own copies: the gateway writes into these objects.
    return { body: entitiesBody(c === 0 ? entities : structuredClone(entities), errors), hint: response.hint };
  });
}

/**
 * Fetch merging: every `_entities` fetch for the same selection (same document and other
 * variables) and the same caller's identity issued in one turn of the event loop, by this request
 * or a concurrent one, goes out as one request. Batching is DataLoader's, with `batchScheduleFn` waiting for `setImmediate`
 * (DataLoader's own tick would close the batch before concurrent requests' fetches arrive). One
 * loader per selection, made when a batch opens and dropped when it is sent, so the map holds
 * only batches still open; a loader's key is a caller's whole request, so there is one load per
 * fetch, not per representation, and `cache: false` because each load is a new fetch.
 */
export function mergeLayer(): Layer {
  const open = new Map<string, DataLoader<FetchRequest, FetchResponse>>();
  return (request, next) => {
    if (!request.representations) return next(request);
    const selectionKey = request.selectionKey ?? selectionKeyOf(request.query, request.variables);
    // One batch per caller: a merged request carries one identity, so callers of different
    // identities (or anonymous ones and signed-in ones) are never merged.
    const selection = request.identity === undefined ? selectionKey : `${request.identity}\u0000${selectionKey}`;
    let loader = open.get(selection);
    if (!loader) {
      loader = new DataLoader<FetchRequest, FetchResponse>((callers) => sendMerged(callers, next), {
        cache: false,
        batchScheduleFn: (dispatch) =>
          setImmediate(() => {
            open.delete(selection);
            dispatch();
          }),
      });
      open.set(selection, loader);
    }
    return loader.load(request);
  };
}
