import { metricValue } from '@shop/telemetry';
import { requireService, services, startOwnRedis, testTelemetry } from '@shop/testing';
import { openCacheStore } from '../src';
import { cacheContract } from './suite';

beforeAll(() => requireService('redis'));
cacheContract('redis', () => services.redis);

describe('fail-open', () => {
  it('answers misses within the timeout while Redis is down, and uses it again once it is back', async () => {
    const redis = await startOwnRedis();
    const telemetry = testTelemetry('failopen');
    const store = openCacheStore({ telemetry, redisUrl: redis.url, timeoutMs: 50 });
    const cache = store.cache('entity');
    try {
      expect(await store.connected(5_000)).toBe(true);
      await cache.set('k', 'v', 60_000);
      expect(await cache.get('k')).toBe('v');

      await redis.stop();
      const started = Date.now();
      expect(await cache.getMany(['k', 'other'])).toEqual([undefined, undefined]);
      await cache.set('k2', 'v2', 60_000); // must not throw
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(await metricValue(telemetry.metrics.cacheErrors, { cache: 'entity' })).toBeGreaterThanOrEqual(2);

      await redis.start();
      const deadline = Date.now() + 10_000;
      let value: unknown;
      while (Date.now() < deadline) {
        await cache.set('k3', 'back', 60_000);
        value = await cache.get('k3');
        if (value === 'back') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(value).toBe('back');
    } finally {
      await store.close();
      await redis.stop();
    }
  });
});
