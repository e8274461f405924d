import { metricValue } from '@shop/telemetry';
import { eventually, requireService, services, startOwnRedis, startProxy, testTelemetry } from '@shop/testing';
import { apolloKeyValueCache, openCacheStore } from '../src';
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
      // Busy before the client could even write the command: the wait so far was the process's
      // own, and the call gets its time once the loop turns.
      for (let i = 0; i < 5; i++) {
        const pending = cache.get('k');
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

describe('a stalled Redis', () => {
  it('costs a few timeouts, then is bypassed at once until a probe gets an answer again', async () => {
    const telemetry = testTelemetry('breaker');
    const proxy = await startProxy(services.redis);
    const store = openCacheStore({
      telemetry,
      redisUrl: proxy.url,
      // Well above what a call costs on a loaded machine (CI runs suites side by side on two
      // cores): a bypassed call is one that does not wait for it.
      timeoutMs: 200,
      breakerTimeouts: 3,
      breakerOpenMs: 200,
      prefix: `breaker-${process.pid}`,
    });
    const cache = store.cache('entity');
    const timed = async () => {
      const started = performance.now();
      const value = await cache.get('k');
      return { value, ms: performance.now() - started };
    };
    try {
      expect(await store.connected(5_000)).toBe(true);
      await cache.set('k', 'v', 60_000);
      proxy.stall();
      // Three calls wait out the timeout; then the breaker is open and calls answer at once.
      for (let i = 0; i < 3; i++) expect((await timed()).ms).toBeGreaterThanOrEqual(195);
      const bypassed = await Promise.all(Array.from({ length: 20 }, () => timed()));
      for (const call of bypassed) expect(call).toEqual({ value: undefined, ms: expect.any(Number) });
      expect(Math.max(...bypassed.map((c) => c.ms))).toBeLessThan(150);
      expect(await metricValue(telemetry.metrics.cacheErrors, { cache: 'entity' })).toBe(23);
      // Still stalled past breakerOpenMs: the breaker's probe is a PING off the request path, so
      // no call waits for it, however many are made.
      const stalledSince = performance.now();
      const later = [];
      while (performance.now() - stalledSince < 600) later.push(await timed());
      // A loop, not Math.max(...): bypassed calls are quick, and a fast machine makes more of them in 600 ms than a spread can pass.
      expect(later.reduce((max, c) => Math.max(max, c.ms), 0)).toBeLessThan(150);
      expect(await metricValue(telemetry.metrics.cacheBreakerOpen, {})).toBe(1);
      // Redis answers again: the next probe closes the breaker and the cache is used again.
      proxy.restore();
      expect((await eventually(timed, (c) => c.value === 'v', 5_000, 20)).value).toBe('v');
    } finally {
      // A failed expectation above leaves Redis stalled: closing would wait on it and hide the failure behind the test's timeout.
      proxy.restore();
      await store.close();
      await proxy.close();
    }
  });
});

describe("Apollo's caches and the rate limiter on a stalled Redis", () => {
  it('answer within the timeout (a miss, the in-memory count) and skip Redis once the breaker is open', async () => {
    const telemetry = testTelemetry('stalled-apollo');
    const proxy = await startProxy(services.redis);
    const store = openCacheStore({
      telemetry,
      redisUrl: proxy.url,
      timeoutMs: 50,
      breakerTimeouts: 3,
      breakerOpenMs: 60_000,
      prefix: `apq-${process.pid}`,
    });
    const apollo = apolloKeyValueCache(store.cache('apollo'));
    const limiter = store.rateLimiter({ name: 'stalled', points: 2, durationS: 60 });
    try {
      expect(await store.connected(5_000)).toBe(true);
      await apollo.set('apq:1', 'doc', { ttl: 60 });
      expect(await apollo.get('apq:1')).toBe('doc');
      expect((await limiter.consume('client')).remaining).toBe(1);
      proxy.stall();
      const started = performance.now();
      // Each call gives up after the timeout; the third timeout opens the breaker.
      expect(await apollo.get('apq:1')).toBeUndefined();
      await apollo.set('apq:2', 'doc2', { ttl: 60 });
      expect((await limiter.consume('client')).allowed).toBe(true);
      expect(performance.now() - started).toBeLessThan(1_000);
      expect(await metricValue(telemetry.metrics.cacheBreakerOpen, {})).toBe(1);
      // Open: at once, and the limiter counts in memory (its own window: 2 allowed, then refused).
      const bypassed = performance.now();
      expect(await apollo.get('apq:1')).toBeUndefined();
      const counted = [];
      for (let i = 0; i < 3; i++) counted.push((await limiter.consume('client')).allowed);
      expect(counted).toEqual([true, false, false]);
      expect(performance.now() - bypassed).toBeLessThan(45);
    } finally {
      proxy.restore();
      await store.close();
      await proxy.close();
    }
  });
});
