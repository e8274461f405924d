import { STATUS_CODES } from 'node:http';
import type { GraphQLDataSource, GraphQLDataSourceProcessOptions } from '@apollo/gateway';
// The enum is not re-exported from the package root.
import { GraphQLDataSourceRequestKind } from '@apollo/gateway/dist/datasources/types';
import type { GatewayGraphQLResponse } from '@apollo/server-gateway-interface';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import type { Logger, Metrics } from '@shop/telemetry';
import { type EntityCache, type Hint, type Representation, selectionHash, stableStringify } from './entity-cache';
import { ResponseTooLargeError, type Transport, type TransportResponse } from './transport';

/** The `extensions.code` of a subgraph that could not be reached, timed out or did not answer GraphQL. */
export const SUBGRAPH_UNAVAILABLE = 'SUBGRAPH_UNAVAILABLE';

/** Each layer between the query planner and the subgraphs; every one can be switched off. */
export interface FetchLayers {
  /** Send identical representations in one `_entities` fetch once. @default true */
  dedupe: boolean;
  /** Merge concurrent `_entities` fetches to one subgraph with one selection into one request. @default true */
  merge: boolean;
  /** Share one request among identical concurrent subgraph queries (never mutations). @default true */
  inflight: boolean;
}

export const allLayersOn: FetchLayers = { dedupe: true, merge: true, inflight: true };
export const allLayersOff: FetchLayers = { dedupe: false, merge: false, inflight: false };

export interface DataSourceDeps {
  transport: Transport;
  metrics: Metrics;
  logger: Logger;
  layers: FetchLayers;
  /** Absent: no entity caching. */
  entityCache?: EntityCache | undefined;
  /** Called after a mutation with the entities its response names, and once per mutation. */
  onMutation?: (entities: Array<{ typename: string; id: unknown }>) => Promise<void>;
  timeoutMs: number;
}

type ProcessOptions<C extends object> = GraphQLDataSourceProcessOptions<C & Record<string, unknown>>;

interface GraphQLBody {
  data?: Record<string, unknown> | null;
  errors?: GraphQLFormattedError[];
  extensions?: Record<string, unknown>;
}

/** A subgraph response reduced to what the layers need. */
interface SubgraphResult {
  body: GraphQLBody;
  hint: Hint;
}

const MUTATION = /^\s*mutation\b/;

function parseHint(header: string | undefined): Hint {
  const hint: Hint = { maxAge: 0 };
  if (!header) return hint;
  for (const part of header.split(',')) {
    const [k, v] = part.trim().split('=', 2);
    const key = k?.toLowerCase();
    if (key === 'max-age' && v && /^\d+$/.test(v)) hint.maxAge = Number(v);
    else if (key === 'private') hint.scope = 'PRIVATE';
    else if (key === 'public') hint.scope = 'PUBLIC';
    else if (key === 'no-store' || key === 'no-cache') hint.maxAge = 0;
  }
  return hint;
}

function minHint(a: Hint, b: Hint): Hint {
  const hint: Hint = { maxAge: Math.min(a.maxAge, b.maxAge) };
  if (a.scope === 'PRIVATE' || b.scope === 'PRIVATE') hint.scope = 'PRIVATE';
  else if (a.scope || b.scope) hint.scope = 'PUBLIC';
  return hint;
}

function isGraphQLBody(body: unknown): body is GraphQLBody {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
  return 'data' in body || 'errors' in body;
}

/** Walks a mutation's data for objects that name an entity: `__typename` plus `id`. */
function entitiesIn(value: unknown, out: Array<{ typename: string; id: unknown }> = []) {
  if (Array.isArray(value)) {
    for (const item of value) entitiesIn(item, out);
  } else if (value && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    if (typeof obj.__typename === 'string' && obj.id !== undefined && obj.id !== null) out.push({ typename: obj.__typename, id: obj.id });
    for (const v of Object.values(obj)) if (v && typeof v === 'object') entitiesIn(v, out);
  }
  return out;
}

