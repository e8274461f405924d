// Hive Gateway's configuration for the bench (`hive-gateway supergraph <file> -c <this file>`).
// Hive's CLI reads this file itself; the bench passes its choices through the environment:
//   BENCH_HIVE_RESPONSE_CACHE=true   Hive's response cache (the fair "caches on" peer)
//   BENCH_HIVE_REDIS_URL=redis://... where that cache lives (in memory when unset)
//   BENCH_REPO_ROOT=<dir>            the repository, whose subgraph schemas give the cache its TTLs
// GraphiQL and the landing page are off, logging at warn, no usage reporting (no token given).
// A plain object (Hive's defineConfig only types it): Hive is installed in bench/peers, where
// neither this file's imports nor the repository's type-check would find it.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type ConstDirectiveNode, Kind, type ObjectTypeDefinitionNode, type ObjectTypeExtensionNode, type TypeNode, parse } from 'graphql';

const responseCache = process.env.BENCH_HIVE_RESPONSE_CACHE === 'true';
const redisUrl = process.env.BENCH_HIVE_REDIS_URL;

/** A `@cacheControl` hint as a TTL in ms: 0 for PRIVATE (a shared cache keeps nothing per user), else its maxAge; undefined without one. */
function hintMs(directives: readonly ConstDirectiveNode[] | undefined): number | undefined {
  const hint = directives?.find((d) => d.name.value === 'cacheControl');
  if (!hint) return undefined;
  const arg = (name: string) => hint.arguments?.find((a) => a.name.value === name)?.value;
  const scope = arg('scope');
  if (scope?.kind === Kind.ENUM && scope.value === 'PRIVATE') return 0;
  const maxAge = arg('maxAge');
  return maxAge?.kind === Kind.INT ? Number(maxAge.value) * 1000 : undefined;
}

/** The named type under a field's list and non-null wrappers. */
function namedType(type: TypeNode): string {
  return type.kind === Kind.NAMED_TYPE ? type.name.value : namedType(type.type);
}

/**
 * Hive's response cache configured as its documentation recommends for a schema with cache hints:
 * a TTL per type and per field (schema coordinate) mirroring our subgraphs' `@cacheControl` (the
 * lowest where two subgraphs hint one type), 0 for PRIVATE ones, and, as Apollo's cache control
 * (ours) decides, 0 for a field without a hint that returns an object type without one (a root
 * field, a connection). A response lives as long as the shortest TTL among what it selects.
 */
export function hintedTtls(repoRoot: string): Record<string, number> {
  const subgraphs = join(repoRoot, 'subgraphs');
  const definitions = readdirSync(subgraphs).flatMap(
    (name) => parse(readFileSync(join(subgraphs, name, 'src', 'schema.graphql'), 'utf8')).definitions,
  );
  const objects = definitions.filter(
    (d): d is ObjectTypeDefinitionNode | ObjectTypeExtensionNode =>
      d.kind === Kind.OBJECT_TYPE_DEFINITION || d.kind === Kind.OBJECT_TYPE_EXTENSION,
  );
  const ttls: Record<string, number> = {};
  const put = (coordinate: string, ms: number) => {
    ttls[coordinate] = Math.min(ttls[coordinate] ?? ms, ms);
  };
  for (const def of objects) {
    const ms = hintMs(def.directives);
    if (ms !== undefined) put(def.name.value, ms);
  }
  const objectNames = new Set(objects.map((d) => d.name.value));
  for (const def of objects) {
    for (const field of def.fields ?? []) {
      const coordinate = `${def.name.value}.${field.name.value}`;
      const ms = hintMs(field.directives);
      const returns = namedType(field.type);
      if (ms !== undefined) put(coordinate, ms);
      else if (objectNames.has(returns) && ttls[returns] === undefined) put(coordinate, 0);
    }
  }
  return ttls;
}

export const gatewayConfig = {
  graphiql: false,
  landingPage: false,
  logging: 'warn',
  ...(redisUrl ? { cache: { type: 'redis', url: redisUrl, keyPrefix: 'hive:' } } : {}),
  // One shared cache for every caller (no session: PRIVATE coordinates are never kept), the
  // longest TTL our hints give (60 s) lowered per coordinate; a mutation invalidates the cached
  // responses naming the entities it returns (Hive's default).
  ...(responseCache
    ? {
        responseCaching: {
          session: () => null,
          ttl: 60_000,
          ttlPerSchemaCoordinate: hintedTtls(process.env.BENCH_REPO_ROOT ?? process.cwd()),
          invalidateViaMutation: true,
        },
      }
    : {}),
};
