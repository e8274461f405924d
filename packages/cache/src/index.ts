import KeyvRedis, { type RedisClientType, createClient } from '@keyv/redis';
import Keyv from 'keyv';
import { LRUCache } from 'lru-cache';
import { type RateLimiterAbstract, RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { Telemetry } from '@shop/telemetry';

export { Keyv };

export interface CacheStoreOptions {
  telemetry: Telemetry;
  /** Redis when set (`redis://` or `rediss://`); a bounded in-memory LRU otherwise. */
  redisUrl?: string | undefined;
  /**
   * Every cache call gives up after this long (of time the process could spend on it) and the
   * caller carries on without the cache. @default 250
   */
  timeoutMs?: number;
  /**
   * After this many timeouts in a row, Redis is bypassed (every call answers at once as a miss);
   * every `breakerOpenMs` a PING off the request path asks whether it answers again, and its
   * answer closes the breaker. A stalled Redis then costs a few slow calls, not every call of
   * every request. @default 5
   */
  breakerTimeouts?: number;
  /** @default 1000 */
  breakerOpenMs?: number;
  /** Entries per in-memory cache. @default 50_000 */
  maxEntries?: number;
  /** A prefix for every Redis key, so several deployments can share one Redis. @default 'shop' */
  prefix?: string;
}

/** One named cache (entity, users, apq, ...): keyv under the hood, every call bounded and fail-open. */
export interface Cache {
  readonly name: string;
  get<T>(key: string): Promise<T | undefined>;
  /**
   * One round trip for all keys (MGET on Redis); `undefined` for a miss, in key order. Pass
   * `count: false` when the caller counts hits itself (some keys are bookkeeping, not look-ups).
   */
  getMany<T>(keys: readonly string[], options?: { count?: boolean }): Promise<(T | undefined)[]>;
  /** @param ttlMs milliseconds (keyv's unit, not Apollo's seconds); undefined: kept until evicted */
  set<T>(key: string, value: T, ttlMs: number | undefined): Promise<void>;
  setMany<T>(entries: ReadonlyArray<{ key: string; value: T; ttlMs: number }>): Promise<void>;
  delete(keys: string | readonly string[]): Promise<void>;
}

/** The caches of one process, sharing one Redis connection (or none). */
export interface CacheStore {
  readonly kind: 'redis' | 'memory';
  cache(name: string): Cache;
  /**
   * A rate limiter whose counters live in the store (shared by every replica on Redis) behind the
   * same timeout and breaker as every cache call: when Redis is down or slow, each process counts
   * in memory instead, and a request is never refused or held up because the store failed.
   */
  rateLimiter(options: RateLimiterOptions): RateLimiter;
  /** True when the backing store answers (always true in memory). */
  ping(): Promise<boolean>;
  /** Resolves true once connected (at once in memory), false if not within `timeoutMs`. @default 2000 */
  connected(timeoutMs?: number): Promise<boolean>;
  close(): Promise<void>;
}

/** A fixed-window request budget per key. */
export interface RateLimiterOptions {
  /** Names the counters (a key prefix). */
  name: string;
  /** Requests allowed per key per window. */
  points: number;
  /** The window, in seconds. */
  durationS: number;
}

export interface RateLimitVerdict {
  allowed: boolean;
  /** Requests left in the window (0 when refused). */
  remaining: number;
  /** When the window resets: the client's Retry-After. */
  retryAfterMs: number;
}

export interface RateLimiter {
  /** Counts one request for `key` and says whether it is within the budget. Never rejects. */
  consume(key: string): Promise<RateLimitVerdict>;
}

class TimeoutError extends Error {}

// Made once: while Redis is down every cache call reports one of these, and an Error's stack
// trace per call would cost more than the call it stands for.
const NOT_CONNECTED = new Error('not connected to Redis');
const BYPASSED = new Error('Redis bypassed: its breaker is open after consecutive timeouts');

/**
 * A bounded Map for keyv. keyv keeps the expiry inside the value it stores and passes the TTL as
 * a third argument, which LRUCache would misread as its options object: hence this thin adapter.
 */
class LruStore {
  private readonly lru: LRUCache<string, NonNullable<unknown>>;
  constructor(max: number) {
    this.lru = new LRUCache({ max });
  }
  get(key: string) {
    return this.lru.get(key);
  }
  set(key: string, value: NonNullable<unknown>) {
    this.lru.set(key, value);
    return this;
  }
  has(key: string) {
    return this.lru.has(key);
  }
  delete(key: string) {
    return this.lru.delete(key);
  }
  clear() {
    this.lru.clear();
  }
}

/** How long a call may wait in all when the process, not Redis, is what is slow: this many timeouts. */
const BUSY_EXTENSION_LIMIT = 10;

/**
 * Rejects with a TimeoutError when `promise` has not settled within `ms`, measured in time the
 * process could have spent on it. A timer that fires late says the event loop was busy (a
 * CPU-bound gateway under load): the command may not even have been written yet, so the wait is
 * extended, up to {@link BUSY_EXTENSION_LIMIT} timeouts in all. And when it does fire, the reply
 * may already sit in the socket: the loop runs due timers before it reads sockets, so the verdict
 * waits for this turn's I/O (setImmediate runs after the poll phase). Without both, a busy gateway
 * would time out calls Redis answered, then fetch and re-store what it already had, and fall
 * further behind. A stalled Redis on an idle process still times out after `ms`.
 */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let settled = false;
  const started = performance.now();
  const timeout = new Promise<never>((_, reject) => {
    let due = started + ms;
    const verdict = () => {
      if (settled) return;
      const now = performance.now();
      if (now - due > ms / 2 && now + ms - started <= ms * BUSY_EXTENSION_LIMIT) {
        due = now + ms;
        timer = setTimeout(() => setImmediate(verdict), ms);
        return;
      }
      reject(new TimeoutError(`cache call took over ${Math.round(now - started)} ms`));
    };
    timer = setTimeout(() => setImmediate(verdict), ms);
  });
  return Promise.race([promise, timeout]).finally(() => {
    settled = true;
    clearTimeout(timer);
  });
}

