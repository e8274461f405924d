import { createHash, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { type FSWatcher, watch } from 'node:fs';
import path from 'node:path';
import { ApolloServer, type ApolloServerPlugin, type BaseContext } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloGateway, type SupergraphSdlHook } from '@apollo/gateway';
import { type CacheStore, apolloKeyValueCache, openCacheStore } from '@shop/cache';
import {
  BatchingDataSource,
  type BreakerOptions,
  EntityCache,
  type FetchLayers,
  type RetryOptions,
  allLayersOn,
  createTransport,
  defaultBreakerOptions,
  defaultRetryOptions,
} from './fetch';
import type { Bus, Subscription } from '@shop/events';
import { defaultEvictionEvents, entitiesChangedBy, subscribeEvictions } from './evictions';
import { GraphQLError, type ValidationRule } from 'graphql';
import { type Counter, Gauge, type Registry } from 'prom-client';
import {
  type DocumentLimits,
  type LoadSheddingOptions,
  type RouteHandler,
  type RunningServer,
  type StreamFront,
  type CostDirectives,
  type CostMode,
  type Identity,
  clientErrors,
  costDirectivesOf,
  createHttpServer,
  defaultMaxCost,
  demandControlPlugin,
  emptyCostDirectives,
  inputGuardPlugin,
  defaultDocumentLimits,
  defaultLoadShedding,
  documentLimitRules,
  encodeIdentity,
  listen,
  parseOptionsFor,
  subgraphDocumentLimits,
  tracingPlugin,
} from '@shop/server';
import { tracingEnabled } from '@shop/tracing';
import { type Logger, type Telemetry, sharedCounter } from '@shop/telemetry';
import {
  type AuthorizationOptions,
  type TokenOptions,
  authorization,
  createAuthenticate,
  createVerifyAuthorization,
  linksAuthDirectives,
} from './auth';
import { type ExplorerOptions, createExplorer } from './explorer';
import { shapePlans } from './plan';
import { type PlanExecutor, type SubscriptionPhase, unlessQueryPlanAsked, withPlanExecutor } from './execute';
import { type HubLimits, SHUTTING_DOWN, SubscriptionHub } from './subscriptions/hub';
import { type EventTopics, eventTopicsOf } from './subscriptions/topics';
import { subscriptionMetrics } from './subscriptions/metrics';
import { createSseFront } from './subscriptions/sse';
import { createWsFront } from './subscriptions/ws';
import { entityIdentity } from './fetch/entity-cache-store';
import { EVERYTHING, Generations } from './fetch/generations';
import { EVERYTHING_CHANGED } from './fetch/evict-after-mutation';
import { responseCachePlugin } from './response-cache';
import { valueCompletionPlugin } from './value-completion';
import { type TrustedDocumentsOptions, createTrustedDocuments } from './trusted-documents';
import { SupergraphConfigError, composeFromConfig, formatCompositionError, readSupergraphFile } from '@shop/composition';

export { EXPLORER_PATH, type ExplorerOptions } from './explorer';
export { type FetchTiming, type PlanExecutor, type PlanTreeNode, QUERY_PLAN_HEADER, type QueryPlanExtension } from './execute';
export { type AuthorizationOptions, type Policy, UNAUTHORIZED_FIELD_OR_TYPE, authDirectivesOf, defaultPolicies } from './auth';
// The config module travels with the factory: every mode maps the environment through it.
export {
  type GatewayConfig,
  type GatewayDeps,
  gatewayEnvSchema,
  gatewayOptionsFromConfig,
  isGatewayVariable,
  loadGatewayConfig,
  openGatewayCacheStore,
} from './config';

/** Where the gateway gets its supergraph. */
export type SupergraphSource =
  /** A composed supergraph file (`npm run compose`, `rover supergraph compose`). */
  | { path: string }
  /** A rover-format supergraph.yaml, composed at start and again whenever it or a schema file changes. */
  | { configPath: string }
  /**
   * A composed supergraph published at an HTTP(S) URL (`npm run supergraph -- publish` and
   * `-- serve`, or any static server): fetched at start, then polled every `pollIntervalMs` with
   * `If-None-Match`, so an unchanged supergraph costs a 304.
   */
  | { url: string }
  /** A supergraph SDL held in memory; never reloaded. */
  | { sdl: string };

/** The per-request context of the gateway's operations. */
export interface GatewayContext extends BaseContext {
  /** Forwarded to every subgraph as `x-request-id` so one request can be followed across services. */
  requestId: string;
  logger: Logger;
  /** Aborted when the client goes away: the data sources cancel its subgraph requests. */
  signal?: AbortSignal;
  /** When the client must be answered (epoch ms): subgraph requests get what is left. */
  deadline?: number | undefined;
  /** The client's verified token (subject, roles, scopes); undefined for an anonymous request. */
  identity?: Identity | undefined;
  /** {@link identity} as the signed `x-gateway-identity` header sends it; the fetch layers key on it too. */
  identityHeader?: string | undefined;
  /** Set by the response cache: the shared write clock when the request began (in-flight sharing keys on it). */
  cacheClock?: string | undefined;
  /** Set for a subscription's runs: its check, or the event it is resolved for (see `execute`). */
  subscription?: SubscriptionPhase | undefined;
}

