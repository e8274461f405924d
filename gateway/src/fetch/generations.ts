import { randomUUID } from 'node:crypto';
import type { Cache } from '@shop/cache';

/** How long a generation is kept: longer than any cache entry that records one lives. */
export const GENERATION_TTL_MS = 24 * 60 * 60_000;

/** The generation key of an entity identity (`entityIdentity`), or of everything (`*`). */
export const generationKey = (identity: string): string => `g:${identity}`;

/** The key of the write clock: renewed by every invalidation, before the generations it bumps. */
const CLOCK_KEY = 'clock';

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
  constructor(private readonly cache: Cache) {}

  /** Writes a clock when there is none (a fresh store), so every entry can record one. */
  async ensureClock(): Promise<void> {
    if ((await this.cache.get<string>(CLOCK_KEY)) === undefined) await this.cache.set(CLOCK_KEY, randomUUID(), GENERATION_TTL_MS);
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
   * The clock and each identity's generation, in ONE round trip. `'0'` for an identity never
   * bumped; `clock` undefined when none was ever written or the store did not answer.
   */
  async read(identities: readonly string[]): Promise<{ clock: string | undefined; generations: string[] }> {
    const values = await this.cache.getMany<string>([CLOCK_KEY, ...identities.map(generationKey)], { count: false });
    return { clock: values[0], generations: identities.map((_, i) => values[i + 1] ?? '0') };
  }
}
