import { metricValue } from '@shop/telemetry';
import { requireService, services, startOwnRedis, startProxy, testTelemetry } from '@shop/testing';
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

describe('timeouts and a busy event loop', () => {
  it("does not give up on a reply that arrived while the process was busy: the timer's turn comes before the socket's", async () => {
    const telemetry = testTelemetry('busyloop');
    const store = openCacheStore({ telemetry, redisUrl: services.redis, timeoutMs: 50, prefix: `busy-${process.pid}` });
    // In this process too, so only for the late reply below (it needs turns of the loop to relay).
    const proxy = await startProxy(services.redis);
    const behindProxy = openCacheStore({ telemetry, redisUrl: proxy.url, timeoutMs: 50, prefix: `busy-${process.pid}` });
    const cache = store.cache('entity');
    const busy = (ms: number) => {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        // a request's synchronous work (planning, serialising) holding the loop past the timeout
      }
    };
    try {
      expect(await store.connected(5_000)).toBe(true);
      await cache.set('k', 'v', 60_000);
      for (let i = 0; i < 5; i++) {
        const pending = cache.get('k');
        // Let the client write the command, then hold the loop twice as long as the timeout: the
        // reply is in the socket, and the timeout is due, when the loop next turns.
        // (two turns: the client writes on a turn of its own)
        for (let turn = 0; turn < 2; turn++) await new Promise((r) => setImmediate(r));
        busy(100);
        expect(await pending).toBe('v');
      }
      expect(await metricValue(telemetry.metrics.cacheErrors, { cache: 'entity' })).toBe(0);
      // A reply that really is late (Redis stalled) still times out, and is counted.
      expect(await behindProxy.connected(5_000)).toBe(true);
      expect(await behindProxy.cache('entity').get('k')).toBe('v');
      proxy.stall();
      const started = Date.now();
      await expect(behindProxy.cache('entity').get('k')).resolves.toBeUndefined();
      expect(Date.now() - started).toBeLessThan(1_000);
      expect(await metricValue(telemetry.metrics.cacheErrors, { cache: 'entity' })).toBe(1);
      proxy.restore();
    } finally {
      await store.close();
      await behindProxy.close();
      await proxy.close();
    }
  });
});
