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
  withoutOperationName,
} from './layer';
import { type Representation, stableStringify } from './representation';

/** One entity's answer within a client request: its data, its errors (paths after its index), the answer's hint. */
interface Slot {
  data: unknown;
  errors: readonly GraphQLFormattedError[];
  /** Errors the answer had outside any entity: every reader passes them on. */
  whole: readonly GraphQLFormattedError[];
  hint: Hint;
}

/** What later readers get of a slot: plain data shared (copied shallowly), data with objects inside as JSON (parsed afresh). */
interface KeptSlot extends Omit<Slot, 'data'> {
  data: unknown;
  json: string | undefined;
}

/** One fetch's answer as this layer keeps it. */
interface Batch {
  response: FetchResponse;
  /** By the fetch's index: as fetched, for the fetch that asked. */
  own: readonly Slot[];
  /** By the fetch's index: for later readers. */
  kept: readonly KeptSlot[];
}

/** Where an entity's answer is: the fetch that brings it and its index there. */
interface Known {
  batch: Promise<Batch>;
  at: number;
}

/** Per client request: per selection, where each representation's answer is. */
type RequestMemo = Map<string, Map<string, Known>>;

const memos = new WeakMap<object, RequestMemo>();

/**
 * Per client request (its context), when the executor knows its plan: the `_entities` selections
 * (documents without their operation names) that more than one fetch of the plan asks for. Only
 * those can be answered from the memo; any other passes by it, sparing the copies it keeps of
 * every answer for readers that cannot come. A request without an entry memoises everything.
 */
export const repeatedSelections = new WeakMap<object, ReadonlySet<string>>();

function hasObjects(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  for (const key in value as Record<string, unknown>) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== null && typeof v === 'object') return true;
  }
  return false;
}

/** The slots of one fetched answer, by the fetch's index. */
function batchOf(response: FetchResponse, count: number): Batch {
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
  const own = new Array<Slot>(count);
  const kept = new Array<KeptSlot>(count);
  for (let i = 0; i < count; i++) {
    const data = list?.[i] ?? null;
    const slot: Slot = { data, errors: byIndex.get(i) ?? [], whole, hint: response.hint };
    own[i] = slot;
    // Written down now, before the fetch's caller (the gateway) writes into the objects.
    const nested = hasObjects(data);
    // A literal, not `{ ...slot, json }`: a spread followed by a new field is V8's slow path.
    kept[i] = {
      data: nested ? undefined : data,
      json: nested ? JSON.stringify(data) : undefined,
      errors: slot.errors,
      whole,
      hint: response.hint,
    };
  }
  return { response, own, kept };
}

/** A later reader's own copy of a kept answer. */
function copyOf(slot: KeptSlot): unknown {
  if (slot.json !== undefined) return JSON.parse(slot.json) as unknown;
  return typeof slot.data === 'object' && slot.data !== null ? { ...slot.data } : slot.data;
}

/**
 * Each entity fetched once per client request: an `_entities` fetch whose representation and
 * selection an earlier fetch of the same client request asked for (another plan node, another
 * path) takes that answer, or waits for it while it is in flight, instead of sending it again.
 * Only answers without errors are kept for later fetches; an entity that failed is asked again.
 * Lives as long as the client request (a WeakMap on its context); never shared between requests,
 * so no user's data reaches another and every request reads the subgraphs afresh. One promise
 * per fetch, not per entity: the profile of the varied workload put this layer's allocations in
 * the gateway's garbage collection.
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
    // For each position: an earlier fetch's answer, or the index of this fetch's own (each key sent once).
    const hits = new Array<Known | undefined>(reps.length);
    const ownAt = new Array<number>(reps.length).fill(-1);
    const missing: number[] = [];
    const mineByKey = new Map<string, number>();
    let hitCount = 0;
    for (let i = 0; i < reps.length; i++) {
      const key = repKeys[i] as string;
      const entry = known.get(key);
      if (entry) {
        hits[i] = entry;
        hitCount++;
        continue;
      }
      const j = mineByKey.get(key);
      if (j !== undefined) {
        ownAt[i] = j;
        continue;
      }
      mineByKey.set(key, missing.length);
      ownAt[i] = missing.length;
      missing.push(i);
    }
    if (hitCount > 0) {
      metrics.cacheRequests.inc({ service: 'gateway', cache: 'request', result: 'hit' }, hitCount);
      if (request.stats) request.stats.memoHits += hitCount;
    }

    let batch: Promise<Batch> | undefined;
    if (missing.length > 0) {
      metrics.cacheRequests.inc({ service: 'gateway', cache: 'request', result: 'miss' }, missing.length);
      const sent =
        missing.length === reps.length
          ? next(request.repKeys ? request : withRepresentations(request, reps, repKeys))
          : next(
              withRepresentations(
                request,
                missing.map((i) => reps[i] as Representation),
                missing.map((i) => repKeys[i] as string),
              ),
            );
      const mine = sent.then(
        (response) => {
          const b = batchOf(response, missing.length);
          for (let j = 0; j < missing.length; j++) {
            const s = b.own[j] as Slot;
            if (s.errors.length > 0 || s.whole.length > 0) forget(repKeys[missing[j] as number] as string);
          }
          return b;
        },
        (error: unknown) => {
          for (const i of missing) forget(repKeys[i] as string);
          throw error;
        },
      );
      batch = mine;
      const table = known;
      function forget(key: string) {
        if (table.get(key)?.batch === mine) table.delete(key);
      }
      // Readers that never come leave nothing unhandled.
      mine.catch(() => undefined);
      for (let j = 0; j < missing.length; j++) known.set(repKeys[missing[j] as number] as string, { batch: mine, at: j });
    }

    // Nothing from earlier fetches and nothing repeated: the answer as fetched.
    if (hitCount === 0 && missing.length === reps.length) return ((await batch) as Batch).response;
    const waits = new Set<Promise<Batch>>();
    for (const entry of hits) if (entry) waits.add(entry.batch);
    if (batch) waits.add(batch);
    const pending = [...waits];
    const settled = await Promise.all(pending);
    const batches = new Map(pending.map((p, k) => [p, settled[k] as Batch]));
    const own = batch ? batches.get(batch) : undefined;
    const entities = new Array<unknown>(reps.length);
    const errors: GraphQLFormattedError[] = [];
    const whole = new Set<readonly GraphQLFormattedError[]>();
    let hint: Hint | undefined;
    for (let i = 0; i < reps.length; i++) {
      const entry = hits[i];
      let slot: Slot | KeptSlot;
      if (entry) {
        const kept = (batches.get(entry.batch) as Batch).kept[entry.at] as KeptSlot;
        slot = kept;
        entities[i] = copyOf(kept);
      } else {
        slot = own?.own[ownAt[i] as number] as Slot;
        entities[i] = slot.data;
      }
      for (const error of slot.errors) errors.push({ ...error, path: ['_entities', i, ...(error.path ?? [])] });
      if (slot.whole.length > 0) whole.add(slot.whole);
      hint = hint ? minHint(hint, slot.hint) : slot.hint;
    }
    for (const list of whole) errors.push(...list);
    return { body: entitiesBody(entities, errors), hint: hint ?? { maxAge: 0 } };
  };
  return (request, next) => {
    const { representations, scope } = request;
    if (!representations || !scope) return next(request);
    const repeated = repeatedSelections.get(scope);
    if (repeated && !repeated.has(withoutOperationName(request.query))) return next(request);
    return answer(request, representations, scope, next);
  };
}