/**
 * Opens the process's cache store. With Redis, the client does not queue commands while
 * disconnected (they fail at once and the caller falls back to the source), reconnects with
 * backoff, and never throws into the request path: a cache outage costs speed, not answers.
 */
export function openCacheStore(options: CacheStoreOptions): CacheStore {
  const { telemetry } = options;
  const service = telemetry.service;
  const timeoutMs = options.timeoutMs ?? 250;
  const breaker = {
    limit: options.breakerTimeouts ?? 5,
    openMs: options.breakerOpenMs ?? 1000,
    timeouts: 0,
    open: false,
    openUntil: 0,
    probeInFlight: false,
  };
  const prefix = options.prefix ?? 'shop';
  const { cacheRequests, cacheErrors } = telemetry.metrics;
  let lastWarning = 0;
  const warn = (err: unknown, cache: string, op: string) => {
    cacheErrors.inc({ service, cache, op });
    // One line every 10 s is enough to say the cache is down; the counter has the detail.
    if (Date.now() - lastWarning > 10_000) {
      lastWarning = Date.now();
      telemetry.logger.warn({ err: err instanceof Error ? err.message : String(err), cache, op }, 'cache unavailable; serving without it');
    }
  };

  let client: RedisClientType | undefined;
  if (options.redisUrl) {
    client = createClient({
      url: options.redisUrl,
      disableOfflineQueue: true,
      socket: { connectTimeout: 2_000, reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 2_000) },
    });
    client.on('error', (err: unknown) => warn(err, 'redis', 'connection'));
    client.connect().catch((err: unknown) => warn(err, 'redis', 'connect'));
  }

  const breakerGauge = telemetry.metrics.cacheBreakerOpen.labels({ service });
  breakerGauge.set(0);
  /**
   * Every call to the store goes through here: bounded by the timeout, answered with `fallback`
   * when it fails, skipped at once while the breaker is open.
   */
  /**
   * While the breaker is open no call goes to Redis; after `breakerOpenMs` one PING, off every
   * request's path, asks whether it answers again (and closes the breaker if it does). A stalled
   * Redis then costs the calls that opened the breaker, and nothing after.
   */
  const probeRedis = (redis: RedisClientType) => {
    if (breaker.probeInFlight || Date.now() < breaker.openUntil) return;
    breaker.probeInFlight = true;
    withTimeout(redis.ping(), timeoutMs).then(
      () => {
        breaker.open = false;
        breaker.timeouts = 0;
        breakerGauge.set(0);
        breaker.probeInFlight = false;
      },
      () => {
        breaker.openUntil = Date.now() + breaker.openMs;
        breaker.probeInFlight = false;
      },
    );
  };
  const guarded = async <T>(name: string, op: string, fallback: T, fn: () => Promise<T>): Promise<T> => {
    // Not connected (Redis down, the client between reconnect attempts): answered at once without
    // it, rather than handing the call to a client that would wait for its next attempt.
    if (client && !client.isReady) {
      warn(NOT_CONNECTED, name, op);
      return fallback;
    }
    if (client && breaker.open) {
      probeRedis(client);
      warn(BYPASSED, name, op);
      return fallback;
    }
    try {
      const value = await withTimeout(fn(), timeoutMs);
      breaker.timeouts = 0;
      return value;
    } catch (err) {
      if (err instanceof TimeoutError && client && ++breaker.timeouts >= breaker.limit && !breaker.open) {
        breaker.open = true;
        breaker.openUntil = Date.now() + breaker.openMs;
        breakerGauge.set(1);
      }
      warn(err, name, op);
      return fallback;
    }
  };

  const caches = new Map<string, Cache>();
  const makeCache = (name: string): Cache => {
    // Plain JSON: what we cache is JSON already (no Buffers), and keyv's default (de)serializer,
    // which escapes strings and revives Buffers value by value, was 13% of a warm entity-cache
    // gateway's CPU. The namespace names the format, so entries of the old one are never misread.
    const keyv = client
      ? new Keyv({
          store: new KeyvRedis(client, { throwOnConnectError: false, throwOnErrors: true }),
          namespace: `${prefix}:${name}:json`,
          useKeyPrefix: false,
          serialize: JSON.stringify,
          deserialize: JSON.parse,
        })
      : new Keyv({ store: new LruStore(options.maxEntries ?? 50_000), namespace: name });
    // keyv re-emits store errors as events: without a listener an 'error' event would crash the process.
    keyv.on('error', (err: unknown) => warn(err, name, 'store'));
    const hits = cacheRequests.labels({ service, cache: name, result: 'hit' });
    const misses = cacheRequests.labels({ service, cache: name, result: 'miss' });
    const guard = <T>(op: string, fallback: T, fn: () => Promise<T>) => guarded(name, op, fallback, fn);
    const count = <T>(values: (T | undefined)[]) => {
      let hit = 0;
      for (const v of values) if (v !== undefined) hit++;
      if (hit > 0) hits.inc(hit);
      if (values.length - hit > 0) misses.inc(values.length - hit);
      return values;
    };
    return {
      name,
      get: async <T>(key: string) =>
        count([await guard<T | undefined>('get', undefined, async () => (await keyv.get<T>(key)) ?? undefined)])[0],
      getMany: async <T>(keys: readonly string[], opts?: { count?: boolean }) => {
        if (keys.length === 0) return [];
        const values = await guard<(T | undefined)[]>(
          'getMany',
          keys.map(() => undefined),
          async () => (await keyv.getMany<T>([...keys])).map((v) => v ?? undefined),
        );
        return opts?.count === false ? values : count(values);
      },
      set: async (key, value, ttlMs) => {
        await guard('set', undefined, async () => void (await keyv.set(key, value, ttlMs)));
      },
      setMany: async (entries) => {
        if (entries.length === 0) return;
        await guard(
          'setMany',
          undefined,
          async () => void (await keyv.setMany(entries.map((e) => ({ key: e.key, value: e.value, ttl: e.ttlMs })))),
        );
      },
      delete: async (keys) => {
        const list = typeof keys === 'string' ? [keys] : [...keys];
        if (list.length === 0) return;
        await guard('delete', undefined, async () => void (await keyv.deleteMany(list)));
      },
    };
  };

  return {
    kind: client ? 'redis' : 'memory',
    rateLimiter({ name, points, durationS }) {
      const keyPrefix = `${prefix}:ratelimit:${name}`;
      const memory = new RateLimiterMemory({ points, duration: durationS, keyPrefix });
      const shared = client
        ? new RateLimiterRedis({ storeClient: client, useRedisPackage: true, points, duration: durationS, keyPrefix })
        : undefined;
      const verdictOf = (res: RateLimiterRes, allowed: boolean): RateLimitVerdict => ({
        allowed,
        remaining: allowed ? res.remainingPoints : 0,
        retryAfterMs: res.msBeforeNext,
      });
      // rate-limiter-flexible rejects with a RateLimiterRes when the budget is spent, with an Error when the store fails.
      const consumeOn = (limiter: RateLimiterAbstract, key: string) =>
        limiter.consume(key).then(
          (res) => verdictOf(res, true),
          (err: unknown) => {
            if (err instanceof RateLimiterRes) return verdictOf(err, false);
            throw err;
          },
        );
      return {
        async consume(key) {
          const verdict = shared
            ? await guarded<RateLimitVerdict | undefined>('ratelimit', 'consume', undefined, () => consumeOn(shared, key))
            : undefined;
          return verdict ?? consumeOn(memory, key);
        },
      };
    },
    cache(name) {
      let cache = caches.get(name);
      if (!cache) {
        cache = makeCache(name);
        caches.set(name, cache);
      }
      return cache;
    },
    async ping() {
      if (!client) return true;
      try {
        return (await withTimeout(client.ping(), 500)) === 'PONG';
      } catch {
        return false;
      }
    },
    async connected(waitMs = 2_000) {
      if (!client || client.isReady) return true;
      const redis = client;
      return new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          redis.off('ready', onReady);
          resolve(false);
        }, waitMs);
        const onReady = () => {
          clearTimeout(timer);
          resolve(true);
        };
        redis.once('ready', onReady);
      });
    },
    async close() {
      if (client?.isOpen) await client.close();
      else client?.destroy();
    },
  };
}

