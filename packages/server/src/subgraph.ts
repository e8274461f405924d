import { ApolloServer, type ApolloServerPlugin, type BaseContext } from '@apollo/server';
import { ApolloServerPluginCacheControl } from '@apollo/server/plugin/cacheControl';
import { ApolloServerPluginInlineTraceDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { buildSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper';
import type { DocumentNode } from 'graphql';
import type { Telemetry } from '@shop/telemetry';
import { tracingEnabled } from '@shop/tracing';
import { tracingPlugin } from './tracing-plugin';
import { type LoadSheddingOptions, defaultLoadShedding } from './admission';
import { type RequestInfo, type RouteHandler, type RunningServer, createHttpServer, listen } from './http';
import { CLIENT_SIGNAL, type ClientWait, abandonedRequestPlugin } from './abandon';
import { costDirectivesOf, defaultMaxCost, demandControlPlugin } from './cost';
import { type DocumentLimits, defaultDocumentLimits, documentLimitRules, parseOptionsFor } from './limits';
import { type RequestTag, clientErrors } from './client-errors';
import { type InputLimits, inputGuardPlugin } from './input-guard';
import { CHANGED, type Invalidation, declaresChanges, undeclaredMutations } from './changes';
import { PARTIAL, partialErrorsPlugin } from './partial';

export interface SubgraphOptions<TContext extends BaseContext> {
  telemetry: Telemetry;
  typeDefs: DocumentNode;
  // The generated resolver types are structurally narrower than Apollo's map; accept both.
  resolvers: object;
  /** Builds the per-request context: DataLoaders are created here, one set per request. */
  context: (info: RequestInfo) => Promise<TContext>;
  /** Dependencies reachable (the store, the cache, the broker). */
  ready: () => Promise<boolean>;
  /** Released on stop, after the HTTP server has drained. */
  close?: () => Promise<void>;
  /** Show stack traces in errors. @default false */
  debug?: boolean;
  plugins?: ApolloServerPlugin<TContext>[];
  /**
   * The client-facing document limits (the gateway's `MAX_QUERY_*`); the subgraph applies them
   * with the headroom of {@link subgraphDocumentLimits}. @default defaultDocumentLimits
   */
  limits?: Partial<DocumentLimits>;
  /** `MAX_RESPONSE_BYTES`: a bigger response is replaced by a `RESPONSE_TOO_LARGE` error. @default 5_000_000 */
  maxResponseBytes?: number;
  /**
   * Refuse new requests with 503 OVERLOADED while the event loop lags or too many are in flight, so
   * the gateway's breaker sees a sick subgraph at once rather than after its timeout. No rate
   * limit: the gateway is a subgraph's only client. `false`: none. @default defaultLoadShedding
   */
  loadShedding?: Partial<LoadSheddingOptions> | false | undefined;
  /**
   * Demand control on this subgraph's own documents (`@cost`/`@listSize` of its SDL), per fetch
   * and per `_entities` representation: called directly it refuses what the gateway would refuse.
   * `false` turns it off. @default { maxCost: defaultMaxCost, defaultListSize: 10 }
   */
  cost?: false | Partial<{ maxCost: number; defaultListSize: number }>;
  /**
   * Production error rules (see `clientErrors`): an error without a client code reaches the client
   * as INTERNAL_SERVER_ERROR with the request id, the original is logged. @default false
   */
  maskErrors?: boolean;
  /**
   * Strings checked before any resolver runs: NUL characters, over-long strings and IDs are
   * BAD_USER_INPUT (see `inputGuardPlugin`); `false` turns the check off. @default defaultInputLimits
   */
  inputLimits?: Partial<InputLimits> | false;
  /**
   * Refuse to start unless every Mutation field's resolver comes from `declareChanges`. @default
   * true when any of them does (the shop's subgraphs), false otherwise (fixtures without entities)
   */
  requireDeclaredChanges?: boolean;
  /** Extra HTTP routes by path, served beside `/graphql` (accounts' `/.well-known/jwks.json`). */
  routes?: Record<string, RouteHandler> | undefined;
  /**
   * `SUBGRAPH_SECRET`: answer only requests the gateway signed with it (see `gatewaySecret` of
   * the HTTP front); `listen` may also be given it. @default none: every caller is answered, as anonymous
   */
  gatewaySecret?: string | undefined;
}

/** How a subgraph is reached, besides its port and host. */
export interface ListenOptions {
  /** `SUBGRAPH_SECRET`, over `SubgraphOptions.gatewaySecret`: only requests the gateway signed are answered. */
  gatewaySecret?: string | undefined;
  /**
   * `SUBGRAPH_ALLOW_UNSIGNED` (benchmarks only): with a secret, unsigned requests are answered as
   * anonymous while signed ones are checked and carry their identity (see the HTTP front's
   * `allowUnsigned`). @default false
   */
  allowUnsigned?: boolean | undefined;
  /** `DRAIN_DELAY_MS`: on `stop()`, `/ready` says `draining` this long while requests are still served. @default 0 */
  drainDelayMs?: number | undefined;
}

/**
 * A subgraph's own document limits, from the client-facing ones: the documents the gateway's
 * planner sends are the client's plus an `_entities` level and inline fragments, with the
 * client's named fragments expanded, so they may be deeper and longer than what the client sent.
 * Called directly, a subgraph still refuses anything far outside what the gateway would send.
 */
export function subgraphDocumentLimits(client: DocumentLimits): DocumentLimits {
  return {
    depth: client.depth + 2,
    aliases: client.aliases * 2,
    directives: client.directives * 2,
    tokens: client.tokens * 5,
    fields: client.fields * 5,
  };
}

/** Where a subgraph's context keeps the id and logger of the request it was built for. */
const REQUEST_TAG = Symbol('requestTag');

/**
 * Sends the entities this request's mutations declared (see `declareChanges`) in the response's
 * `extensions.invalidate` (an empty list for a mutation that changed none), where the gateway's
 * caches read them after a mutation. Declared from the
 * domain result, not read from the response, so a selection without `id` still evicts.
 */
const invalidationPlugin: ApolloServerPlugin<BaseContext> = {
  async requestDidStart() {
    return {
      async willSendResponse({ contextValue, response, operation }) {
        if (response.body.kind !== 'single') return;
        const result = response.body.singleResult;
        const list = (contextValue as { [CHANGED]?: Invalidation[] })[CHANGED] ?? [];
        // A mutation sends its list even when empty: "changed nothing" is not "did not say".
        if (list.length === 0 && operation?.operation !== 'mutation') return;
        // One entry per entity: a mutation that names one twice evicts it once.
        const unique = [...new Map(list.map((e) => [`${e.__typename}:${e.id}`, e])).values()];
        result.extensions = { ...result.extensions, invalidate: unique };
      },
    };
  },
};

/** A subgraph that is built but not listening: tests start it on port 0, `index.ts` on its contract port. */
export interface Subgraph {
  readonly name: string;
  listen(port: number, host?: string, options?: ListenOptions): Promise<RunningServer>;
  /** Drains in-flight requests, stops Apollo, then releases the service's resources. */
  stop(): Promise<void>;
}

/** Builds a subgraph server from its SDL and resolvers: Apollo Server, federation schema, HTTP front. */
export async function createSubgraph<TContext extends BaseContext>(options: SubgraphOptions<TContext>): Promise<Subgraph> {
  const { telemetry } = options;
  const schema = buildSubgraphSchema({
    typeDefs: options.typeDefs,
    resolvers: options.resolvers as GraphQLResolverMap<unknown>,
  });
  // A subgraph that declares its mutations' changes must declare every one: an undeclared
  // mutation would evict nothing, and the next read through the gateway would be stale.
  if (options.requireDeclaredChanges ?? declaresChanges(schema, options.resolvers)) {
    const missing = undeclaredMutations(schema, options.resolvers);
    if (missing.length > 0) {
      throw new Error(
        `${telemetry.service}: ${missing.map((f) => `Mutation.${f}`).join(', ')} must declare the entities it changes (declareChanges in @shop/server)`,
      );
    }
  }
  const limits = subgraphDocumentLimits({ ...defaultDocumentLimits, ...options.limits });
  const costDirectives = costDirectivesOf(options.typeDefs);
  // Contexts are the services' own shapes: the request each was built for rides along under a
  // symbol, so errors are logged with that request's logger and masked ones carry its id. A
  // symbol property, not a WeakMap keyed by the context: Apollo clones the context per operation
  // (Object.assign), which copies the property but not the identity.
  const context = async (info: RequestInfo): Promise<TContext> => {
    const value = await options.context(info);
    return Object.assign(value, {
      [REQUEST_TAG]: { requestId: info.requestId, logger: info.logger } satisfies RequestTag,
      // The entities this request's mutations declare they changed (see declareChanges).
      [CHANGED]: [] as Invalidation[],
      // Errors of fields that answered with part of their data (see reportPartial); shared, like CHANGED, by Apollo's clone.
      [PARTIAL]: [] as unknown[],
      // Resolving stops when the gateway has gone or has stopped waiting (its x-request-timeout-ms).
      [CLIENT_SIGNAL]: { signal: info.signal, deadline: info.deadline } satisfies ClientWait,
    });
  };
  const errors = clientErrors<TContext>(
    { maskErrors: options.maskErrors ?? false },
    { logger: telemetry.logger, requestOf: (value) => (value as { [REQUEST_TAG]?: RequestTag })[REQUEST_TAG] },
  );
  const apollo = new ApolloServer<TContext>({
    schema,
    // Our own CSRF rule in http.ts (refuseUnlessJson) replaces Apollo's, which would also
    // refuse plain GET queries.
    csrfPrevention: false,
    validationRules: documentLimitRules(limits, { metrics: telemetry.metrics, service: telemetry.service }),
    parseOptions: parseOptionsFor(limits),
    includeStacktraceInErrorResponses: options.debug ?? false,
    formatError: errors.formatError,
    // The process owner (runSubgraph's runMain, the embedded starter) handles signals and stops us
    // in order: first the drain (DRAIN_DELAY_MS, in-flight requests), then Apollo. Apollo's own
    // handlers (on whenever NODE_ENV is not `test`) stopped it at once and raised the signal
    // again, which runMain took for a second signal and exited: no drain at all.
    stopOnTerminationSignals: false,
    // Subgraphs sit behind the gateway: it introspects nothing, but `_service { sdl }` must answer.
    introspection: true,
    // The gateway forwards subgraph cache hints to its response cache.
    plugins: [
      ApolloServerPluginCacheControl({ calculateHttpHeaders: true }),
      ApolloServerPluginLandingPageDisabled(),
      // Inline traces (ftv1) only serve Apollo's hosted usage reporting, which we do not use.
      ApolloServerPluginInlineTraceDisabled(),
      invalidationPlugin,
      ...(tracingEnabled() ? [tracingPlugin<TContext>()] : []),
      partialErrorsPlugin,
      abandonedRequestPlugin<TContext>(),
      ...(options.cost === false
        ? []
        : [
            demandControlPlugin<TContext>({
              maxCost: options.cost?.maxCost ?? defaultMaxCost,
              mode: 'enforce',
              reportActual: false,
              report: false,
              perRepresentation: true,
              defaultListSize: options.cost?.defaultListSize ?? 10,
              directives: () => costDirectives,
              metrics: telemetry.metrics,
            }),
          ]),
      errors.plugin,
      // Hostile strings are refused before execution: no resolver, so no store, sees them.
      ...(options.inputLimits === false ? [] : [inputGuardPlugin<TContext>(options.inputLimits)]),
      ...(options.plugins ?? []),
    ],
    logger: telemetry.logger,
  });
  await apollo.start();
  // Built when it listens: who may call it (the gateway's secret) is decided with where it listens.
  const serverFor = (gatewaySecret: string | undefined, allowUnsigned: boolean | undefined) =>
    createHttpServer({
      telemetry,
      apollo,
      context,
      ready: options.ready,
      routes: options.routes,
      responseLimit: options.maxResponseBytes,
      admission: { loadShedding: options.loadShedding === false ? false : { ...defaultLoadShedding, ...options.loadShedding } },
      gatewaySecret,
      allowUnsigned,
    });
  let running: RunningServer | undefined;
  let stopped = false;
  return {
    name: telemetry.service,
    async listen(port, host, listenOptions) {
      if (running) throw new Error(`${telemetry.service} is listening already`);
      running = await listen(serverFor(listenOptions?.gatewaySecret ?? options.gatewaySecret, listenOptions?.allowUnsigned), port, host, {
        drainDelayMs: listenOptions?.drainDelayMs ?? 0,
      });
      telemetry.logger.info({ url: `${running.url}/graphql` }, 'subgraph listening');
      return running;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await running?.stop();
      await apollo.stop();
      await options.close?.();
    },
  };
}
