import DataLoader from 'dataloader';
import type { Telemetry } from '@shop/telemetry';

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
  return new DataLoader<K, V | null, C>(async (keys) => {
    histogram.observe(keys.length);
    return batch(keys);
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