/**
 * Cache-aside for a batch loader: answers what the cache has, loads only the misses from the
 * source in one call, and stores what it loaded. Missing entities (null) are not cached.
 */
export async function cacheAside<V>(
  cache: Cache,
  keys: readonly string[],
  ttlMs: number,
  load: (missing: string[]) => Promise<(V | null)[]>,
): Promise<(V | null)[]> {
  const cached = await cache.getMany<V>(keys.map((k) => k));
  const missing = keys.filter((_, i) => cached[i] === undefined);
  if (missing.length === 0) return cached as V[];
  const loaded = await load(missing);
  const byKey = new Map(missing.map((k, i) => [k, loaded[i] ?? null]));
  await cache.setMany(
    missing.flatMap((key) => {
      const value = byKey.get(key);
      return value === null || value === undefined ? [] : [{ key, value, ttlMs }];
    }),
  );
  return keys.map((k, i) => cached[i] ?? byKey.get(k) ?? null);
}

/** Apollo Server's cache interface (`@apollo/utils.keyvaluecache`), which APQ and the response cache use. */
export interface ApolloKeyValueCache {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string, options?: { ttl?: number | null }): Promise<void>;
  delete(key: string): Promise<boolean | void>;
}

/**
 * Apollo Server's cache (APQ, the response cache) over one of our caches, so that its calls are
 * bounded and fail open like every other cache call: a Redis that is down or frozen costs at most
 * the cache timeout per call until the breaker opens, never an error or a hang. (Apollo's
 * KeyvAdapter over the raw keyv would let Redis's errors and stalls through to the client.)
 */
export function apolloKeyValueCache(cache: Cache): ApolloKeyValueCache {
  return {
    get: (key) => cache.get<string>(key),
    // Apollo's TTLs are seconds; null or absent means no expiry.
    set: (key, value, options) => cache.set(key, value, typeof options?.ttl === 'number' ? options.ttl * 1000 : undefined),
    delete: (key) => cache.delete(key),
  };
}