/** What identifies an `_entities` fetch apart from its representations. */
interface FetchSpec {
  /** The caller's client connection: aborted when it goes away. */
  signal: AbortSignal | undefined;
  query: string;
  operationName: string | undefined;
  /** The operation's variables other than `representations`. */
  variables: Record<string, unknown>;
  headers: Record<string, string>;
}

interface EntitiesResult {
  entities: unknown[];
  errors: GraphQLFormattedError[];
  hint: Hint;
}

/**
 * Distinct representations and, for each input position, the slot of its distinct one. With
 * `enabled` false every position is its own slot (the layer is off).
 */
function dedupe(
  reps: readonly Representation[],
  enabled: boolean,
  known?: readonly (string | undefined)[],
): { unique: Representation[]; slotOf: number[]; keys: string[] | undefined } {
  if (!enabled) return { unique: [...reps], slotOf: reps.map((_, i) => i), keys: undefined };
  const index = new Map<string, number>();
  const unique: Representation[] = [];
  // Each distinct representation's stableStringify, for the entity cache's keys: computed once.
  const keys: string[] = [];
  const slotOf = reps.map((rep, i) => {
    const key = known?.[i] ?? stableStringify(rep);
    let slot = index.get(key);
    if (slot === undefined) {
      slot = unique.length;
      index.set(key, slot);
      unique.push(rep);
      keys.push(key);
    }
    return slot;
  });
  return { unique, slotOf, keys };
}

/**
 * Errors of an `_entities` response re-addressed to the caller's positions: an error at index i
 * goes to every position `positionsOf(i)` names; errors outside `_entities` pass unchanged.
 */
function remapErrors(errors: readonly GraphQLFormattedError[], positionsOf: (index: number) => readonly number[]): GraphQLFormattedError[] {
  return errors.flatMap((error) => {
    const at = error.path?.[1];
    if (error.path?.[0] !== '_entities' || typeof at !== 'number') return [error];
    return positionsOf(at).map((position) => ({ ...error, path: ['_entities', position, ...(error.path?.slice(2) ?? [])] }));
  });
}

/**
 * The abort signal of a subgraph request that serves several callers (in-flight sharing, merged
 * fetches): it is aborted once every caller's client has gone away, and never while one still
 * waits. A caller without a signal keeps it alive for good.
 */
class SharedAbort {
  private readonly controller = new AbortController();
  private live = 0;
  private pinned = false;
  readonly signal = this.controller.signal;

  join(signal: AbortSignal | undefined): void {
    if (!signal) {
      this.pinned = true;
      return;
    }
    if (signal.aborted) return;
    this.live++;
    signal.addEventListener(
      'abort',
      () => {
        this.live--;
        if (this.live === 0 && !this.pinned) this.controller.abort(signal.reason);
      },
      { once: true },
    );
  }
}

/** One caller's share of a merged `_entities` request. */
interface Waiter {
  /** The caller's client connection: aborted when it goes away. */
  signal: AbortSignal | undefined;
  reps: Representation[];
  /** Each representation's stableStringify, when the caller computed them. */
  keys: readonly string[] | undefined;
  resolve: (result: EntitiesResult) => void;
  reject: (err: unknown) => void;
}

interface PendingBatch {
  spec: FetchSpec;
  waiters: Waiter[];
}

/**
 * The gateway's data source for one subgraph. Between Apollo's query planner and the subgraph it
 * deduplicates representations, answers what the entity cache has, merges concurrent
 * `_entities` fetches, shares identical in-flight queries, and sends the rest over a pooled
 * keep-alive client. Results are identical with every layer off (a test runs both ways).
 */
export class BatchingDataSource<TContext extends object> implements GraphQLDataSource<TContext & Record<string, unknown>> {
  private readonly inflight = new Map<string, { result: Promise<SubgraphResult>; abort: SharedAbort }>();
  private readonly batches = new Map<string, PendingBatch>();

  constructor(
    readonly name: string,
    readonly url: string,
    private readonly deps: DataSourceDeps,
  ) {}

