import DataLoader from 'dataloader';
import type { GraphQLFormattedError } from 'graphql';
import { type CombineLimits, combineDocuments, defaultCombineLimits, packDocuments, partAnswer, refusedWhole } from './combine';
import { dedupeLayer } from './dedupe';
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
import { inSpan, tracingEnabled } from '@shop/tracing';

/**
 * Sends the `_entities` fetches of one selection as ONE request: the callers' representations one
 * after another (dedupe, when on, sends each distinct one once), the answer split back by
 * position. The request is cancelled only once every caller's client has gone.
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

/** A promise and its settlers. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (reason: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Sends fetches of several selections (each already merged and deduplicated into one request) as
 * ONE request: one aliased `_entities` field per selection (`combine.ts`). A subgraph that
 * refuses the combined document (a limit) gets the parts one by one.
 */
async function sendCombined(parts: readonly FetchRequest[], next: Next): Promise<FetchResponse[]> {
  const first = parts[0] as FetchRequest;
  const document = combineDocuments(
    parts.map((p) => p.query),
    first.operationName ?? 'Entities',
  );
  if (!document) return Promise.all(parts.map((p) => next(p)));
  const variables: Record<string, unknown> = {};
  let count = 0;
  const abort = new SharedAbort();
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as FetchRequest;
    abort.join(part.signal);
    const names = (document.parts[i] as (typeof document.parts)[number]).variables;
    for (const [name, as] of names) variables[as] = name === 'representations' ? part.representations : part.variables[name];
    count += part.representations?.length ?? 0;
  }
  const response = await next({
    ...first,
    query: document.query,
    operationName: first.operationName ?? 'Entities',
    variables,
    representations: undefined,
    repKeys: undefined,
    selectionKey: undefined,
    representationCount: count,
    body: undefined,
    signal: abort.signal,
  });
  if (refusedWhole(response.body)) return Promise.all(parts.map((p) => next(p)));
  return document.parts.map((part) => ({ body: partAnswer(response.body, part, document.parts), hint: response.hint }));
}

/**
 * Sends one turn's `_entities` fetches of one caller: per selection, the callers' fetches merged
 * into one (and deduplicated, when on); the selections' requests combined into as few requests
 * as the limits allow.
 */
async function sendBatch(
  callers: readonly FetchRequest[],
  next: Next,
  dedupe: boolean,
  limits: CombineLimits,
): Promise<Array<FetchResponse | Error>> {
  const groups = new Map<string, number[]>();
  for (let i = 0; i < callers.length; i++) {
    const caller = callers[i] as FetchRequest;
    const key = caller.selectionKey ?? selectionKeyOf(caller.query, caller.variables);
    const group = groups.get(key);
    if (group) group.push(i);
    else groups.set(key, [i]);
  }
  const send: Next = dedupe ? (request) => dedupeLayer(request, next) : next;
  if (groups.size === 1) return sendMerged(callers, send);

  // Each selection's merged request is handed to `collect` (synchronously: merging and dedupe
  // hand their request on before they wait), and all of them go out combined. A part handed on
  // later than that goes out by itself.
  const members = [...groups.values()];
  const collected = new Array<FetchRequest | undefined>(members.length);
  const answers = members.map(() => deferred<FetchResponse>());
  let open = true;
  const results = members.map((indexes, g) =>
    sendMerged(
      indexes.map((i) => callers[i] as FetchRequest),
      dedupe ? (request) => dedupeLayer(request, (r) => collect(g, r)) : (request) => collect(g, request),
    ),
  );
  function collect(g: number, request: FetchRequest): Promise<FetchResponse> {
    if (!open) return next(request);
    collected[g] = request;
    return (answers[g] as ReturnType<typeof deferred<FetchResponse>>).promise;
  }
  open = false;
  const ready = collected.flatMap((request, g) => (request ? [g] : []));
  for (const run of packDocuments(
    ready.map((g) => (collected[g] as FetchRequest).query),
    limits,
  )) {
    const gs = run.map((r) => ready[r] as number);
    const sent =
      gs.length === 1
        ? next(collected[gs[0] as number] as FetchRequest).then((a) => [a])
        : sendCombined(
            gs.map((g) => collected[g] as FetchRequest),
            next,
          );
    sent.then(
      (list) => gs.forEach((g, k) => answers[g]?.resolve(list[k] as FetchResponse)),
      (error: unknown) => gs.forEach((g) => answers[g]?.reject(error)),
    );
  }
  // One selection's failure is its callers' alone (DataLoader rejects the loads given an Error).
  const settled = await Promise.allSettled(results);
  const out = new Array<FetchResponse | Error>(callers.length);
  members.forEach((indexes, g) => {
    const result = settled[g] as PromiseSettledResult<FetchResponse[]>;
    indexes.forEach((i, k) => {
      if (result.status === 'fulfilled') out[i] = result.value[k] as FetchResponse;
      else out[i] = result.reason instanceof Error ? result.reason : new Error(String(result.reason));
    });
  });
  return out;
}

/** Merging's options. */
export interface MergeOptions {
  /** Send each distinct representation of a merged request once. */
  dedupe: boolean;
  /** How much one combined request may hold. @default defaultCombineLimits */
  limits?: CombineLimits;
}

/**
 * Fetch merging: every `_entities` fetch of the same caller's identity issued in one turn of the
 * event loop, by this request or a concurrent one, goes out in one request: fetches of the same
 * selection (same document, apart from the planner's operation name, and other variables) as one
 * `_entities` list, fetches of other selections beside it as aliased `_entities` fields. Batching
 * is DataLoader's, with `batchScheduleFn` waiting for `setImmediate` (DataLoader's own tick would
 * close the batch before concurrent requests' fetches arrive). One loader per caller, made when a
 * batch opens and dropped when it is sent, so the map holds only batches still open; a loader's
 * key is a caller's whole request, so there is one load per fetch, not per representation, and
 * `cache: false` because each load is a new fetch.
 */
export function mergeLayer(options: MergeOptions): Layer {
  const limits = options.limits ?? defaultCombineLimits;
  const open = new Map<string, DataLoader<FetchRequest, FetchResponse>>();
  return (request, next) => {
    if (!request.representations) return next(request);
    // One batch per caller: a merged request carries one identity, so callers of different
    // identities (or anonymous ones and signed-in ones) are never merged. Identities are
    // base64url, never empty.
    const batch = request.identity ?? '';
    let loader = open.get(batch);
    if (!loader) {
      // In a trace: a span for each merge, under the first caller's fetch, with how many fetches it joined.
      const merge = (callers: readonly FetchRequest[]) =>
        tracingEnabled() && callers.length > 1
          ? inSpan('merge', { 'shop.merge.callers': callers.length }, () => sendBatch(callers, next, options.dedupe, limits))
          : sendBatch(callers, next, options.dedupe, limits);
      loader = new DataLoader<FetchRequest, FetchResponse>(merge, {
        cache: false,
        batchScheduleFn: (dispatch) =>
          setImmediate(() => {
            open.delete(batch);
            dispatch();
          }),
      });
      open.set(batch, loader);
    }
    return loader.load(request);
  };
}
