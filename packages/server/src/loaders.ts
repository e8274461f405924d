import DataLoader from 'dataloader';
import { cacheAside } from '@shop/cache';
import type { HotCache } from './service';
import type { Telemetry } from '@shop/telemetry';
import { inSpan, tracingEnabled } from '@shop/tracing';

/**
 * A per-request DataLoader whose batch sizes are recorded in `dataloader_batch_size`.
 * The batch function must return one value per key, in key order: `null` for a missing key.
 */
export function createLoader<K, V, C = K>(
  telemetry: Telemetry,
  loader: string,
  batch: (keys: readonly K[]) => Promise<ReadonlyArray<V | null | Error>>,
  options?: DataLoader.Options<K, V | null, C>,
): DataLoader<K, V | null, C> {
  const histogram = telemetry.metrics.dataloaderBatchSize.labels({ service: telemetry.service, loader });
  const spanName = `${telemetry.service} load ${loader}`;
  return new DataLoader<K, V | null, C>(async (keys) => {
    histogram.observe(keys.length);
    // A trace shows each batch a request's resolvers made, and under it the store's statements.
    if (!tracingEnabled()) return batch(keys);
    return inSpan(spanName, { 'shop.service': telemetry.service, 'shop.loader': loader, 'shop.batch_size': keys.length }, () =>
      batch(keys),
    );
  }, options);
}

/** Orders rows by the keys that asked for them: one entry per key, `null` where no row matched. */
export function byKeys<K, V>(keys: readonly K[], rows: readonly V[], keyOf: (row: V) => K): (V | null)[] {
  const found = new Map<K, V>();
  for (const row of rows) found.set(keyOf(row), row);
  return keys.map((k) => found.get(k) ?? null);
}

/** Groups rows under the keys that asked for them: one (possibly empty) array per key. */
export function groupByKeys<K, V>(keys: readonly K[], rows: readonly V[], keyOf: (row: V) => K): V[][] {
  const groups = new Map<K, V[]>();
  for (const row of rows) {
    const k = keyOf(row);
    const group = groups.get(k);
    if (group) group.push(row);
    else groups.set(k, [row]);
  }
  return keys.map((k) => groups.get(k) ?? []);
}

/** A by-id loader and the way to evict one id after a write. */
export interface ByIdLoader<V> {
  loader: DataLoader<string, V | null, string>;
  /** Forgets `id` in this request's loader and in the shared cache. */
  invalidate(id: string, fresh?: V): Promise<void>;
}

/**
 * The hot read path for an entity by id: a per-request DataLoader (one store query per batch)
 * over a shared keyv cache (cache-aside with a TTL) when `hot` is set. Only misses reach the store.
 */
export function byIdLoader<V>(
  telemetry: Telemetry,
  name: string,
  hot: HotCache | undefined,
  load: (ids: readonly string[]) => Promise<(V | null)[]>,
): ByIdLoader<V> {
  const cache = hot?.store.cache(`${telemetry.service}.${name}`);
  const loader = createLoader<string, V, string>(telemetry, name, (ids) =>
    cache && hot ? cacheAside<V>(cache, ids, hot.ttlMs, (missing) => load(missing)) : load(ids),
  );
  return {
    loader,
    async invalidate(id, fresh) {
      loader.clear(id);
      if (fresh !== undefined) loader.prime(id, fresh);
      await cache?.delete(id);
    },
  };
}