  async process(options: ProcessOptions<TContext>): Promise<GatewayGraphQLResponse> {
    const { request } = options;
    const query = request.query ?? '';
    const headers: Record<string, string> = {};
    const incoming = options.kind === GraphQLDataSourceRequestKind.INCOMING_OPERATION;
    const requestId = incoming ? (options.context as { requestId?: unknown }).requestId : undefined;
    if (typeof requestId === 'string') headers['x-request-id'] = requestId;
    // Aborted when the client goes away: its subgraph requests are cancelled rather than left running.
    const contextSignal = incoming ? (options.context as { signal?: unknown }).signal : undefined;
    const signal = contextSignal instanceof AbortSignal ? contextSignal : undefined;
    const variables = request.variables ?? {};
    const isMutation = MUTATION.test(query);
    const reps = variables.representations;

    if (incoming && !isMutation && Array.isArray(reps) && reps.length > 0) {
      const { representations: _reps, ...otherVariables } = variables;
      const spec: FetchSpec = { signal, query, operationName: request.operationName, variables: otherVariables, headers };
      const result = await this.entities(spec, reps as Representation[]);
      this.restrictPolicy(options, result.hint);
      return { data: { _entities: result.entities }, ...(result.errors.length > 0 ? { errors: result.errors } : {}) };
    }

    const body = JSON.stringify({ query, variables, operationName: request.operationName });
    let result: SubgraphResult;
    if (!isMutation && this.deps.layers.inflight) {
      const key = body;
      const shared = this.inflight.get(key);
      // One whose every caller went away is being cancelled: do not join it.
      if (shared && !shared.abort.signal.aborted) {
        shared.abort.join(signal);
        // @apollo/gateway merges later fetches into the objects a response holds: a joiner gets
        // its own copy, or one request's data would be written into another's.
        result = structuredClone(await shared.result);
      } else {
        const abort = new SharedAbort();
        abort.join(signal);
        const own = this.send(body, headers, abort.signal).finally(() => this.inflight.delete(key));
        this.inflight.set(key, { result: own, abort });
        result = await own;
      }
    } else {
      result = await this.send(body, headers, signal);
    }
    if (isMutation) await this.afterMutation(result.body);
    this.restrictPolicy(options, result.hint);
    return result.body as GatewayGraphQLResponse;
  }

  /** A mutation evicts every entity its response names (and any the subgraph lists in extensions). */
  private async afterMutation(body: GraphQLBody): Promise<void> {
    const named = entitiesIn(body.data);
    const listed = body.extensions?.invalidate;
    if (Array.isArray(listed)) {
      for (const e of listed) {
        const item = e as { __typename?: unknown; id?: unknown };
        if (typeof item.__typename === 'string') named.push({ typename: item.__typename, id: item.id });
      }
    }
    await this.deps.onMutation?.(named);
  }

  private restrictPolicy(options: ProcessOptions<TContext>, hint: Hint): void {
    if (options.kind !== GraphQLDataSourceRequestKind.INCOMING_OPERATION) return;
    const policy = options.incomingRequestContext.overallCachePolicy;
    if (policy && 'restrict' in policy) policy.restrict(hint);
  }

