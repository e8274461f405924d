/** A cache hint, as subgraphs send it in `Cache-Control` (their `@cacheControl` hints). */
export interface Hint {
  /** Seconds the answer may be reused; 0: not at all. */
  maxAge: number;
  /** `PRIVATE`: per user, never shared between users. @default unset (no scope given) */
  scope?: 'PUBLIC' | 'PRIVATE';
  /**
   * The subgraph said `no-store` (or `no-cache`): Apollo's answer for data with no max-age, PRIVATE
   * data among it. Unlike a missing header, it is never given a configured TTL instead.
   */
  noStore?: true;
}

/** A `Cache-Control` header as a hint: max-age, private/public; no-store and no-cache mean 0. */
export function parseHint(header: string | undefined): Hint {
  const hint: Hint = { maxAge: 0 };
  if (!header) return hint;
  for (const part of header.split(',')) {
    const [k, v] = part.trim().split('=', 2);
    const key = k?.toLowerCase();
    if (key === 'max-age' && v && /^\d+$/.test(v)) hint.maxAge = Number(v);
    else if (key === 'private') hint.scope = 'PRIVATE';
    else if (key === 'public') hint.scope = 'PUBLIC';
    else if (key === 'no-store' || key === 'no-cache') {
      hint.maxAge = 0;
      hint.noStore = true;
    }
  }
  return hint;
}

/** The stricter of two hints: the shorter max-age, and PRIVATE if either is. */
export function minHint(a: Hint, b: Hint): Hint {
  const hint: Hint = { maxAge: Math.min(a.maxAge, b.maxAge) };
  if (a.scope === 'PRIVATE' || b.scope === 'PRIVATE') hint.scope = 'PRIVATE';
  else if (a.scope || b.scope) hint.scope = 'PUBLIC';
  if (a.noStore || b.noStore) hint.noStore = true;
  return hint;
}

/**
 * What the subgraph answers of one client request said about caching, beyond the overall policy
 * (which keeps only the strictest): the response cache applies `RESPONSE_CACHE_TTL` to answers
 * that gave no max-age, while still honouring the shortest max-age the others gave.
 */
export class HintTally {
  /** The shortest positive max-age an answer gave (seconds); Infinity when none did. */
  minPositive = Number.POSITIVE_INFINITY;
  /** Some answer gave no max-age (or said no-store). */
  unhinted = false;
  /** Some answer was PRIVATE. */
  private = false;

  add(hint: Hint): void {
    if (hint.maxAge > 0 && !hint.noStore) this.minPositive = Math.min(this.minPositive, hint.maxAge);
    else this.unhinted = true;
    if (hint.scope === 'PRIVATE') this.private = true;
  }
}

/** The tally of each client request being counted, by its context object (`FetchRequest.scope`). */
export const hintTallies = new WeakMap<object, HintTally>();
