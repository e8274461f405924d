import { randomUUID } from 'node:crypto';
import type { Cache } from '@shop/cache';

/** How long a generation is kept: longer than any cache entry that records one lives. */
export const GENERATION_TTL_MS = 24 * 60 * 60_000;

/**
 * How long a generation given to an entity that had none is kept: longer than any entry (an hour
 * at most) made under it, and no longer, since the entity cache gives one to every entity it
 * looks up. One that expires first anyway only turns its entries into misses.
 */
export const FILLED_GENERATION_TTL_MS = 2 * 60 * 60_000;

/** The generation key of an entity identity (`entityIdentity`), or of everything (`*`). */
export const generationKey = (identity: string): string => `g:${identity}`;

/** The key of the write clock: renewed by every invalidation, before the generations it bumps. */
export const CLOCK_KEY = 'clock';

/** The identity whose generation every response cache entry records: `invalidateSubgraph` bumps it. */
export const EVERYTHING = '*';

/**
 * Entity generations, shared by the entity cache and the response cache (and by every gateway
 * replica on Redis). An invalidation writes a new random generation for each entity it names; an
 * entry made under an older generation is ignored. Before the generations, it renews the write
 * clock: a response whose execution saw the clock change (a write landed meanwhile) is not kept,
 * since its data may predate the write while the generations it would record already follow it.
 */
export class Generations {
  /** Keys being read again and, where still missing, written (`settle`), with the value each gets. */
  private readonly settling = new Map<string, Promise<string>>();

  constructor(private readonly cache: Cache) {}

  /**
   * The clock, written first when there is none: a fresh store, or one flushed, restarted without
   * persistence, or past the clock's TTL with no write meanwhile. Without it nothing could be
   * kept (a response is kept only under a clock) until the next write renewed it. A bump racing
   * this write may be overwritten by it; every response in flight then sees a clock other than
   * the one it started under and is not kept. Undefined when the store does not answer.
   */
  async ensureClock(): Promise<string | undefined> {
    const clock = await this.cache.get<string>(CLOCK_KEY);
    if (clock !== undefined) return clock;
    const fresh = randomUUID();
    await this.cache.set(CLOCK_KEY, fresh, GENERATION_TTL_MS);
    return this.cache.get<string>(CLOCK_KEY);
  }

  /** Renews the clock, then gives each identity a new generation. */
  async bump(identities: readonly string[]): Promise<void> {
    await this.cache.set(CLOCK_KEY, randomUUID(), GENERATION_TTL_MS);
    if (identities.length === 0) return;
    const generation = randomUUID();
    const keys = [...new Set(identities)].map(generationKey);
    await this.cache.setMany(keys.map((key) => ({ key, value: generation, ttlMs: GENERATION_TTL_MS })));
  }

  /**
   * The clock and each identity's generation, in ONE round trip: undefined for an identity that
   * has none (never bumped, expired or evicted), which matches no entry; `clock` undefined when
   * none was ever written or the store did not answer.
   */
  async read(identities: readonly string[]): Promise<{ clock: string | undefined; generations: Array<string | undefined> }> {
    const values = await this.cache.getMany<string>([CLOCK_KEY, ...identities.map(generationKey)], { count: false });
    return { clock: values[0], generations: identities.map((_, i) => values[i + 1]) };
  }

  /**
   * Each identity's generation to record in a new entry, giving a fresh one to every identity
   * that has none: "none" is never recorded, since a generation lost after a bump (evicted under
   * memory pressure, or expired) reads as none again, and an entry that had recorded "none" before
   * the bump would validate with stale data. A fresh value matches no earlier entry.
   *
   * A bump can land between the read and that write, and the write then replaces its generation:
   * the clock is read again after it, and a caller that compares it with the clock its data was
   * made under (the response cache) does not keep what it made. One round trip; four when some
   * identity had none (the read, `settle`'s read and write, the clock).
   */
  async current(identities: readonly string[]): Promise<{ clock: string | undefined; generations: string[] }> {
    const now = await this.read(identities);
    const absent = identities.filter((_, i) => now.generations[i] === undefined).map(generationKey);
    if (absent.length === 0) return { clock: now.clock, generations: now.generations as string[] };
    const settled = await this.settle(absent);
    return {
      clock: await this.clock(),
      generations: identities.map((id, i) => now.generations[i] ?? (settled.get(generationKey(id)) as string)),
    };
  }

  /** The write clock now (undefined when none was ever written). */
  clock(): Promise<string | undefined> {
    return this.cache.get<string>(CLOCK_KEY);
  }

  /**
   * The generation of each of these keys (generation keys, or a subgraph's), read as missing a
   * moment ago: read again, and written fresh where still missing. Concurrent callers in this
   * process share one read and one write per key: two fetches of one request that both find an
   * entity without a generation would otherwise each write their own, and the later write would
   * retire what the earlier one stored. Across replicas that can still happen, once: a miss, never
   * a stale read.
   */
  async settle(keys: readonly string[]): Promise<Map<string, string>> {
    const mine = [...new Set(keys)].filter((key) => !this.settling.has(key));
    if (mine.length > 0) {
      const work = (async () => {
        const now = await this.cache.getMany<string>(mine, { count: false });
        const absent = mine.filter((_, i) => now[i] === undefined);
        const fresh = absent.length > 0 ? await this.fill(absent) : '';
        return new Map(mine.map((key, i) => [key, now[i] ?? fresh]));
      })();
      for (const key of mine) {
        const one = work.then((values) => values.get(key) ?? '');
        this.settling.set(key, one);
        void one.finally(() => this.settling.delete(key)).catch(() => undefined);
      }
    }
    const values = await Promise.all(keys.map((key) => this.settling.get(key) ?? Promise.resolve('')));
    return new Map(keys.map((key, i) => [key, values[i] as string]));
  }

  /** Writes one fresh generation to each of these keys, and returns it. */
  async fill(keys: readonly string[]): Promise<string> {
    const generation = randomUUID();
    await this.cache.setMany([...new Set(keys)].map((key) => ({ key, value: generation, ttlMs: FILLED_GENERATION_TTL_MS })));
    return generation;
  }
}
