// Hive Gateway's configuration for the bench (`hive-gateway supergraph <file> -c <this file>`).
// Hive's CLI reads this file itself; the bench passes its choices through the environment:
//   BENCH_HIVE_RESPONSE_CACHE=true   Hive's response cache (the fair "caches on" peer)
//   BENCH_HIVE_REDIS_URL=redis://... where that cache lives (in memory when unset)
// GraphiQL and the landing page are off, logging at warn, no usage reporting (no token given).
// A plain object (Hive's defineConfig only types it): Hive is installed in bench/peers, where
// neither this file's imports nor the repository's type-check would find it.

const responseCache = process.env.BENCH_HIVE_RESPONSE_CACHE === 'true';
const redisUrl = process.env.BENCH_HIVE_REDIS_URL;

export const gatewayConfig = {
  graphiql: false,
  landingPage: false,
  logging: 'warn',
  ...(redisUrl ? { cache: { type: 'redis', url: redisUrl, keyPrefix: 'hive:' } } : {}),
  // One shared cache for every caller (no session), entries for 60 s like the subgraphs' hints;
  // a mutation invalidates the cached responses naming the entities it returns.
  ...(responseCache ? { responseCaching: { session: () => null, ttl: 60_000 } } : {}),
};