export interface GatewayOptions {
  telemetry: Telemetry;
  supergraph: SupergraphSource;
  /**
   * The layers between the query planner and the subgraphs: representation dedupe, merged
   * `_entities` fetches, in-flight sharing. Responses are identical with any of them off.
   * @default all on
   */
  layers?: Partial<FetchLayers>;
  /**
   * Fold an entity fetch into a later fetch of the same subgraph at the same path that needs at
   * least its representations (`FOLD_FETCHES`; see `plan/fold.ts`). @default true
   */
  foldFetches?: boolean;
  /**
   * Run side-by-side branches of a plan level by level, so one level's fetches to a subgraph go
   * out as one request (`LEVEL_FETCHES`; see `plan/fold.ts`). @default true
   */
  levelFetches?: boolean;
  /**
   * Which executor runs the query plans (`PLAN_EXECUTOR`): `own` (`execute/`: the plan and a
   * compiled result shaper kept per document) or @apollo/gateway's. Both give the same responses;
   * ours also puts an `_entities` error on the entity it names (see `execute/run-plan.ts`).
   * @default 'own'
   */
  executor?: PlanExecutor;
  /**
   * `EXPOSE_QUERY_PLAN`: a request with `Apollo-Expose-Query-Plan: true` gets its query plan in
   * `extensions.queryPlan` (a tree of the plan's nodes and Apollo's text) and, on our executor,
   * each subgraph call's timing in `extensions.fetchTimings` (`execute/expose.ts`). Such a request
   * skips the response cache and is answered `Cache-Control: no-store`. Off, the header is
   * ignored. The plan names the subgraphs and what each is asked: keep it off in production.
   * @default false
   */
  exposeQueryPlan?: boolean;
  /**
   * Where the entity cache, persisted queries (APQ) and the response cache live: Redis or an
   * in-memory LRU (see @shop/cache). Without one, none of the three caches runs.
   */
  cacheStore?: CacheStore | undefined;
  /** The entity cache (needs `cacheStore`); `ttlByType` (seconds) applies when a subgraph sends no max-age. @default true */
  entityCache?: boolean | { ttlByType?: Record<string, number> };
  /**
   * An event bus: the gateway evicts cached entities on the events in `evictOn`, so writes made
   * behind its back show after the propagation delay. @default none
   */
  bus?: Bus | undefined;
  /** Event types that evict the entities they change. @default defaultEvictionEvents */
  evictOn?: readonly string[];
  /**
   * Document limits (GraphQL Armor's depth, aliases and directives rules, graphql-js's token
   * limit), checked in linear time before anything else. @default defaultDocumentLimits
   */
  limits?: Partial<DocumentLimits>;
  /**
   * Demand control: the static cost estimate of each operation (`@cost`/`@listSize` from the
   * supergraph), reported in `extensions.cost`; over `maxCost` it is refused with
   * `COST_ESTIMATED_TOO_EXPENSIVE` before any subgraph is called (`mode: 'enforce'`) or only
   * counted (`'measure'`). `false` turns it off. @default { maxCost: defaultMaxCost, mode: 'enforce', reportActual: false, defaultListSize: 10 }
   */
  cost?: false | Partial<{ maxCost: number; mode: CostMode; reportActual: boolean; defaultListSize: number }>;
  /**
   * The whole-response cache (needs `cacheStore`; see `response-cache.ts`): each response tagged
   * with the entities it holds and retired by a write to any of them; honours cache hints, keyed
   * per user for PRIVATE data. @default true
   */
  responseCache?: boolean;
  /**
   * `RESPONSE_CACHE_TTL`: seconds per root field (`*` for any) for responses whose subgraph hints
   * give no max-age (root lists, connections); every root field of the operation needs one.
   * @default {} (such responses are not kept)
   */
  responseCacheTtl?: Readonly<Record<string, number>>;
  /**
   * Routing URLs that replace the supergraph's, by subgraph name. Names match ignoring case, with
   * anything but letters and digits read as `_`, so `{ accounts: ... }` and the env form
   * `{ ACCOUNTS: ... }` (from `SUBGRAPH_ACCOUNTS_URL`) both apply to subgraph `accounts`.
   * @default {}
   */
  subgraphUrlOverrides?: Record<string, string>;
  /** A subgraph request that takes longer fails with `SUBGRAPH_UNAVAILABLE`. @default 10_000 */
  subgraphTimeoutMs?: number;
  /** Per-subgraph timeouts that replace `subgraphTimeoutMs`, by name (matched like `subgraphUrlOverrides`). @default {} */
  subgraphTimeouts?: Record<string, number>;
  /**
   * Every client request's deadline (a client may ask for less with `x-request-timeout-ms`): no
   * subgraph request is sent after it, each gets at most what is left, and the subgraphs stop
   * resolving when it passes. @default 15_000
   */
  requestTimeoutMs?: number;
  /** A circuit breaker per subgraph (`false`: none). @default defaultBreakerOptions */
  breaker?: Partial<BreakerOptions> | false;
  /** Retries of queries after a connection failure, never mutations (`false`: none). @default defaultRetryOptions */
  retry?: Partial<RetryOptions> | false;
  /** Load shedding: 503 OVERLOADED while the event loop lags or too many requests are in flight (`false`: none). @default defaultLoadShedding */
  loadShedding?: Partial<LoadSheddingOptions> | false;
  /**
   * Requests per client per window, counted in `cacheStore` (Redis: shared by the replicas) or in
   * memory; over it, 429 RATE_LIMITED with Retry-After (`false`: none). The client is the
   * connection's address. @default { points: 1000, durationS: 10 }
   */
  rateLimit?: { points: number; durationS: number } | false;
  /**
   * `MAX_RESPONSE_BYTES`: a subgraph response over it is cut off (`RESPONSE_TOO_LARGE` at its
   * path), and so is a response to the client (one `RESPONSE_TOO_LARGE` error). @default 5_000_000
   */
  maxResponseBytes?: number;
  /**
   * Answer introspection queries (turn off in production). When off, a query asking for
   * `__schema` or `__type` is a `GRAPHQL_VALIDATION_FAILED` error saying so. @default true
   */
  introspection?: boolean;
  /**
   * Serve the GraphiQL explorer at `/explorer`, from the gateway's own assets (no CDN), and
   * redirect a browser opening `/graphql` to it. `false`: `/explorer` is a 404. Apollo's own
   * landing page, which loads from Apollo's CDN, is never served. @default true
   */
  explorer?: boolean | ExplorerOptions;
  /** Stack traces in error responses, and each query plan logged at debug level. @default false */
  debug?: boolean;
  /**
   * Production error rules (`clientErrors` in @shop/server): an error whose code is not a client
   * code (`CLIENT_ERROR_CODES`), a subgraph's included, reaches the client as
   * INTERNAL_SERVER_ERROR with the request id and no message, stack or extensions; the original
   * is logged with that request id. `Did you mean ...?` suggestions are removed when this is on or
   * introspection is off. Set from `NODE_ENV=production`. @default false
   */
  maskErrors?: boolean;
  /**
   * Watch the supergraph file, or the supergraph.yaml and its schema files, and swap in the new
   * supergraph when they change. Ignored for `{ sdl }`. A `schema.subgraph_url` is fetched again
   * only when the yaml or a schema file changes: it is not polled.
   * @default true
   */
  watch?: boolean;
  /** How long to wait after the last file event before reloading; editors write in bursts. @default 100 */
  watchDebounceMs?: number;
  /**
   * Poll the supergraph source every this many ms, besides watching files: a `{ url }` source
   * with a conditional GET, a file by reading it (file events do not reach every volume: NFS,
   * some container mounts). 0: no polling. Ignored for `{ sdl }`.
   * @default 10000 for a `{ url }`, 0 otherwise
   */
  pollIntervalMs?: number;
  /** With a `{ url }` source: how long start-up keeps asking a registry that does not answer. @default 30000 */
  supergraphStartupTimeoutMs?: number;
  /**
   * On `stop()`, how long `/ready` answers 503 `draining` while requests are still served, before
   * the server stops accepting (`DRAIN_DELAY_MS`): load balancers take the replica out meanwhile.
   * @default 0
   */
  drainDelayMs?: number;
  /**
   * Subscriptions (graphql-transport-ws on a WebSocket upgrade of `/graphql`, and Server-Sent
   * Events for a request that accepts only `text/event-stream`), fed by the bus: the caps, the
   * queue a subscriber may fall behind by, the event runs at once, the WebSocket ping interval.
   * `false` refuses upgrades and event streams. Needs `bus` to deliver anything.
   * @default on, with {@link defaultHubLimits} and a 15 s ping
   */
  subscriptions?: (Partial<HubLimits> & { keepAliveMs?: number }) | false;
  /** Extra Apollo Server plugins (response cache, for instance). @default [] */
  plugins?: ApolloServerPlugin<GatewayContext>[];
  /** Extra HTTP routes, tried before `/graphql`; they win over the explorer's on the same path. @default {} */
  routes?: Record<string, RouteHandler>;
  /**
   * Trusted documents, from a manifest in Apollo's persisted query list format (`npm run
   * documents`). `log` runs everything and logs and counts documents not in it; `enforce` runs
   * only listed documents (by id, or by identical text), refuses the rest with
   * `PERSISTED_QUERY_NOT_IN_LIST` before parsing them, and turns APQ registration off. The
   * explorer's tabs stay runnable when their operations are listed.
   * @default { mode: 'off' }: no check, the manifest is not read
   */
  trustedDocuments?: TrustedDocumentsOptions;
  /**
   * Give every null that stands for a subgraph's data an error at its path (value-completion.ts);
   * `false` leaves Apollo's own reporting (`extensions.valueCompletion`, pathless fetch errors).
   * @default true
   */
  valueCompletion?: boolean;
  /**
   * Bearer tokens (`JWKS_URL`, `JWT_ISSUER`, `JWT_AUDIENCE`): a request with `Authorization:
   * Bearer <jwt>` runs as the token's identity once it verifies, and is refused with 401
   * UNAUTHENTICATED before any GraphQL work when it does not; without the header it is anonymous.
   * Without `jwksUrl` (or `keys`) every bearer token is refused: nothing can verify it.
   * @default {}: no keys
   */
  auth?: TokenOptions;
  /**
   * `@authenticated`, `@requiresScopes` and `@policy` from the supergraph, enforced before planning
   * (auth/authorize.ts): a field the caller may not see is left out of the plan and answered null
   * with UNAUTHORIZED_FIELD_OR_TYPE at its path. `policies` decide `@policy` names (over
   * `defaultPolicies`: `self`, `admin`). `false`: a supergraph that uses the directives is refused
   * (as plain @apollo/gateway refuses it); one without them is not touched either way.
   * @default {}
   */
  authorization?: AuthorizationOptions | false;
  /**
   * `SUBGRAPH_SECRET`: every subgraph request is signed with it (HMAC-SHA256 over method, path,
   * time, identity and body, in `x-gateway-signature`) and carries the caller's identity in
   * `x-gateway-identity`; the subgraphs answer nothing else. Without it requests go unsigned and
   * without identity, as other teams' subgraphs expect. @default none
   */
  subgraphSecret?: string | undefined;
}

