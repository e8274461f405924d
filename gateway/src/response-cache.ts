import { createHash, randomBytes } from 'node:crypto';
import { type ApolloServerPlugin, type BaseContext, type GraphQLRequest, HeaderMap } from '@apollo/server';
import {
  type DocumentNode,
  type FieldNode,
  type ConstDirectiveNode,
  type GraphQLSchema,
  Kind,
  type OperationDefinitionNode,
  type SelectionNode,
  type SelectionSetNode,
  TypeInfo,
  isAbstractType,
  isObjectType,
  parse,
  visit,
  visitWithTypeInfo,
} from 'graphql';
import { LRUCache } from 'lru-cache';
import type { Cache } from '@shop/cache';
import { expandedCounter } from '@shop/server';
import type { Logger, Metrics } from '@shop/telemetry';
import { entityIdentity } from './fetch/entity-cache-store';
import { EVERYTHING, type Generations } from './fetch/generations';
import { HintTally, hintTallies } from './fetch/hint';
import { stableStringify } from './fetch/representation';

/** The longest any response is kept, whatever hints or `RESPONSE_CACHE_TTL` say. */
const MAX_TTL_S = 60 * 60;
/** Requests of a document that were not kept for want of a max-age that skip the cache before it is tried again. */
const UNKEPT_SKIP = 100;

export interface ResponseCacheOptions {
  /** Where responses are kept. */
  cache: Cache;
  /** The entity generations every invalidation bumps (shared with the entity cache). */
  generations: Generations;
  /**
   * Seconds per root field (`Query.<field>`, by field name; `*` for any other) for responses the
   * subgraphs' hints leave without a max-age: root lists and connections. @default {}
   */
  rootTtl?: Readonly<Record<string, number>>;
  /** What authorization removed for this request's caller ('' when nothing): part of the key. */
  signatureOf?: (request: GraphQLRequest) => string;
  /**
   * The subgraphs' alias limit. The markers are aliases: a document whose aliases and markers
   * together (counted through every fragment spread, as the limit counts them) exceed it is served
   * unmarked and not kept, so a client document inside the gateway's limits is never refused by a
   * subgraph because of the cache.
   */
  maxAliases: number;
  metrics: Metrics;
  logger: Logger;
}

/** What one response cache entry holds. */
interface Entry {
  /** The response's data. */
  d: unknown;
  /** The entity identities it contains (and `*`), and their generations when it was made. */
  t: string[];
  g: string[];
  /** The write clock when it was made. */
  c: string;
  /** The policy the client's `Cache-Control` is computed from (the subgraphs' hints). */
  p: { maxAge: number; scope: 'PUBLIC' | 'PRIVATE' };
  /** When it was made (epoch ms): the `age` header. */
  at: number;
}

interface Caller {
  identity?: { sub: string } | undefined;
  /** Set by this plugin: the write clock when the request began (in-flight sharing keys on it). */
  cacheClock?: string | undefined;
}

/** An enum or string argument's value, as the join directives write graph names and keys. */
function argOf(directive: ConstDirectiveNode, name: string): string | boolean | undefined {
  const value = directive.arguments?.find((a) => a.name.value === name)?.value;
  if (!value) return undefined;
  if (value.kind === Kind.STRING || value.kind === Kind.ENUM) return value.value;
  if (value.kind === Kind.BOOLEAN) return value.value;
  return undefined;
}

/**
 * The entity types of a supergraph and the field each is tagged by: a one-field `@key` that
 * every subgraph defining the type can answer itself (it declares that key, or defines the field),
 * so the marker never costs a fetch. A type without one is "untaggable": a query selecting it is
 * not kept (its entities could not be named without asking another subgraph).
 */
export function entityKeysOf(supergraphSdl: string): { keys: Map<string, string>; untaggable: Set<string> } {
  const keys = new Map<string, string>();
  const untaggable = new Set<string>();
  for (const def of parse(supergraphSdl).definitions) {
    if (def.kind !== Kind.OBJECT_TYPE_DEFINITION) continue;
    const joins = (def.directives ?? []).filter((d) => d.name.value === 'join__type');
    const keysByGraph = new Map<string, Set<string>>();
    for (const join of joins) {
      const graph = String(argOf(join, 'graph'));
      const key = argOf(join, 'key');
      const set = keysByGraph.get(graph) ?? new Set<string>();
      if (typeof key === 'string') set.add(key.trim());
      keysByGraph.set(graph, set);
    }
    const candidates = [...new Set([...keysByGraph.values()].flatMap((set) => [...set]))].filter((k) => /^[_A-Za-z][_0-9A-Za-z]*$/.test(k));
    if (![...keysByGraph.values()].some((set) => set.size > 0)) continue; // not an entity
    /** The graphs that resolve `field` themselves: all of the type's, or those its join__field names (not as external). */
    const graphsOf = (field: string): Set<string> => {
      const node = def.fields?.find((f) => f.name.value === field);
      const joinFields = (node?.directives ?? []).filter((d) => d.name.value === 'join__field' && argOf(d, 'graph') !== undefined);
      if (joinFields.length === 0) return new Set(keysByGraph.keys());
      return new Set(joinFields.filter((d) => argOf(d, 'external') !== true).map((d) => String(argOf(d, 'graph'))));
    };
    const usable = candidates.find((k) => {
      const resolving = graphsOf(k);
      return [...keysByGraph].every(([graph, set]) => set.has(k) || resolving.has(graph));
    });
    if (usable) keys.set(def.name.value, usable);
    else untaggable.add(def.name.value);
  }
  return { keys, untaggable };
}

