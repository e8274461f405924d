import { createLoader } from '@shop/server';
import type { Telemetry } from '@shop/telemetry';
import type { ReviewRow, ReviewsRepository } from './data/repository';

/** A relation list request: whose reviews, and how many. */
export interface ListKey {
  id: string;
  first: number;
}

/**
 * Loads "newest `first` reviews of parent `id`" for many parents at once. Keys usually share one
 * `first`; each distinct `first` in a batch costs one store round trip.
 */
function listLoader(telemetry: Telemetry, name: string, load: (ids: readonly string[], first: number) => Promise<ReviewRow[][]>) {
  return createLoader<ListKey, ReviewRow[], string>(
    telemetry,
    name,
    async (keys) => {
      const byFirst = new Map<number, string[]>();
      for (const k of keys) {
        const ids = byFirst.get(k.first);
        if (ids) ids.push(k.id);
        else byFirst.set(k.first, [k.id]);
      }
      const results = new Map<string, ReviewRow[]>();
      await Promise.all(
        [...byFirst].map(async ([first, ids]) => {
          const lists = await load(ids, first);
          ids.forEach((id, i) => results.set(`${first}:${id}`, lists[i] ?? []));
        }),
      );
      return keys.map((k) => results.get(`${k.first}:${k.id}`) ?? []);
    },
    { cacheKeyFn: (k) => `${k.first}:${k.id}` },
  );
}

/** Per-request loaders: made in the context factory, so their cache lives as long as one request. */
export function createLoaders(reviews: ReviewsRepository, telemetry: Telemetry) {
  return {
    review: createLoader<string, ReviewRow>(telemetry, 'review', (ids) => reviews.byIds(ids)),
    reviewsByProduct: listLoader(telemetry, 'reviewsByProduct', (ids, first) => reviews.newestPer('product_id', ids, first)),
    reviewsByAuthor: listLoader(telemetry, 'reviewsByAuthor', (ids, first) => reviews.newestPer('author_id', ids, first)),
  };
}

export type Loaders = ReturnType<typeof createLoaders>;