/** Requests per client per window when `rateLimit` is not given: 100 a second on average, bursts of 1000. */
export const defaultRateLimit = { points: 1000, durationS: 10 };

/** A gateway that is built and serving its supergraph in-process, but not listening. */
export interface Gateway {
  listen(port: number, host?: string): Promise<RunningServer>;
  /**
   * Evicts entities from the gateway's caches (every subgraph's cached selections of them) and
   * retires every cached whole response. For writes made behind the gateway's back.
   */
  invalidate(entities: ReadonlyArray<{ typename: string; id: string | number }>): Promise<void>;
  /** Evicts everything the gateway has cached from one subgraph. */
  invalidateSubgraph(subgraph: string): Promise<void>;
  /** Subscriptions active on this replica (checked and fed). */
  subscriptions(): number;
  /** Drains in-flight HTTP requests, then stops Apollo Server, the gateway and the file watchers. */
  stop(): Promise<void>;
  readonly apollo: ApolloServer<GatewayContext>;
  readonly gateway: ApolloGateway;
  /** The supergraph SDL being served now. */
  supergraphSdl(): string;
}

/** Thrown when a supergraph.yaml does not compose; the message lists every error with its subgraph. */
export class CompositionFailedError extends Error {
  constructor(
    readonly configPath: string,
    readonly errors: readonly GraphQLError[],
    /** The files the failed composition read, still worth watching for the fix. */
    readonly files: readonly string[],
  ) {
    const details = errors.map((e) => formatCompositionError(e, { relativeTo: process.cwd() })).join('\n');
    super(`${configPath} does not compose (${errors.length} error${errors.length === 1 ? '' : 's'}):\n${details}`);
    this.name = 'CompositionFailedError';
  }
}

/** The `extensions.validationErrorCode` of an introspection query refused by a gateway with introspection off. */
export const INTROSPECTION_DISABLED = 'INTROSPECTION_DISABLED';

/**
 * Refuses `__schema` and `__type` (`__typename` stays allowed). In place of Apollo's own rule,
 * whose message tells the operator to "pass introspection: true to ApolloServer": here the knob is
 * the gateway's `INTROSPECTION` setting. Apollo reports it with `GRAPHQL_VALIDATION_FAILED`.
 */