/** The root fields an operation selects (through fragments), `__typename` aside. */
function rootFieldsOf(operation: OperationDefinitionNode, document: DocumentNode): string[] {
  const fragments = new Map(
    document.definitions.flatMap((d) => (d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d.selectionSet] as const] : [])),
  );
  const out = new Set<string>();
  const seen = new Set<string>();
  const walk = (set: SelectionSetNode) => {
    for (const s of set.selections) {
      if (s.kind === Kind.FIELD) {
        if (s.name.value !== '__typename') out.add(s.name.value);
      } else if (s.kind === Kind.INLINE_FRAGMENT) walk(s.selectionSet);
      else if (!seen.has(s.name.value)) {
        seen.add(s.name.value);
        const fragment = fragments.get(s.name.value);
        if (fragment) walk(fragment);
      }
    }
  };
  walk(operation.selectionSet);
  return [...out];
}

/**
 * Aliased fields in a document's operations, counted through every fragment spread: what a
 * subgraph's alias limit (GraphQL Armor's rule) counts. Linear in the document (`expandedCounter`).
 */
export function aliasesOf(document: DocumentNode): number {
  const fragments = new Map<string, SelectionSetNode>();
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d.selectionSet);
  const count = expandedCounter(
    (name) => fragments.get(name),
    (field) => (field.alias ? 1 : 0),
  );
  let total = 0;
  for (const d of document.definitions) if (d.kind === Kind.OPERATION_DEFINITION) total = Math.max(total, count(d.selectionSet));
  return total;
}

/**
 * The whole-response cache, never stale: each response is kept with the entities it contains and
 * their generations (`fetch/generations.ts`); a write that changes an entity, through the gateway
 * (the mutation's answer, or what its subgraph lists in `extensions.invalidate`) or behind its
 * back (an event), bumps that entity's generation, and every response recording an older one is
 * retired at its next read.
 *
 * How the entities are named: the operation is planned with one marker field added to every
 * selection on an entity type, `<marker><Type>: id` (a key field every subgraph of the type can
 * answer, so it costs no fetch), and every entity in the response carries its id whether the
 * client asked for it or not. A query selecting entities through an interface or union, or an
 * entity without such a key, is not kept: naming them would cost fetches. The markers are collected into the entry's tags and taken out of every
 * response before anything else sees it. A marker's prefix is random per process, so no client
 * alias is ever mistaken for one.
 *
 * What is kept: queries without errors and without a null root field (it names no entity a
 * later write could retire), whose subgraph answers all gave a max-age (the shortest
 * wins, as Apollo's cache control decides), or, where some gave none (a root list or connection
 * with no hint), whose root fields all have a TTL in `rootTtl`. PRIVATE answers are kept per
 * signed-in caller (the token's `sub`) and never for anonymous callers; a response kept by
 * `rootTtl` is kept per caller whenever the caller is signed in, since a subgraph's `no-store`
 * does not say whether its data was private. Keys hold the document's hash, the operation name,
 * the variables and what authorization removed for the caller.
 *
 * A write that lands while a response is being made could leave it holding data from before the
 * write but generations from after it: every invalidation renews a write clock before the
 * generations, and a response whose clock changed between its start and its storing is not kept.
 * In-flight sharing keys on the clock too (`FetchRequest.freshness`).
 *
 * Why not `@apollo/server-plugin-response-cache`: it keys on the document and an epoch alone, so
 * the only way to stay fresh was to retire every response at every write; it has no per-entity
 * invalidation and no TTL for unhinted root fields.
 */