  /** Resolves representations: dedupe, cache look-up, merged fetch of the misses, fan-out. */
  private async entities(spec: FetchSpec, reps: Representation[]): Promise<EntitiesResult> {
    const { layers, entityCache } = this.deps;
    const { unique, slotOf, keys } = dedupe(reps, layers.dedupe);

    // The selection is the document AND its other variables: `@include(if: $v)` and arguments
    // given as variables stay in the subgraph operation and change what an entity returns. The
    // same string keys the merge layer's batches.
    const specKey = `${spec.query}\u0000${stableStringify(spec.variables)}`;
    const selection = selectionHash(specKey);
    // Each distinct representation's stable key: dedupe's, or computed here when the cache needs them.
    const repKeys = keys ?? (entityCache ? unique.map(stableStringify) : undefined);
    const lookup = entityCache ? await entityCache.lookup(this.name, unique, selection, repKeys) : undefined;
    const values: unknown[] = new Array(unique.length);
    let hint: Hint = { maxAge: Number.MAX_SAFE_INTEGER };
    const missing: number[] = [];
    unique.forEach((_, i) => {
      const hit = lookup?.hits[i];
      if (hit) {
        values[i] = hit.data;
        hint = minHint(hint, hit.hint);
      } else {
        missing.push(i);
      }
    });

    let fetchedErrors: GraphQLFormattedError[] = [];
    if (missing.length > 0) {
      const missReps = missing.map((i) => unique[i] as Representation);
      const missKeys = repKeys && missing.map((i) => repKeys[i] as string);
      const fetched = layers.merge ? await this.mergedFetch(spec, specKey, missReps, missKeys) : await this.fetchEntities(spec, missReps);
      hint = minHint(hint, fetched.hint);
      missing.forEach((slot, j) => {
        values[slot] = fetched.entities[j] ?? null;
      });
      // Re-address errors from the fetch's indexes to the unique slots they belong to.
      fetchedErrors = remapErrors(fetched.errors, (at) => (missing[at] === undefined ? [] : [missing[at] as number]));
      if (entityCache && lookup && fetched.errors.length === 0) {
        await entityCache.store(
          this.name,
          selection,
          missing.map((slot, j) => ({ rep: unique[slot] as Representation, repKey: repKeys?.[slot], data: fetched.entities[j], generation: lookup.generations[slot] ?? '0' })),
          lookup.subgraphGeneration,
          fetched.hint,
        );
      }
    }

    const positionsOfSlot = new Map<number, number[]>();
    slotOf.forEach((slot, position) => positionsOfSlot.set(slot, [...(positionsOfSlot.get(slot) ?? []), position]));
    const errors = remapErrors(fetchedErrors, (slot) => positionsOfSlot.get(slot) ?? []);
    const entities = slotOf.map((slot) => values[slot] ?? null);
    if (hint.maxAge === Number.MAX_SAFE_INTEGER) hint = { maxAge: 0 };
    return { entities, errors, hint };
  }

  /**
   * Queues representations for the next turn of the event loop: every `_entities` fetch for the
   * same selection (same document and other variables) issued meanwhile, by this request or a
   * concurrent one, goes out as ONE request, its representations deduplicated across callers.
   */
  private mergedFetch(spec: FetchSpec, key: string, reps: Representation[], repKeys: readonly string[] | undefined): Promise<EntitiesResult> {
    return new Promise((resolve, reject) => {
      let batch = this.batches.get(key);
      if (!batch) {
        const created: PendingBatch = { spec, waiters: [] };
        batch = created;
        this.batches.set(key, created);
        setImmediate(() => {
          this.batches.delete(key);
          void this.flush(created);
        });
      }
      batch.waiters.push({ signal: spec.signal, reps, keys: repKeys, resolve, reject });
    });
  }

  private async flush(batch: PendingBatch): Promise<void> {
    const all = batch.waiters.flatMap((w) => w.reps);
    const known = batch.waiters.flatMap((w): ReadonlyArray<string | undefined> => w.keys ?? w.reps.map(() => undefined));
    const { unique, slotOf } = dedupe(all, this.deps.layers.dedupe, known);
    const abort = new SharedAbort();
    for (const waiter of batch.waiters) abort.join(waiter.signal);
    try {
      const result = await this.fetchEntities({ ...batch.spec, signal: abort.signal }, unique);
      let offset = 0;
      batch.waiters.forEach((waiter, w) => {
        const mine = slotOf.slice(offset, offset + waiter.reps.length);
        offset += waiter.reps.length;
        const positionsOf = new Map<number, number[]>();
        mine.forEach((slot, position) => positionsOf.set(slot, [...(positionsOf.get(slot) ?? []), position]));
        const errors = remapErrors(result.errors, (slot) => positionsOf.get(slot) ?? []);
        const entities = mine.map((slot) => result.entities[slot] ?? null);
        // Callers after the first get their own copies: the gateway writes into these objects.
        waiter.resolve({ entities: w === 0 ? entities : structuredClone(entities), errors, hint: result.hint });
      });
    } catch (err) {
      for (const waiter of batch.waiters) waiter.reject(err);
    }
  }