/**
 * A request whose `operationName` matches no operation in its document (or that names none in a
 * document with several) is the client's mistake: a coded 400, not the 500 that @apollo/gateway's
 * executor would produce when it meets it later.
 */
const operationResolution: ApolloServerPlugin<GatewayContext> = {
  async requestDidStart() {
    return {
      async didResolveOperation({ operation, request, document }) {
        if (operation) return;
        const count = document.definitions.filter((d) => d.kind === 'OperationDefinition').length;
        const message = request.operationName
          ? `Unknown operation named "${request.operationName}".`
          : `The document has ${count} operations; name the one to run with operationName.`;
        throw new GraphQLError(message, { extensions: { code: 'OPERATION_RESOLUTION_FAILURE', http: { status: 400 } } });
      },
    };
  },
};

/**
 * `__schema` and `__type` only directly in an operation's own selection: @apollo/gateway's query
 * planner cannot plan them inside a fragment (named or inline) and fails with a 500 ("Was not able
 * to find any options for __type"), found by the property test. A coded validation error instead.
 */
const introspectionAtRoot: ValidationRule = (context) => ({
  Field(node, _key, _parent, _path, ancestors) {
    if (node.name.value !== '__schema' && node.name.value !== '__type') return;
    // Above a field: its selection set, then what holds that (an operation, for a root field).
    const holder = ancestors[ancestors.length - 2];
    if (holder && !Array.isArray(holder) && (holder as { kind?: string }).kind === 'OperationDefinition') return;
    context.reportError(
      new GraphQLError(`${node.name.value} must be selected directly in the operation, not inside a fragment.`, {
        nodes: [node],
        extensions: { validationErrorCode: 'INTROSPECTION_IN_FRAGMENT' },
      }),
    );
  },
});

const noIntrospection: ValidationRule = (context) => ({
  Field(node) {
    if (node.name.value !== '__schema' && node.name.value !== '__type') return;
    context.reportError(
      new GraphQLError(
        `Introspection is disabled on this gateway, and the operation asks for ${node.name.value}. Set INTROSPECTION=true to enable it.`,
        { nodes: [node], extensions: { validationErrorCode: INTROSPECTION_DISABLED } },
      ),
    );
  },
});

export { SUBGRAPH_UNAVAILABLE } from './fetch';
export { COST_ESTIMATED_TOO_EXPENSIVE, type CostMode, defaultMaxCost } from '@shop/server';

const normaliseName = (name: string) => name.toUpperCase().replace(/[^A-Z0-9]/g, '_');

interface LoadedSupergraph {
  supergraphSdl: string;
  /** Files to watch for the next version. */
  files: string[];
}

/** The largest supergraph a `{ url }` source may send: past it the fetch fails and the old one keeps serving. */
export const MAX_SUPERGRAPH_BYTES = 20 * 1024 * 1024;

/**
 * A supergraph published at a URL: a GET with the last ETag (and Last-Modified) it saw, so an
 * unchanged one is a 304 and answers the text it had. Anything but 200 or 304, a body over
 * {@link MAX_SUPERGRAPH_BYTES} or no answer within `timeoutMs` is an error, and the caller
 * keeps what it serves.
 */
class SupergraphUrl {
  private etag: string | undefined;
  private lastModified: string | undefined;
  private text: string | undefined;

  constructor(
    readonly url: string,
    private readonly timeoutMs: number,
  ) {}

  async fetch(): Promise<string> {
    const headers: Record<string, string> = { accept: 'text/plain, application/graphql, */*' };
    if (this.text !== undefined && this.etag) headers['if-none-match'] = this.etag;
    if (this.text !== undefined && this.lastModified) headers['if-modified-since'] = this.lastModified;
    const res = await fetch(this.url, { headers, signal: AbortSignal.timeout(this.timeoutMs), redirect: 'error' }).catch((err: unknown) => {
      throw new SupergraphConfigError(`Cannot fetch supergraph ${this.url}: ${(err as Error).message}`);
    });
    if (res.status === 304 && this.text !== undefined) {
      await res.body?.cancel();
      return this.text;
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new SupergraphConfigError(`Cannot fetch supergraph ${this.url}: HTTP ${res.status}`);
    }
    const declared = Number(res.headers.get('content-length') ?? 0);
    if (declared > MAX_SUPERGRAPH_BYTES) {
      await res.body?.cancel();
      throw new SupergraphConfigError(`Supergraph ${this.url} is ${declared} bytes, over the ${MAX_SUPERGRAPH_BYTES}-byte limit`);
    }
    const text = await readLimited(res, MAX_SUPERGRAPH_BYTES).catch((err: unknown) => {
      throw new SupergraphConfigError(`Cannot fetch supergraph ${this.url}: ${(err as Error).message}`);
    });
    this.etag = res.headers.get('etag') ?? undefined;
    this.lastModified = res.headers.get('last-modified') ?? undefined;
    this.text = text;
    return text;
  }
}

