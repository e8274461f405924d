import { metricValue } from '@shop/telemetry';
import { eventually, testTelemetry } from '@shop/testing';
import { type CacheStore, apolloKeyValueCache, cacheAside, openCacheStore } from '../src';

/** The cache contract: the same behaviour over the in-memory LRU and over real Redis. */
export function cacheContract(kind: 'memory' | 'redis', redisUrl: () => string | undefined): void {
  describe(`cache store (${kind})`, () => {
    const telemetry = testTelemetry('cachetest');
    let store: CacheStore;
    const ns = `t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    beforeAll(async () => {
      store = openCacheStore({ telemetry, redisUrl: redisUrl(), prefix: ns, timeoutMs: 500 });
      expect(await store.connected(5_000)).toBe(true);
    });
    afterAll(() => store.close());

    it("serves Apollo's cache interface (APQ, the response cache) with TTLs in seconds", async () => {
      const apollo = apolloKeyValueCache(store.cache('apollo'));
      await apollo.set('apq:abc', '{ __typename }', { ttl: 60 });
      await apollo.set('forever', 'x', { ttl: null });
      expect(await apollo.get('apq:abc')).toBe('{ __typename }');
      expect(await apollo.get('forever')).toBe('x');
      await apollo.set('short', 'y', { ttl: 0.05 });
      await eventually(
        () => apollo.get('short'),
        (v) => v === undefined,
        5_000,
        20,
      );
      await apollo.delete('apq:abc');
      expect(await apollo.get('apq:abc')).toBeUndefined();
    });

    it('rate-limits per key within a window, and says when to come back', async () => {
      const limiter = store.rateLimiter({ name: `${ns}-rl`, points: 3, durationS: 60 });
      const verdicts = [];
      for (let i = 0; i < 4; i++) verdicts.push(await limiter.consume('1.2.3.4'));
      expect(verdicts.map((v) => v.allowed)).toEqual([true, true, true, false]);
      expect(verdicts.map((v) => v.remaining)).toEqual([2, 1, 0, 0]);
      expect(verdicts[3]?.retryAfterMs).toBeGreaterThan(50_000);
      expect((await limiter.consume('5.6.7.8')).allowed).toBe(true);
    });

    it('is the kind asked for and answers ping', async () => {
      expect(store.kind).toBe(kind);
      expect(await store.ping()).toBe(true);
    });

    it('gets what was set, many at once, in key order, and counts hits and misses', async () => {
      const cache = store.cache('contract');
      await cache.setMany([
        { key: 'a', value: { n: 1 }, ttlMs: 60_000 },
        { key: 'c', value: { n: 3 }, ttlMs: 60_000 },
      ]);
      expect(await cache.getMany(['a', 'b', 'c'])).toEqual([{ n: 1 }, undefined, { n: 3 }]);
      expect(await metricValue(telemetry.metrics.cacheRequests, { cache: 'contract', result: 'hit' })).toBe(2);
      expect(await metricValue(telemetry.metrics.cacheRequests, { cache: 'contract', result: 'miss' })).toBe(1);
      await cache.delete(['a']);
      expect(await cache.get('a')).toBeUndefined();
    });

    it('gives back exactly the JSON it was given: strings that look like markers, nulls, nesting, a plain string', async () => {
      const cache = store.cache('values');
      const value = { name: ':colon', tag: ':base64:AAAA', list: [1, '::', null, { deep: 'é"\\' }], none: null, flag: false };
      await cache.set('v', value, 60_000);
      await cache.set('s', ':just a string', 60_000);
      expect(await cache.get('v')).toEqual(value);
      expect(await cache.getMany(['v', 's'])).toEqual([value, ':just a string']);
    });

    it('expires entries after their TTL', async () => {
      const cache = store.cache('ttl');
      // Long enough that the read right after the write comes before it on a loaded machine
      // (30 ms expired first on CI), short enough that the wait below stays quick.
      await cache.set('short', 'v', 1_000);
      expect(await cache.get('short')).toBe('v');
      const deadline = Date.now() + 5_000;
      while ((await cache.get('short')) !== undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(await cache.get('short')).toBeUndefined();
    });

    it('keeps named caches apart', async () => {
      await store.cache('one').set('k', 1, 60_000);
      expect(await store.cache('two').get('k')).toBeUndefined();
      expect(await store.cache('one').get('k')).toBe(1);
    });

    it('cache-aside loads only the misses, and does not cache missing entities', async () => {
      const cache = store.cache('aside');
      const loads: string[][] = [];
      const load = async (ids: string[]) => {
        loads.push(ids);
        return ids.map((id) => (id === 'gone' ? null : { id }));
      };
      expect(await cacheAside(cache, ['x', 'y', 'gone'], 60_000, load)).toEqual([{ id: 'x' }, { id: 'y' }, null]);
      expect(await cacheAside(cache, ['x', 'z', 'gone'], 60_000, load)).toEqual([{ id: 'x' }, { id: 'z' }, null]);
      expect(loads).toEqual([
        ['x', 'y', 'gone'],
        ['z', 'gone'],
      ]);
    });
  });
}