export function responseCachePlugin<TContext extends BaseContext & Caller>(options: ResponseCacheOptions): ApolloServerPlugin<TContext> {
  const { cache, generations, metrics, logger, maxAliases } = options;
  const rootTtl = options.rootTtl ?? {};
  const marker = `_rc${randomBytes(6).toString('hex')}_`;
  let entityKeys = new Map<string, string>();
  let untaggable = new Set<string>();
  let generation = 0;
  /**
   * Per document: its marked version and root fields, and how many of its next requests skip the
   * cache (after one whose answers gave no max-age and whose root fields have no TTL: such a
   * document is asked again only now and then, so a query that is never kept costs no look-up,
   * marking or stripping).
   */
  const rewrites = new LRUCache<
    string,
    { document: DocumentNode; operation: OperationDefinitionNode | undefined; roots: string[]; skip: number }
  >({
    max: 2_000,
  });
  const counter = (result: string) => metrics.cacheRequests.labels({ service: 'gateway', cache: 'response', result });
  const hits = counter('hit');
  const misses = counter('miss');
  const retired = counter('stale');

  /** The operation with a marker on every entity selection; undefined if it holds an untaggable entity. */
  const tagged = (schema: GraphQLSchema, document: DocumentNode): DocumentNode | undefined => {
    let refused = false;
    const typeInfo = new TypeInfo(schema);
    const markerField = (type: string, key: string): FieldNode => ({
      kind: Kind.FIELD,
      alias: { kind: Kind.NAME, value: `${marker}${type}` },
      name: { kind: Kind.NAME, value: key },
    });
    const out = visit(
      document,
      visitWithTypeInfo(typeInfo, {
        SelectionSet: {
          leave(node) {
            const parent = typeInfo.getParentType();
            if (!parent) return undefined;
            const possible = isAbstractType(parent) ? schema.getPossibleTypes(parent) : isObjectType(parent) ? [parent] : [];
            const added: SelectionNode[] = [];
            for (const type of possible) {
              if (untaggable.has(type.name)) refused = true;
              const key = entityKeys.get(type.name);
              if (!key) continue;
              // Under an interface or union, naming the concrete entity would make the planner ask
              // another subgraph for its type (an @interfaceObject does not know it): not kept.
              if (type !== parent || !type.getFields()[key]) refused = true;
              else added.push(markerField(type.name, key));
            }
            return added.length === 0 ? undefined : { ...node, selections: [...node.selections, ...added] };
          },
        },
      }),
    );
    return refused || aliasesOf(out) > maxAliases ? undefined : out;
  };

  /** Takes the markers out of `value`, naming each marked entity in `tags`. */
  const strip = (value: unknown, tags: Set<string>): void => {
    if (Array.isArray(value)) {
      for (const item of value) if (item !== null && typeof item === 'object') strip(item, tags);
      return;
    }
    const obj = value as Record<string, unknown>;
    for (const key of Object.keys(obj)) {
      const v = obj[key];
      if (key.startsWith(marker)) {
        tags.add(entityIdentity(key.slice(marker.length), v));
        delete obj[key];
      } else if (v !== null && typeof v === 'object') strip(v, tags);
    }
  };

  /** A response's key: the client's document (its hash), operation name, variables, what authorization removed, and for whom. */
  const keyOf = (queryHash: string, request: GraphQLRequest, mode: string): string => {
    const signature = options.signatureOf?.(request) ?? '';
    return createHash('sha256')
      .update(`${queryHash}\0${request.operationName ?? ''}\0${stableStringify(request.variables ?? {})}\0${signature}\0${mode}`)
      .digest('base64url');
  };

  return {
    async serverWillStart() {
      await generations.ensureClock();
      return {
        schemaDidLoadOrUpdate({ coreSupergraphSdl }) {
          if (!coreSupergraphSdl) return;
          ({ keys: entityKeys, untaggable } = entityKeysOf(coreSupergraphSdl));
          generation++;
          rewrites.clear();
        },
      };
    },
    async requestDidStart() {
      let clock: string | undefined;
      let roots: string[] = [];
      let tally: HintTally | undefined;
      let hitAge: number | undefined;
      /** The client document's query hash, set once the operation is one this cache may keep. */
      let clientHash: string | undefined;
      let current: { skip: number } | undefined;
      return {
        async didResolveOperation(ctx) {
          if (ctx.operation?.operation !== 'query') return;
          const key = `${generation}\0${ctx.queryHash}\0${ctx.request.operationName ?? ''}`;
          let rewrite = rewrites.get(key);
          if (!rewrite) {
            const document = tagged(ctx.schema, ctx.document);
            const operation = document?.definitions.find(
              (d): d is OperationDefinitionNode =>
                d.kind === Kind.OPERATION_DEFINITION && (ctx.operation?.name?.value ?? null) === (d.name?.value ?? null),
            );
            rewrite = {
              document: document ?? ctx.document,
              operation: document ? operation : undefined,
              roots: rootFieldsOf(ctx.operation, ctx.document),
              skip: 0,
            };
            rewrites.set(key, rewrite);
          }
          roots = rewrite.roots;
          if (!rewrite.operation) return;
          if (rewrite.skip > 0) {
            rewrite.skip--;
            return;
          }
          current = rewrite;
          clientHash = ctx.queryHash;
          tally = new HintTally();
          hintTallies.set(ctx.contextValue, tally);
          // As authorization does: the gateway plans the document under the query hash, so the
          // marked document gets its own.
          const writable = ctx as unknown as { document: DocumentNode; operation: OperationDefinitionNode; queryHash: string };
          writable.document = rewrite.document;
          writable.operation = rewrite.operation;
          writable.queryHash = createHash('sha256').update(`${clientHash}\0${marker}`).digest('hex');
        },
        async responseForOperation(ctx) {
          if (clientHash === undefined) return null;
          const signedIn = ctx.contextValue.identity?.sub;
          const modes = signedIn ? [`user:${signedIn}`, 'signed-in'] : ['anonymous'];
          const keys = modes.map((mode) => keyOf(clientHash as string, ctx.request, mode));
          const found = (await cache.getMany<Entry>(keys, { count: false })).find((e) => e !== undefined);
          if (found) {
            const now = await generations.read(found.t);
            if (now.clock !== undefined && now.generations.every((g, i) => g === found.g[i])) {
              hits.inc();
              ctx.overallCachePolicy.replace(found.p);
              hitAge = Math.max(0, Math.round((Date.now() - found.at) / 1000));
              return {
                body: { kind: 'single', singleResult: { data: found.d as Record<string, unknown> } },
                http: { status: undefined, headers: new HeaderMap() },
              };
            }
            retired.inc();
            clock = now.clock;
          } else {
            misses.inc();
            clock = (await generations.read([])).clock;
          }
          // A store flushed or restarted (or a clock past its TTL) has none: one is written now,
          // or no response could be kept until the next write.
          clock ??= await generations.ensureClock();
          ctx.contextValue.cacheClock = clock ?? '';
          return null;
        },
        async willSendResponse(ctx) {
          const { response } = ctx;
          if (response.body.kind !== 'single') return;
          if (hitAge !== undefined) {
            response.http.headers.set('age', String(hitAge));
            return;
          }
          if (clientHash === undefined) return;
          const result = response.body.singleResult;
          const tags = new Set<string>([EVERYTHING]);
          if (result.data) strip(result.data, tags);
          if (result.errors?.length || !result.data || !tally || clock === undefined) return;
          // A root field that found nothing (`product(id: "p9")` before p9 exists) names no entity a
          // later write could retire: not kept.
          for (const key in result.data) if (result.data[key] === null) return;
          // How long, and for whom.
          const signedIn = ctx.contextValue.identity?.sub;
          let ttl = tally.minPositive;
          let perCaller = tally.private;
          if (tally.unhinted) {
            const configured = roots.map((field) => rootTtl[field] ?? rootTtl['*']);
            if (roots.length === 0 || configured.some((s) => s === undefined || s <= 0)) {
              if (current) current.skip = UNKEPT_SKIP;
              return;
            }
            ttl = Math.min(ttl, ...(configured as number[]));
            if (signedIn) perCaller = true;
          }
          ttl = Math.min(ttl, MAX_TTL_S);
          if (!Number.isFinite(ttl) || ttl <= 0 || (perCaller && !signedIn)) return;
          const key = keyOf(clientHash, ctx.request, perCaller ? `user:${signedIn}` : signedIn ? 'signed-in' : 'anonymous');
          const policy = ctx.overallCachePolicy.policyIfCacheable();
          const data = result.data;
          const startClock = clock;
          // Before the answer leaves (unlike Apollo's response cache, which stores in the
          // background): a client that asks again once answered finds it kept. Two cache round
          // trips, on a miss that will be kept only.
          try {
            const t = [...tags];
            const now = await generations.current(t);
            if (now.clock === undefined || now.clock !== startClock) return;
            const entry: Entry = {
              d: data,
              t,
              g: now.generations,
              c: now.clock,
              p: policy ? { maxAge: policy.maxAge, scope: policy.scope } : { maxAge: 0, scope: perCaller ? 'PRIVATE' : 'PUBLIC' },
              at: Date.now(),
            };
            await cache.set(key, entry, ttl * 1000);
          } catch (err) {
            logger.warn({ err }, 'response cache: could not store a response');
          }
        },
      };
    },
  };
}