/** A response body as text, failing once it passes `limit` bytes (a body without Content-Length is counted as it comes). */
async function readLimited(res: Response, limit: number): Promise<string> {
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > limit) throw new Error(`the body passed the ${limit}-byte limit`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function loadSupergraph(
  source: SupergraphSource,
  logger: Logger,
  timeoutMs: number,
  /** The `{ url }` source's fetcher, which keeps its ETag between loads. */
  remote: SupergraphUrl | undefined,
): Promise<LoadedSupergraph> {
  if ('sdl' in source) return { supergraphSdl: source.sdl, files: [] };
  if ('url' in source) {
    if (!remote) throw new Error(`no fetcher for the supergraph at ${source.url}`);
    return { supergraphSdl: await remote.fetch(), files: [] };
  }
  if ('path' in source) {
    const file = path.resolve(source.path);
    return { supergraphSdl: await readSupergraphFile(file), files: [file] };
  }
  const configPath = path.resolve(source.configPath);
  const result = await composeFromConfig(configPath, { fetchTimeoutMs: timeoutMs });
  for (const warning of result.warnings) logger.warn({ configPath }, warning);
  if (result.errors) throw new CompositionFailedError(configPath, result.errors, result.files);
  logger.info({ configPath, subgraphs: result.subgraphs.map((s) => s.name), hints: result.hints.length }, 'supergraph composed');
  return { supergraphSdl: result.supergraphSdl, files: result.files };
}

/**
 * Watches files through their directories rather than the files themselves: editors and
 * `rename`-style atomic writes replace the inode, which a watch on the file would lose.
 */
class FileWatcher {
  private readonly watchers = new Map<string, FSWatcher>();
  private files = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly debounceMs: number,
    private readonly onChange: () => void,
    private readonly logger: Logger,
  ) {}

  setFiles(files: readonly string[]): void {
    if (this.closed) return;
    this.files = new Set(files.map((f) => path.resolve(f)));
    const dirs = new Set([...this.files].map((f) => path.dirname(f)));
    for (const [dir, watcher] of this.watchers) {
      if (!dirs.has(dir)) {
        watcher.close();
        this.watchers.delete(dir);
      }
    }
    for (const dir of dirs) {
      if (this.watchers.has(dir)) continue;
      try {
        // Not persistent: the HTTP server keeps the process alive, a watcher should not.
        const watcher = watch(dir, { persistent: false }, (_event, filename) => {
          // `..data` is the symlink Kubernetes swaps when a mounted ConfigMap changes.
          if (filename === null || filename === '..data' || this.files.has(path.join(dir, filename))) this.schedule();
        });
        watcher.on('error', (err) => this.logger.warn({ err, dir }, 'supergraph watcher failed; reloads from this directory stop'));
        this.watchers.set(dir, watcher);
      } catch (err) {
        this.logger.warn({ err, dir }, 'cannot watch directory; the supergraph will not reload from it');
      }
    }
  }

  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(this.onChange, this.debounceMs);
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
  }
}

function reloadCounter(registry: Registry): Counter<'result'> {
  return sharedCounter(
    registry,
    'gateway_supergraph_reloads_total',
    'Supergraph reloads after a file change or a poll that found a new one, by result (success or failure; a failure keeps the old supergraph)',
    ['result'],
  );
}

/** `gateway_supergraph_info{sha256}`: 1 for the supergraph this gateway serves (the first 16 hex digits of its SHA-256), so replicas can be compared. */
function supergraphInfo(registry: Registry): Gauge<'sha256'> {
  const existing = registry.getSingleMetric('gateway_supergraph_info');
  if (existing) return existing as Gauge<'sha256'>;
  return new Gauge({
    name: 'gateway_supergraph_info',
    help: 'The supergraph this gateway serves: 1, labelled with the first 16 hex digits of its SHA-256',
    labelNames: ['sha256'],
    registers: [registry],
  });
}

/** The label `gateway_supergraph_info` gives a supergraph. */
export const supergraphSha = (sdl: string): string => createHash('sha256').update(sdl).digest('hex').slice(0, 16);

/**
 * Builds the gateway: Apollo Gateway planning over any valid supergraph, on Apollo Server, behind
 * the platform's HTTP front (`/health`, `/ready`, `/metrics`, `/graphql`). Resolves once the first
 * supergraph is loaded; rejects if it cannot be read, composed or validated. Reads no
 * environment and opens no port: `index.ts` does that, tests call `listen(0)`.
 */
