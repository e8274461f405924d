import { createHash, randomUUID } from 'node:crypto';
import type { Cache } from '@shop/cache';
import type { Metrics } from '@shop/telemetry';
import { GENERATION_TTL_MS, Generations, generationKey } from './generations';
import type { Hint } from './hint';
import { type Representation, stableStringify } from './representation';

/** What the entity cache keeps per representation. */
interface Entry {
  /** The entity's data as the subgraph returned it for this selection. */
  d: unknown;
  /** The entity's generation when it was fetched: an eviction changes the generation. */
  g: string;
  /** The subgraph's generation when it was fetched. */
  s: string;
  h: Hint;
}

const hashes = new Map<string, string>();
/** A short hash of a subgraph operation (its selection), memoised: plans reuse the same strings. */
export function selectionHash(query: string): string {
  let h = hashes.get(query);
  if (!h) {
    h = createHash('sha1').update(query).digest('base64url').slice(0, 16);
    if (hashes.size > 10_000) hashes.clear();
    hashes.set(query, h);
  }
  return h;
}

/** The identity of an entity for eviction: its type and id (or its whole key when it has no `id`). */
export function entityIdentity(typename: string, id: unknown): string {
  return `${typename}:${typeof id === 'string' || typeof id === 'number' ? String(id) : stableStringify(id)}`;
}

function identityOf(rep: Representation): string {
  if ('id' in rep) return entityIdentity(rep.__typename, rep.id);
  const { __typename, ...key } = rep;
  return entityIdentity(__typename, key);
}

/** The most an entry may live, whatever the hint says: generations outlive every entry. */
const MAX_ENTRY_TTL_MS = 60 * 60_000;

export interface EntityCacheOptions {
  cache: Cache;
  metrics: Metrics;
  /** TTL in seconds per type, used when a subgraph sends no max-age. @default {} */
  ttlByType?: Record<string, number>;
}

/** A look-up result: cached data per representation (undefined for a miss) and the generations seen. */
export interface Lookup {
  hits: Array<{ data: unknown; hint: Hint } | undefined>;
  /** Each representation's entity generation (given a fresh one where it had none). */
  generations: string[];
  subgraphGeneration: string;
}

/**
 * The entity cache's store (the layer that uses it is `entity-cache.ts`): one entry per (subgraph, representation, selection), so only
 * misses are sent to subgraphs. Eviction by type and id (or by subgraph) writes a new
 * generation; entries fetched under an older one are ignored. Each look-up is ONE cache round
 * trip (MGET of the entries and their generations).
 */
export class EntityCache {
  /** The generations it reads and bumps: the same keys as the response cache's, in the same store. */
  readonly generations: Generations;

  constructor(private readonly options: EntityCacheOptions) {
    this.generations = new Generations(options.cache);
  }

  private entryKey(subgraph: string, repKey: string, selection: string) {
    return `e:${subgraph}:${selection}:${repKey}`;
  }

  /**
   * Looks up representations under a selection. `repKeys`, each representation's
   * {@link stableStringify}, may be passed when the caller has them already (dedupe does).
   */
  async lookup(
    subgraph: string,
    reps: readonly Representation[],
    selection: string,
    repKeys: readonly string[] = reps.map(stableStringify),
  ): Promise<Lookup> {
    const identities = reps.map(identityOf);
    const genKeys = [...new Set(identities)].map(generationKey);
    const keys = [...repKeys.map((k) => this.entryKey(subgraph, k, selection)), ...genKeys, `s:${subgraph}`];
    const values = await this.options.cache.getMany<unknown>(keys, { count: false });
    const gens = new Map(genKeys.map((k, i) => [k, values[reps.length + i] as string | undefined]));
    let subgraphGeneration = values[keys.length - 1] as string | undefined;
    // An entity without a generation matches no entry.
    const hits = reps.map((_, i) => {
      const entry = values[i] as Entry | undefined;
      const generation = gens.get(generationKey(identities[i] as string));
      if (!entry || generation === undefined || entry.g !== generation || entry.s !== subgraphGeneration) return undefined;
      return { data: entry.d, hint: entry.h };
    });
    // Misses are stored under the generations seen here, before their fetch, so a write after
    // this retires them. One with no generation (never written, expired or evicted) gets a fresh
    // one now: "none" is never recorded (Generations.current says why). A write whose bump lands
    // between the read above and this write is overwritten by it, but the fetch starts after
    // this write, so what it brings is newer than that write.
    const absent = [...gens].filter(([, g]) => g === undefined).map(([k]) => k);
    if (subgraphGeneration === undefined) absent.push(`s:${subgraph}`);
    if (absent.length > 0) {
      const settled = await this.generations.settle(absent);
      for (const [key, value] of settled) gens.set(key, value);
      subgraphGeneration ??= settled.get(`s:${subgraph}`);
    }
    // Every key now has one: read, or given above.
    const generations = identities.map((id) => gens.get(generationKey(id)) as string);
    const hitCount = hits.filter(Boolean).length;
    const { cacheRequests } = this.options.metrics;
    if (hitCount > 0) cacheRequests.inc({ service: 'gateway', cache: 'entity', result: 'hit' }, hitCount);
    if (reps.length - hitCount > 0) cacheRequests.inc({ service: 'gateway', cache: 'entity', result: 'miss' }, reps.length - hitCount);
    return { hits, generations, subgraphGeneration: subgraphGeneration as string };
  }

  /** The TTL for a type: the subgraph's hint, else config; 0 means "do not cache". */
  ttlMs(typename: string, hint: Hint): number {
    if (hint.scope === 'PRIVATE') return 0; // per-user data is never shared between users
    if (hint.noStore) return 0; // said so: a TTL by type is for subgraphs that send no hint at all
    const seconds = hint.maxAge > 0 ? hint.maxAge : (this.options.ttlByType?.[typename] ?? 0);
    return Math.min(seconds * 1000, MAX_ENTRY_TTL_MS);
  }

  /** Stores fetched entities under the generations their look-up saw (before the fetch, so a write after it retires them). */
  async store(
    subgraph: string,
    selection: string,
    items: ReadonlyArray<{ rep: Representation; repKey?: string; data: unknown; generation: string }>,
    subgraphGeneration: string,
    hint: Hint,
  ): Promise<void> {
    const entries = items.flatMap(({ rep, repKey, data, generation }) => {
      const ttlMs = this.ttlMs(rep.__typename, hint);
      if (ttlMs <= 0 || data === null || data === undefined) return [];
      const value: Entry = { d: data, g: generation, s: subgraphGeneration, h: hint };
      return [{ key: this.entryKey(subgraph, repKey ?? stableStringify(rep), selection), value, ttlMs }];
    });
    await this.options.cache.setMany(entries);
  }

  /** Evicts every cached selection of these entities, in every subgraph (and every response holding them). */
  async evict(entities: ReadonlyArray<{ typename: string; id: unknown }>): Promise<void> {
    if (entities.length === 0) return;
    await this.generations.bump(entities.map((e) => entityIdentity(e.typename, e.id)));
  }

  /** Evicts everything cached from one subgraph. */
  async evictSubgraph(subgraph: string): Promise<void> {
    await this.options.cache.set(`s:${subgraph}`, randomUUID(), GENERATION_TTL_MS);
  }
}