  private async fetchEntities(spec: FetchSpec, reps: Representation[]): Promise<EntitiesResult> {
    this.deps.metrics.entityRepresentations.inc({ subgraph: this.name }, reps.length);
    const body = JSON.stringify({ query: spec.query, variables: { ...spec.variables, representations: reps }, operationName: spec.operationName });
    const result = await this.send(body, spec.headers, spec.signal);
    const list = result.body.data?._entities;
    const entities = Array.isArray(list) ? list : reps.map(() => null);
    return { entities, errors: result.body.errors ?? [], hint: result.hint };
  }

  /** One HTTP request to the subgraph; failures become GraphQL errors that carry a code. */
  private async send(body: string, headers: Record<string, string>, signal?: AbortSignal): Promise<SubgraphResult> {
    this.deps.metrics.subgraphRequests.inc({ subgraph: this.name });
    let response: TransportResponse;
    try {
      response = await this.deps.transport.post(this.url, body, headers, signal);
    } catch (err) {
      if (err instanceof ResponseTooLargeError) {
        this.deps.logger.warn({ subgraph: this.name, limit: err.limit }, 'subgraph response too large');
        throw new GraphQLError(`Subgraph "${this.name}" answered with more than ${err.limit} bytes`, {
          extensions: { code: 'RESPONSE_TOO_LARGE', serviceName: this.name },
        });
      }
      if (signal?.aborted) {
        // The client went away: nobody reads this error, and it is not the subgraph's fault.
        throw new GraphQLError(`The request to subgraph "${this.name}" was cancelled: the client went away`, {
          extensions: { code: 'CLIENT_CLOSED_REQUEST', serviceName: this.name },
        });
      }
      throw this.unavailable(this.reason(err), err);
    }
    const hint = parseHint(response.cacheControl);
    // A subgraph that answers a GraphQL body with a 4xx/5xx status (Apollo Server does for
    // invalid variables) still told us what went wrong: pass its errors, codes intact.
    if (isGraphQLBody(response.body) && (response.status < 300 || (response.body.errors?.length ?? 0) > 0)) {
      return { body: response.body, hint: response.status < 300 ? hint : { maxAge: 0 } };
    }
    if (response.status === 401) {
      throw new GraphQLError(`Subgraph "${this.name}" refused the request: unauthenticated`, {
        extensions: { code: 'UNAUTHENTICATED', serviceName: this.name },
      });
    }
    if (response.status === 403) {
      throw new GraphQLError(`Subgraph "${this.name}" refused the request: forbidden`, {
        extensions: { code: 'FORBIDDEN', serviceName: this.name },
      });
    }
    const reason = response.status >= 300 ? `HTTP ${response.status}: ${STATUS_CODES[response.status] ?? 'error'}` : 'the response is not GraphQL';
    throw this.unavailable(reason);
  }

  private unavailable(reason: string, err?: unknown): GraphQLError {
    this.deps.logger.warn({ err, subgraph: this.name, url: this.url, reason }, 'subgraph request failed');
    // The client learns which subgraph failed and why, not its internal URL.
    return new GraphQLError(`Subgraph "${this.name}" is unavailable: ${reason}`, {
      extensions: { code: SUBGRAPH_UNAVAILABLE, serviceName: this.name, reason },
    });
  }

  private reason(err: unknown): string {
    // Duck-typed: errors from undici and AbortSignal may come from another realm (DOMException).
    const e = (err ?? {}) as { name?: unknown; code?: unknown; message?: unknown; cause?: { code?: unknown } };
    if (e.name === 'AbortError' || e.name === 'TimeoutError' || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT') {
      return `timed out after ${this.deps.timeoutMs} ms`;
    }
    const code = typeof e.code === 'string' ? e.code : e.cause?.code;
    if (typeof code === 'string') return code;
    return typeof e.message === 'string' ? e.message : String(err);
  }

}