export async function createGateway(options: GatewayOptions): Promise<Gateway> {
  const { telemetry } = options;
  const logger = telemetry.logger;
  const timeoutMs = options.subgraphTimeoutMs ?? 10_000;
  const subgraphTimeouts = new Map(Object.entries(options.subgraphTimeouts ?? {}).map(([name, ms]) => [normaliseName(name), ms]));
  const breaker = options.breaker === false ? undefined : { ...defaultBreakerOptions, ...options.breaker };
  const retry = options.retry === false ? undefined : { ...defaultRetryOptions, ...options.retry };
  const rateLimit = options.rateLimit ?? defaultRateLimit;
  const debounceMs = options.watchDebounceMs ?? 100;
  const source = options.supergraph;
  const shouldWatch = (options.watch ?? true) && !('sdl' in source) && !('url' in source);
  const pollIntervalMs = 'sdl' in source ? 0 : (options.pollIntervalMs ?? ('url' in source ? 10_000 : 0));
  const remote = 'url' in source ? new SupergraphUrl(source.url, timeoutMs) : undefined;
  const info = supergraphInfo(telemetry.registry);
  const serving = (sdl: string) => {
    info.reset();
    info.set({ sha256: supergraphSha(sdl) }, 1);
  };
  const reloads = reloadCounter(telemetry.registry);
  const overrides = new Map(Object.entries(options.subgraphUrlOverrides ?? {}).map(([name, url]) => [normaliseName(name), url]));
  const introspection = options.introspection ?? true;
  // Built before Apollo starts: a missing asset or operations folder fails start-up with nothing to undo.
  const explorerOption = options.explorer ?? true;
  const explorer = explorerOption === false ? undefined : await createExplorer(explorerOption === true ? {} : explorerOption);
  // Also before Apollo: a missing or invalid manifest fails start-up.
  const trustedDocuments = await createTrustedDocuments<GatewayContext>(options.trustedDocuments, {
    registry: telemetry.registry,
    logger,
    alsoTrusted: explorer?.operations.map((o) => o.query) ?? [],
  });

  let current = '';
  let closed = false;
  let watcher: FileWatcher | undefined;

  /** The last supergraph `update` refused. */
  let rejected: string | undefined;
  const load = async (): Promise<LoadedSupergraph> => {
    const loaded = await loadSupergraph(source, logger, timeoutMs, remote);
    // Serving it would ignore who may see what: refused, as @apollo/gateway refuses security features it does not know.
    if (options.authorization === false && linksAuthDirectives(loaded.supergraphSdl)) {
      throw new Error(
        'The supergraph uses @authenticated, @requiresScopes or @policy, and this gateway was built with authorization off; it would serve those fields to anyone.',
      );
    }
    return loaded;
  };
  /**
   * The first supergraph. A registry (`{ url }`) may be briefly away while a replica starts (it is
   * one more service to restart): asked again with a growing pause for `startupTimeoutMs` before
   * the gateway gives up. A file or a supergraph.yaml that does not load fails at once.
   */
  const loadAtStart = async (): Promise<LoadedSupergraph> => {
    const until = Date.now() + (options.supergraphStartupTimeoutMs ?? 30_000);
    for (let attempt = 1; ; attempt++) {
      try {
        return await load();
      } catch (err) {
        if (!('url' in source) || Date.now() >= until) throw err;
        const pauseMs = Math.min(4000, 250 * 2 ** (attempt - 1), Math.max(0, until - Date.now()));
        logger.warn({ err: loggable(err), attempt, retryInMs: pauseMs }, 'supergraph registry not answering; asking again');
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
      }
    }
  };
  const supergraphSdl: SupergraphSdlHook = async ({ update }) => {
    const first = await loadAtStart();
    current = first.supergraphSdl;
    serving(current);
    if (!shouldWatch && pollIntervalMs === 0) return { supergraphSdl: first.supergraphSdl };

    // One reload at a time; events that arrive meanwhile fold into one more pass.
    let running = false;
    let again = false;
    const reload = async () => {
      if (running) {
        again = true;
        return;
      }
      running = true;
      try {
        do {
          again = false;
          await reloadOnce();
        } while (again && !closed);
      } finally {
        running = false;
      }
    };
    const reloadOnce = async () => {
      let next: LoadedSupergraph;
      try {
        next = await load();
      } catch (err) {
        if (err instanceof CompositionFailedError) watcher?.setFiles(err.files);
        if (closed) return;
        reloads.inc({ result: 'failure' });
        logger.error({ err: loggable(err) }, 'supergraph reload failed; still serving the previous supergraph');
        return;
      }
      watcher?.setFiles(next.files);
      // One that was rejected is not validated again at every poll (a 304 hands the same text back).
      if (closed || next.supergraphSdl === current || next.supergraphSdl === rejected) return;
      try {
        // Apollo Gateway validates the new supergraph before swapping; if it throws, nothing
        // changed. Operations already executing finish on the plan they started with.
        update(next.supergraphSdl);
        current = next.supergraphSdl;
        rejected = undefined;
        serving(current);
        reloads.inc({ result: 'success' });
        logger.info({ sha256: supergraphSha(current) }, 'supergraph reloaded');
      } catch (err) {
        rejected = next.supergraphSdl;
        reloads.inc({ result: 'failure' });
        logger.error(
          { err: loggable(err), sha256: supergraphSha(rejected) },
          'new supergraph rejected; still serving the previous supergraph',
        );
      }
    };

    if (shouldWatch) {
      watcher = new FileWatcher(debounceMs, () => void reload(), logger);
      watcher.setFiles(first.files);
    }
    // Each poll waits for the last (a slow registry is not asked twice at once); jittered by up to
    // a tenth, so replicas started together do not ask together for ever.
    let poller: NodeJS.Timeout | undefined;
    const poll = () => {
      poller = setTimeout(
        () => {
          void reload().finally(() => {
            if (!closed) poll();
          });
        },
        pollIntervalMs * (0.9 + Math.random() / 10),
      );
      poller.unref();
    };
    if (pollIntervalMs > 0) poll();
    return {
      supergraphSdl: first.supergraphSdl,
      cleanup: async () => {
        closed = true;
        clearTimeout(poller);
        watcher?.close();
      },
    };
  };

  const layers: FetchLayers = { ...allLayersOn, ...options.layers };
  const transport = createTransport({ timeoutMs, maxResponseBytes: options.maxResponseBytes });
  const cacheStore = options.cacheStore;
  const entityCacheOption = options.entityCache ?? true;
  const entityCache =
    cacheStore && entityCacheOption !== false
      ? new EntityCache({
          cache: cacheStore.cache('entity'),
          metrics: telemetry.metrics,
          ttlByType: entityCacheOption === true ? {} : (entityCacheOption.ttlByType ?? {}),
        })
      : undefined;
  const useResponseCache = Boolean(cacheStore) && (options.responseCache ?? true);
  // Entity generations (the entity cache's and the response cache's): every invalidation, after a
  // mutation through any replica or on an event, bumps the generations of the entities it names.
  const generations = entityCache?.generations ?? (cacheStore ? new Generations(cacheStore.cache('entity')) : undefined);
  // Invalidations this process has made: in-flight sharing never joins a request across one.
  let writes = 0;
  /** Retires what these subgraphs' entity caches hold and every entry recording these identities. */
  const retire = async (subgraphs: Iterable<string>, identities: readonly string[]) => {
    writes++;
    const done: Array<Promise<void>> = entityCache ? [...subgraphs].map((name) => entityCache.evictSubgraph(name)) : [];
    if (generations) done.push(generations.bump(identities));
    await Promise.all(done);
  };
  const invalidate = async (entities: ReadonlyArray<{ typename: string; id: unknown }>) => {
    // A mutation naming no entity changed none (every Mutation field declares what it changes):
    // nothing to retire, and no reason to hold back responses being made meanwhile.
    if (entities.length === 0) return;
    const everything = entities.some((e) => e.typename === EVERYTHING_CHANGED.typename);
    await retire(
      everything ? subgraphNames : [],
      entities.map((e) => (e.typename === EVERYTHING_CHANGED.typename ? EVERYTHING : entityIdentity(e.typename, e.id))),
    );
  };
  /** The subgraphs of the supergraph (as @apollo/gateway builds their data sources). */
  const subgraphNames = new Set<string>();

  // @apollo/gateway 2.14 otherwise exports its own usage telemetry to Apollo and probes cloud
  // metadata servers at construction. This platform sends nothing off the machine, and the
  // library reads only this variable, so it is set here, before the gateway is built.
  process.env.APOLLO_TELEMETRY_DISABLED = 'true';
  const gateway = new ApolloGateway({
    supergraphSdl,
    logger,
    debug: options.debug ?? false,
    // Validate every supergraph, production included, so a bad one is refused before it serves.
    validateSupergraph: true,
    // The planner's default re-finds the client's named fragments in every subgraph query it
    // builds, which costs more the more fragments a document has (the hostile suite's chain of 200
    // fragments blew its CPU budget in planning). Subgraph documents get the selections written out
    // instead, and the answers are the same.
    queryPlannerConfig: { reuseQueryFragments: false },
    // Outside production, @apollo/gateway's executor hands its query plan to any client that sends
    // `Apollo-Query-Plan-Experimental`: the plan names every subgraph and what it is asked. Off for
    // both executors (ours never honours the header).
    __exposeQueryPlanExperimental: false,
    buildService: ({ name, url }) => {
      const routingUrl = overrides.get(normaliseName(name)) ?? url;
      if (!routingUrl) {
        throw new Error(`Subgraph "${name}" has no routing URL in the supergraph; set SUBGRAPH_${normaliseName(name)}_URL`);
      }
      logger.debug({ subgraph: name, url: routingUrl }, 'subgraph data source');
      subgraphNames.add(name);
      return new BatchingDataSource<GatewayContext>(name, routingUrl, {
        transport,
        metrics: telemetry.metrics,
        logger,
        layers,
        entityCache,
        onMutation: invalidate,
        timeoutMs: subgraphTimeouts.get(normaliseName(name)) ?? timeoutMs,
        breaker,
        retry,
        subgraphSecret: options.subgraphSecret,
        writes: () => writes,
      });
    },
  });

  shapePlans(gateway, { fold: options.foldFetches ?? true, levels: options.levelFetches ?? true }, (message) => logger.warn(message));

  // The supergraph's @cost/@listSize, refreshed on every (re)load; the API schema drops them.
  let costDirectives: CostDirectives = emptyCostDirectives();
  gateway.onSchemaLoadOrUpdate(({ coreSupergraphSdl }) => {
    try {
      costDirectives = costDirectivesOf(coreSupergraphSdl);
    } catch (err) {
      logger.error({ err }, 'cannot read the cost directives of the new supergraph; costing with defaults');
      costDirectives = emptyCostDirectives();
    }
  });
  const limits = { ...defaultDocumentLimits, ...options.limits };
  const costOption = options.cost ?? {};

  // One formatter for every error a client sees; suggestions describe the schema, so they go
  // whenever introspection does.
  const maskErrors = options.maskErrors ?? false;
  const errors = clientErrors<GatewayContext>(
    { maskErrors, hideSuggestions: maskErrors || !introspection },
    { logger, requestOf: ({ requestId, logger: requestLogger }) => ({ requestId, logger: requestLogger }) },
  );
  const authz = options.authorization === false ? undefined : authorization<GatewayContext>(options.authorization);
  const apollo = new ApolloServer<GatewayContext>({
    gateway: withPlanExecutor(gateway, {
      logger,
      debug: options.debug ?? false,
      executor: options.executor ?? 'own',
      exposeQueryPlan: options.exposeQueryPlan ?? false,
    }),
    // Our own CSRF rule in @shop/server's http.ts (refuseUnlessJson) replaces Apollo's, which
    // would also refuse plain GET queries.
    csrfPrevention: false,
    parseOptions: parseOptionsFor(limits),
    // Apollo's own rule is replaced by noIntrospection, whose message names the right setting.
    introspection: true,
    validationRules: [
      ...documentLimitRules(limits, { metrics: telemetry.metrics }),
      introspectionAtRoot,
      ...(introspection ? [] : [noIntrospection]),
    ],
    includeStacktraceInErrorResponses: options.debug ?? false,
    formatError: errors.formatError,
    // The process owner (index.ts, the embedded starter) handles signals and stops us in order.
    stopOnTerminationSignals: false,
    logger,
    // The explorer replaces Apollo's landing page, which would load Apollo Sandbox from a CDN.
    plugins: [
      // First: it may replace the request's document, and the plugins after it see the result.
      ...(trustedDocuments ? [trustedDocuments.plugin] : []),
      ApolloServerPluginLandingPageDisabled(),
      // graphql.parse and graphql.validate spans, the operation on the request's span (tracing on only).
      ...(tracingEnabled() ? [tracingPlugin<GatewayContext>()] : []),
      operationResolution,
      errors.plugin,
      // Before value completion (whose errors it must not race) and the response cache (which keys
      // on what it removed): it rewrites the document the gateway plans.
      ...(authz ? [authz.plugin] : []),
      // Every null that stands for a subgraph's data gets an error at its path. Before the
      // response cache: a response with such errors is not cached.
      ...(options.valueCompletion === false ? [] : [valueCompletionPlugin<GatewayContext>()]),
      // The subgraphs refuse hostile strings too; refusing them here spares the planning and the
      // subgraph round trip (a 1 MB argument cost 150 ms of gateway CPU on its way through).
      inputGuardPlugin<GatewayContext>(),
      ...(costOption === false
        ? []
        : [
            demandControlPlugin<GatewayContext>({
              maxCost: costOption.maxCost ?? defaultMaxCost,
              mode: costOption.mode ?? 'enforce',
              reportActual: costOption.reportActual ?? false,
              defaultListSize: costOption.defaultListSize ?? 10,
              directives: () => costDirectives,
              metrics: telemetry.metrics,
            }),
          ]),
      ...(useResponseCache && cacheStore && generations
        ? [
            // A request that asks for its plan runs it: never answered from the cache, never kept in it.
            unlessQueryPlanAsked(
              options.exposeQueryPlan ?? false,
              responseCachePlugin<GatewayContext>({
                cache: cacheStore.cache('response'),
                generations,
                rootTtl: options.responseCacheTtl ?? {},
                // A response with fields left out for this caller is not one for a caller who may see them.
                signatureOf: (request) => authz?.signatureOf(request) ?? '',
                maxAliases: subgraphDocumentLimits(limits).aliases,
                metrics: telemetry.metrics,
                logger,
              }),
            ),
          ]
        : []),
      ...(options.plugins ?? []),
    ],
    // APQ and the response cache share the entity cache's store (Redis or the in-memory LRU).
    ...(cacheStore ? { cache: apolloKeyValueCache(cacheStore.cache('apollo')) } : {}),
    // With trusted documents enforced, APQ registration would let any client add a document.
    ...(trustedDocuments?.mode === 'enforce' ? { persistedQueries: false as const } : {}),
  });
  try {
    await apollo.start();
  } catch (err) {
    closed = true;
    watcher?.close();
    throw err instanceof SupergraphConfigError || err instanceof CompositionFailedError
      ? err
      : new Error(`The gateway could not load its supergraph: ${(err as Error).message}`, { cause: err });
  }

  let evictions: Subscription | undefined;
  if (options.bus && cacheStore) {
    evictions = await subscribeEvictions(options.bus, options.evictOn ?? defaultEvictionEvents, invalidate);
  }

  /**
   * The hub of this replica's subscriptions, fed by a bus queue of its own (every replica hears
   * every event), the WebSocket and SSE fronts, and how they stop.
   */
  async function startSubscriptions(settings: Partial<HubLimits> & { keepAliveMs?: number }) {
    let topics: EventTopics = eventTopicsOf(current);
    const evictOn = new Set(options.evictOn ?? defaultEvictionEvents);
    const hub = new SubscriptionHub({
      apollo: apollo as unknown as ApolloServer<never>,
      logger,
      topics: () => topics,
      limits: settings,
      onMetrics: subscriptionMetrics(telemetry.registry),
      maxTokens: limits.tokens,
      contextFor: (subscriber, requestId, phase): GatewayContext => ({
        requestId,
        logger: subscriber.logger.child({ requestId }),
        // Each run has the budget of a request.
        deadline: Date.now() + requestTimeoutMs,
        identity: subscriber.identity,
        identityHeader: subscriber.identity ? encodeIdentity(subscriber.identity) : undefined,
        subscription: phase,
      }),
      // What the event changed is evicted first: the run must not read it from a cache.
      beforeDispatch: async (event) => {
        if (cacheStore && evictOn.has(event.type)) await invalidate(entitiesChangedBy(event));
      },
    });
    // A queue of this replica's own, named anew for each set of event types: a supergraph that
    // changes them gets a new queue before the old one goes (the two overlap, and the version
    // check drops what both deliver).
    const queueBase = `gateway.subscriptions.${hostname()
      .replace(/[^A-Za-z0-9._:-]/g, '-')
      .slice(0, 60)}.${process.pid}.${randomUUID().slice(0, 8)}`;
    let queues = 0;
    let feed: Subscription | undefined;
    let fedTypes = '';
    const feedFor = async () => {
      const types = [...topics.byType.keys()].sort();
      if (!options.bus || types.join('\0') === fedTypes) return;
      const previous = feed;
      feed =
        types.length === 0
          ? undefined
          : await options.bus.subscribe({
              group: `${queueBase}.${++queues}`,
              types,
              ephemeral: true,
              handler: (event) => hub.onEvent(event),
            });
      fedTypes = types.join('\0');
      await previous?.close();
    };
    await feedFor();
    gateway.onSchemaLoadOrUpdate(({ coreSupergraphSdl }) => {
      try {
        topics = eventTopicsOf(coreSupergraphSdl);
        feedFor().catch((err: unknown) => logger.error({ err }, 'could not subscribe to the new supergraph’s subscription events'));
      } catch (err) {
        logger.error({ err }, 'cannot read the @fromEvents directives of the new supergraph; keeping the previous ones');
      }
    });
    const verify = createVerifyAuthorization(options.auth ?? {});
    const ws = createWsFront({
      hub,
      logger,
      verify,
      rateLimiter,
      maxPayload: 1_000_000,
      maxTokens: limits.tokens,
      ...(settings.keepAliveMs !== undefined ? { keepAliveMs: settings.keepAliveMs } : {}),
      schema: () => undefined,
    });
    const sse = createSseFront({ hub, verify, bodyLimit: 1_000_000, maxTokens: limits.tokens });
    const front: StreamFront = {
      upgrade: (req, socket, head) => ws.upgrade(req, socket, head),
      eventStream: (req, res, info) => sse.eventStream(req, res, info),
      // Sockets first: a WebSocket closed with 1012 leaves its subscriptions uncompleted, so a
      // graphql-ws client reconnects (through the balancer, to another replica) and subscribes
      // again by itself. An SSE stream cannot be resumed: it ends with SHUTTING_DOWN, then complete.
      close: async () => {
        await ws.close();
        await hub.closeAll('The server is restarting; subscribe again.', SHUTTING_DOWN);
        sse.close();
      },
    };
    return {
      hub,
      front,
      stop: async () => {
        await feed?.close();
      },
    };
  }

  let stopped = false;
  const authenticate = createAuthenticate(options.auth ?? {});
  const requestTimeoutMs = options.requestTimeoutMs ?? 15_000;
  // One per-client budget for requests and for subscribe messages on an open WebSocket.
  const rateLimiter =
    rateLimit === false ? undefined : (cacheStore ?? openCacheStore({ telemetry })).rateLimiter({ name: 'gateway', ...rateLimit });
  const streams = options.subscriptions === false ? undefined : await startSubscriptions(options.subscriptions ?? {});
  const server = createHttpServer<GatewayContext>({
    telemetry,
    apollo,
    authenticate,
    context: async ({ requestId, logger: requestLogger, signal, deadline, identity }) => ({
      requestId,
      logger: requestLogger,
      signal,
      deadline,
      identity,
      identityHeader: identity ? encodeIdentity(identity) : undefined,
    }),
    responseLimit: options.maxResponseBytes,
    requestTimeoutMs,
    streams: streams?.front,
    admission: {
      loadShedding: options.loadShedding === false ? false : { ...defaultLoadShedding, ...options.loadShedding },
      rateLimiter,
    },
    // Ready means a supergraph is loaded (apollo.start resolved). Subgraphs being down is not
    // a reason to leave the rotation: the gateway still answers, with partial data and coded errors.
    ready: async () => !stopped,
    routes: { ...explorer?.routes, ...options.routes },
  });
  let runningServer: RunningServer | undefined;

  return {
    apollo,
    gateway,
    supergraphSdl: () => current,
    invalidate: (entities) => invalidate(entities),
    invalidateSubgraph: (subgraph) => retire([subgraph], [EVERYTHING]),
    subscriptions: () => streams?.hub.active ?? 0,
    async listen(port, host) {
      runningServer = await listen(server, port, host, { drainDelayMs: options.drainDelayMs ?? 0 });
      return runningServer;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await runningServer?.stop();
      await streams?.stop();
      await evictions?.close();
      await apollo.stop();
      await transport.close();
    },
  };
}

/** Errors whose message is the useful part (composition lists) are logged as that message. */
function loggable(err: unknown): unknown {
  if (err instanceof CompositionFailedError || err instanceof SupergraphConfigError) return { message: err.message };
  return err;
}
