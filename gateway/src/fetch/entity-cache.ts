import type { GraphQLFormattedError } from 'graphql';
import { type EntityCache, selectionHash } from './entity-cache-store';
import { type Hint, minHint } from './hint';
import {
  type FetchRequest,
  type FetchResponse,
  type Layer,
  type Next,
  entitiesBody,
  entitiesOf,
  remapErrors,
  selectionKeyOf,
  withRepresentations,
} from './layer';
import { type Representation, stableStringify } from './representation';
import { inSpan, trace, tracingEnabled } from '@shop/tracing';

/**
 * The entity cache: each representation's answer is kept per subgraph, selection and key
 * (see `entity-cache-store.ts`); an `_entities` fetch sends only the misses. Nothing from an
 * answer with errors is stored; the hint of the whole is the strictest of its parts'.
 */
export function entityCacheLayer(subgraph: string, cache: EntityCache): Layer {
  const answer = async (request: FetchRequest, reps: readonly Representation[], next: Next): Promise<FetchResponse> => {
    const selection = selectionHash(request.selectionKey ?? selectionKeyOf(request.query, request.variables));
    // Dedupe's keys when it ran, else computed here: once per representation either way.
    const repKeys = request.repKeys ?? reps.map(stableStringify);
    const lookup = tracingEnabled()
      ? await inSpan(`entity cache lookup ${subgraph}`, { 'shop.subgraph': subgraph, 'shop.representations': reps.length }, async () => {
          const found = await cache.lookup(subgraph, reps, selection, repKeys);
          trace.getActiveSpan()?.setAttribute('shop.cache.hits', found.hits.filter(Boolean).length);
          return found;
        })
      : await cache.lookup(subgraph, reps, selection, repKeys);
    const values = new Array<unknown>(reps.length);
    let hint: Hint = { maxAge: Number.MAX_SAFE_INTEGER };
    const missing: number[] = [];
    for (let i = 0; i < reps.length; i++) {
      const hit = lookup.hits[i];
      if (hit) {
        values[i] = hit.data;
        hint = minHint(hint, hit.hint);
      } else {
        missing.push(i);
      }
    }

    if (request.stats) request.stats.cacheHits += reps.length - missing.length;
    let errors: GraphQLFormattedError[] = [];
    if (missing.length > 0) {
      const missReps = missing.map((i) => reps[i] as Representation);
      const missKeys = missing.map((i) => repKeys[i] as string);
      const fetched = await next(withRepresentations(request, missReps, missKeys));
      hint = minHint(hint, fetched.hint);
      const list = entitiesOf(fetched.body);
      for (let j = 0; j < missing.length; j++) values[missing[j] as number] = list?.[j] ?? null;
      const fetchedErrors = fetched.body.errors ?? [];
      if (fetchedErrors.length > 0) {
        // Re-address errors from the fetch's indexes to the positions they belong to.
        errors = remapErrors(fetchedErrors, (at) => (missing[at] === undefined ? [] : [missing[at]]));
      } else {
        await cache.store(
          subgraph,
          selection,
          missing.map((slot, j) => ({
            rep: reps[slot] as Representation,
            repKey: repKeys[slot],
            data: list?.[j],
            generation: lookup.generations[slot] as string,
          })),
          lookup.subgraphGeneration,
          fetched.hint,
        );
      }
    }
    for (let i = 0; i < values.length; i++) values[i] ??= null;
    return { body: entitiesBody(values, errors), hint: hint.maxAge === Number.MAX_SAFE_INTEGER ? { maxAge: 0 } : hint };
  };
  return (request, next) => (request.representations ? answer(request, request.representations, next) : next(request));
}
