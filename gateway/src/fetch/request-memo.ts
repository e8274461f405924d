import type { GraphQLFormattedError } from 'graphql';
import type { Metrics } from '@shop/telemetry';
import { type Hint, minHint } from './hint';
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
import { type Representation, stableStringify } from './representation';

/** One entity's answer within a client request: its data, its errors (paths after its index), the answer's hint. */
interface Slot {
  /** As fetched, for the fetch that asked first; a pristine copy for everyone else. */
  data: unknown;
  /** Data holds objects or lists: every later reader gets its own copy (the gateway writes into them). */
  nested: boolean;
  errors: readonly GraphQLFormattedError[];
  /** Errors the answer had outside any entity: every reader passes them on. */
  whole: readonly GraphQLFormattedError[];
  hint: Hint;
}

/** Per client request: per selection, each representation's answer (or the fetch that brings it). */
type RequestMemo = Map<string, Map<string, Promise<Slot>>>;

const memos = new WeakMap<object, RequestMemo>();

function hasObjects(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  for (const key in value as Record<string, unknown>) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== null && typeof v === 'object') return true;
  }
  return false;
}

/** The slots of one fetched answer, by the fetch's index. */
function slotsOf(response: FetchResponse, count: number): Slot[] {
  const list = entitiesOf(response.body);
  const byIndex = new Map<number, GraphQLFormattedError[]>();
  const whole: GraphQLFormattedError[] = [];
  for (const error of response.body.errors ?? []) {
    const at = error.path?.[1];
    if (error.path?.[0] !== '_entities' || typeof at !== 'number') whole.push(error);
    else {
      const mine = byIndex.get(at);
      const relative = { ...error, path: error.path.slice(2) };
      if (mine) mine.push(relative);
      else byIndex.set(at, [relative]);
    }
  }
  const slots = new Array<Slot>(count);
  for (let i = 0; i < count; i++) {
    const data = list?.[i] ?? null;
    slots[i] = { data, nested: hasObjects(data), errors: byIndex.get(i) ?? [], whole, hint: response.hint };
  }
  return slots;
}

/**
 * Each entity fetched once per client request: an `_entities` fetch whose representation and
 * selection an earlier fetch of the same client request asked for (another plan node, another
 * path) takes that answer, or waits for it while it is in flight, instead of sending it again.
 * Only answers without errors are kept for later fetches; an entity that failed is asked again.
 * Lives as long as the client request (a WeakMap on its context); never shared between requests,
 * so no user's data reaches another and every request reads the subgraphs afresh.
 */
export function requestMemoLayer(metrics: Metrics): Layer {
  const answer = async (request: FetchRequest, reps: readonly Representation[], scope: object, next: Next): Promise<FetchResponse> => {
    let memo = memos.get(scope);
    if (!memo) {
      memo = new Map();
      memos.set(scope, memo);
    }
    const selectionKey = request.selectionKey ?? selectionKeyOf(request.query, request.variables);
    let known = memo.get(selectionKey);
    if (!known) {
      known = new Map();
      memo.set(selectionKey, known);
    }
    const repKeys = request.repKeys ?? reps.map(stableStringify);
    // Positions an earlier fetch asked for, and the ones this fetch sends (each key's first position).
    const hitAt: number[] = [];
    const hitSlots: Array<Promise<Slot>> = [];
    const missing: number[] = [];
    const waiting: Array<Deferred<Slot>> = [];
    for (let i = 0; i < reps.length; i++) {
      const key = repKeys[i] as string;
      const slot = known.get(key);
      if (slot) {
        hitAt.push(i);
        hitSlots.push(slot);
      } else {
        const later = deferred<Slot>();
        known.set(key, later.promise);
        missing.push(i);
        waiting.push(later);
      }
    }
    if (hitAt.length > 0) metrics.cacheRequests.inc({ service: 'gateway', cache: 'request', result: 'hit' }, hitAt.length);
    if (missing.length === 0) return assemble(reps.length, [], undefined, hitAt, await Promise.all(hitSlots));
    metrics.cacheRequests.inc({ service: 'gateway', cache: 'request', result: 'miss' }, missing.length);

    const forget = (j: number) => {
      const key = repKeys[missing[j] as number] as string;
      if (known.get(key) === waiting[j]?.promise) known.delete(key);
    };
    const sent =
      hitAt.length === 0
        ? next(request.repKeys ? request : withRepresentations(request, reps, repKeys))
        : next(
            withRepresentations(
              request,
              missing.map((i) => reps[i] as Representation),
              missing.map((i) => repKeys[i] as string),
            ),
          );
    // Settled in the answer's own reaction, before this fetch's caller sees (and writes into) it.
    const own = sent.then(
      (response) => {
        const slots = slotsOf(response, missing.length);
        for (let j = 0; j < slots.length; j++) {
          const slot = slots[j] as Slot;
          // Kept for later readers as a pristine copy, and only when it came without errors.
          (waiting[j] as Deferred<Slot>).resolve(slot.nested ? { ...slot, data: structuredClone(slot.data) } : slot);
          if (slot.errors.length > 0 || slot.whole.length > 0) forget(j);
        }
        return { response, slots };
      },
      (error: unknown) => {
        for (let j = 0; j < waiting.length; j++) {
          forget(j);
          (waiting[j] as Deferred<Slot>).reject(error);
        }
        throw error;
      },
    );
    if (hitAt.length === 0) return (await own).response;
    const [mine, hits] = await Promise.all([own, Promise.all(hitSlots)]);
    return assemble(reps.length, missing, mine.slots, hitAt, hits);
  };
  return (request, next) =>
    request.representations && request.scope ? answer(request, request.representations, request.scope, next) : next(request);
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (reason: unknown) => void;
}

/** A promise and its settlers; its rejection is handled here, for readers that never came. */
function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/** The fetch's answer from its own slots (as fetched) and earlier fetches' (copied). */
function assemble(
  count: number,
  ownAt: readonly number[],
  own: readonly Slot[] | undefined,
  hitAt: readonly number[],
  hits: readonly Slot[],
): FetchResponse {
  const entities = new Array<unknown>(count);
  const errors: GraphQLFormattedError[] = [];
  const whole = new Set<readonly GraphQLFormattedError[]>();
  let hint: Hint | undefined;
  const take = (i: number, slot: Slot, data: unknown) => {
    entities[i] = data;
    for (const error of slot.errors) errors.push({ ...error, path: ['_entities', i, ...(error.path ?? [])] });
    if (slot.whole.length > 0) whole.add(slot.whole);
    hint = hint ? minHint(hint, slot.hint) : slot.hint;
  };
  for (let j = 0; j < ownAt.length; j++) {
    const slot = own?.[j] as Slot;
    take(ownAt[j] as number, slot, slot.data);
  }
  for (let j = 0; j < hitAt.length; j++) {
    const slot = hits[j] as Slot;
    // A later reader gets its own copy of anything the gateway may write into; plain values are shared.
    const data = slot.nested
      ? structuredClone(slot.data)
      : typeof slot.data === 'object' && slot.data !== null
        ? { ...slot.data }
        : slot.data;
    take(hitAt[j] as number, slot, data);
  }
  for (const list of whole) errors.push(...list);
  return { body: entitiesBody(entities, errors), hint: hint ?? { maxAge: 0 } };
}
