import {
  type FetchRequest,
  type FetchResponse,
  type Layer,
  type Next,
  entitiesBody,
  entitiesOf,
  remapErrors,
  withRepresentations,
} from './layer';
import { type Representation, stableStringify } from './representation';

/**
 * Representation dedupe: an `_entities` fetch sends each distinct representation once, and the
 * answer is fanned back to every position that asked for it (errors included). It also leaves
 * each representation's stable key on the request, for the entity cache below: computed once.
 */
export const dedupeLayer: Layer = (request, next) =>
  request.representations ? dedupe(request, request.representations, next) : next(request);

async function dedupe(request: FetchRequest, reps: readonly Representation[], next: Next): Promise<FetchResponse> {
  const known = request.repKeys;
  const index = new Map<string, number>();
  const unique: Representation[] = [];
  const keys: string[] = [];
  const slotOf = new Array<number>(reps.length);
  for (let i = 0; i < reps.length; i++) {
    const rep = reps[i] as Representation;
    const key = known?.[i] ?? stableStringify(rep);
    let slot = index.get(key);
    if (slot === undefined) {
      slot = unique.length;
      index.set(key, slot);
      unique.push(rep);
      keys.push(key);
    }
    slotOf[i] = slot;
  }
  // Nothing repeats: the answer's positions are the request's already.
  if (unique.length === reps.length) return next(known ? request : withRepresentations(request, reps, keys));

  const response = await next(withRepresentations(request, unique, keys));
  const list = entitiesOf(response.body);
  const entities = new Array<unknown>(reps.length);
  for (let i = 0; i < reps.length; i++) entities[i] = list?.[slotOf[i] as number] ?? null;
  const fetchedErrors = response.body.errors;
  if (!fetchedErrors?.length) return { body: entitiesBody(entities, []), hint: response.hint };
  // Errors are rare: the positions of each slot are gathered only when there are some.
  const positionsOf = new Map<number, number[]>();
  for (let i = 0; i < reps.length; i++) {
    const slot = slotOf[i] as number;
    const positions = positionsOf.get(slot);
    if (positions) positions.push(i);
    else positionsOf.set(slot, [i]);
  }
  const errors = remapErrors(fetchedErrors, (slot) => positionsOf.get(slot) ?? []);
  return { body: entitiesBody(entities, errors), hint: response.hint };
}
