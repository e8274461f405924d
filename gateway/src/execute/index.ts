// The gateway's own executor of Apollo's query plans (`PLAN_EXECUTOR=own`, the default).
//
// Apollo Server asks its gateway for an executor at load time; this wrapper hands it ours and
// keeps everything else (the supergraph, its reloads, the data sources, the planner and its plan
// cache) @apollo/gateway's. Per request, @apollo/gateway's executor rebuilds a federation-internals
// `Operation` from the document (twice on a plan-cache miss, once on a hit), hashes the query for
// its plan cache, and shapes the result by walking that `Operation`; here the plan and a compiled
// shaper (`shape.ts`) are kept per parsed document, and the plan runs in `run-plan.ts`.
// The federation suite runs every case through both executors and requires the same responses.
// A request that asks for its plan (`expose.ts`) gets it in `extensions`, on either executor, and
// on ours the timing of every subgraph call too.
import { createHash } from 'node:crypto';
import type { ApolloGateway, GraphQLDataSource } from '@apollo/gateway';
import { OpenTelemetrySpanNames, tracer } from '@apollo/gateway/dist/utilities/opentelemetry';
import { operationFromDocument, type Operation, type Schema } from '@apollo/federation-internals';
import { type PlanNode, type QueryPlan, prettyFormatQueryPlan } from '@apollo/query-planner';
import { repeatedSelections } from '../fetch/request-memo';
import { withoutOperationName } from '../fetch/layer';
import type {
  GatewayExecutionResult,
  GatewayExecutor,
  GatewayGraphQLRequestContext,
  GatewayInterface,
} from '@apollo/server-gateway-interface';
import { type DocumentNode, type GraphQLSchema, GraphQLError } from 'graphql';
import { getVariableValues } from 'graphql/execution/values';
import type { Logger } from '@shop/telemetry';
import { type FetchTimings, type PlanRun, executeNode } from './run-plan';
import { OperationShaper } from './shape';
import { type FetchTiming, type QueryPlanExtension, asksForQueryPlan, exposedPlan } from './expose';

export { QUERY_PLAN_HEADER, type FetchTiming, type PlanTreeNode, type QueryPlanExtension, unlessQueryPlanAsked } from './expose';

/**
 * What a subscription operation is run for (`GatewayContext.subscription`): the check when a
 * client subscribes (the owner's root field only: it authorizes the subscriber and the object
 * exists), or one bus event (the root field for that event, then every other subgraph's fields).
 */
export type SubscriptionPhase = { phase: 'check' } | { phase: 'event'; event: SubscriptionEventFields };

/** The event's fields a subscription's owner is sent (a bus envelope's, see @shop/server's SubscriptionEvent). */
export interface SubscriptionEventFields {
  id: string;
  type: string;
  aggregateId: string;
  aggregateVersion: number;
  payload: Record<string, unknown>;
}

/** A subscription sent as a plain HTTP request: it needs a stream to answer on. */
export const SUBSCRIPTION_TRANSPORT_REQUIRED = 'SUBSCRIPTION_TRANSPORT_REQUIRED';

/** Which executor runs the plans: ours, or @apollo/gateway's own (`PLAN_EXECUTOR`). */
export type PlanExecutor = 'own' | 'apollo';

/** The members of @apollo/gateway 2.14's ApolloGateway the executor reads (private there; checked at load). */
interface GatewayInternals {
  apiSchema?: Schema;
  supergraphSchema?: GraphQLSchema;
  queryPlanner?: { buildQueryPlan(operation: Operation, options: Record<string, boolean>): QueryPlan };
  queryPlanStore?: { get(key: string): Promise<QueryPlan | undefined>; set(key: string, plan: QueryPlan): Promise<void> };
  serviceMap?: Record<string, { dataSource: GraphQLDataSource }>;
  recursiveSelectionsLimitDisabled?: boolean;
  nonLocalSelectionsLimitDisabled?: boolean;
}

/** What a document's operation needs at every request: its plan and its shaper. */
interface Prepared {
  plan: QueryPlan;
  shaper: OperationShaper;
  /** The request memo's only candidates: entity selections more than one fetch node asks for. */
  repeated: ReadonlySet<string>;
}

/** The `_entities` selections (documents without operation names) that two or more fetch nodes of `node` ask for. */
function repeatedEntitySelections(node: PlanNode | undefined): Set<string> {
  const seen = new Set<string>();
  const repeated = new Set<string>();
  const visit = (n: PlanNode | undefined): void => {
    if (!n) return;
    switch (n.kind) {
      case 'Fetch': {
        if (!n.requires) return;
        const selection = withoutOperationName(n.operation);
        if (seen.has(selection)) repeated.add(selection);
        seen.add(selection);
        return;
      }
      case 'Sequence':
      case 'Parallel':
        for (const child of n.nodes) visit(child);
        return;
      case 'Flatten':
        visit(n.node);
        return;
      case 'Condition':
        visit(n.ifClause);
        visit(n.elseClause);
        return;
      case 'Defer':
        visit(n.primary.node);
        for (const deferred of n.deferred) visit(deferred.node);
        return;
    }
  };
  visit(node);
  return repeated;
}

interface Options {
  logger: Logger;
  /** Each new plan logged at debug level (the gateway's `debug`). */
  debug: boolean;
  /** Which executor runs the plans. */
  executor: PlanExecutor;
  /** Hand a request that asks for it its plan (and, on ours, its fetch timings) in `extensions`. */
  exposeQueryPlan: boolean;
}

/** The milliseconds between two `performance.now()` readings, to the microsecond. */
const ms = (from: number, to: number) => Math.round((to - from) * 1000) / 1000;

/**
 * The gateway Apollo Server is given: a wrapper that runs the plans on ours ({@link PlanExecutor}
 * `own`) or on Apollo's, runs every subscription on ours (Apollo's has none), and exposes plans
 * to the requests that ask. When the members our executor needs are not where
 * @apollo/gateway 2.14 keeps them (another version), it says so once and lets Apollo's executor run.
 */
export function withPlanExecutor(gateway: ApolloGateway, options: Options): GatewayInterface {
  const internals = gateway as unknown as GatewayInternals;
  // Per API schema (a reload plans again) and parsed document (Apollo Server keeps one per query text).
  const prepared = new WeakMap<GraphQLSchema, WeakMap<DocumentNode, Map<string, Prepared>>>();

  const prepare = async (requestContext: GatewayGraphQLRequestContext): Promise<Prepared> => {
    const { schema, document, request } = requestContext;
    let byDocument = prepared.get(schema);
    if (!byDocument) {
      byDocument = new WeakMap();
      prepared.set(schema, byDocument);
    }
    let byName = byDocument.get(document);
    if (!byName) {
      byName = new Map();
      byDocument.set(document, byName);
    }
    const name = request.operationName ?? '';
    const known = byName.get(name);
    if (known) return known;
    const plan = await planFor(requestContext);
    const root = plan.node?.kind === 'Subscription' ? plan.node.rest : plan.node;
    const made = {
      plan,
      shaper: new OperationShaper(schema, document, requestContext.operation),
      repeated: repeatedEntitySelections(root),
    };
    byName.set(name, made);
    return made;
  };

  /** A plan's key in Apollo's plan cache, as @apollo/gateway's executor keys it. */
  const planKey = ({ request, queryHash }: GatewayGraphQLRequestContext): string =>
    request.operationName ? createHash('sha256').update(queryHash).update(request.operationName).digest('hex') : queryHash;

  /** Apollo's plan cache, else a new plan from its planner. */
  const planFor = async (requestContext: GatewayGraphQLRequestContext): Promise<QueryPlan> => {
    const { request, document } = requestContext;
    const store = internals.queryPlanStore;
    const key = planKey(requestContext);
    const stored = await store?.get(key);
    if (stored) return stored;
    const plan = tracer.startActiveSpan(OpenTelemetrySpanNames.PLAN, (span) => {
      try {
        const apiSchema = internals.apiSchema;
        const planner = internals.queryPlanner;
        if (!apiSchema || !planner) throw new Error('The gateway has no supergraph loaded');
        const operation = operationFromDocument(apiSchema, document, { operationName: request.operationName });
        return planner.buildQueryPlan(operation, {
          recursiveSelectionsLimitDisabled: internals.recursiveSelectionsLimitDisabled ?? false,
          nonLocalSelectionsLimitDisabled: internals.nonLocalSelectionsLimitDisabled ?? false,
        });
      } finally {
        span.end();
      }
    });
    try {
      await store?.set(key, plan);
    } catch (err) {
      options.logger.warn({ err }, 'could not store a query plan');
    }
    if (options.debug && plan.node) options.logger.debug(prettyFormatQueryPlan(plan));
    return plan;
  };

  const execute = async (requestContext: GatewayGraphQLRequestContext, exposing: boolean): Promise<GatewayExecutionResult> => {
    const origin = exposing ? performance.now() : 0;
    const { request, schema, operation } = requestContext;
    const definitions = operation.variableDefinitions ?? [];
    let coerced: Record<string, unknown> = {};
    if (definitions.length > 0) {
      const values = getVariableValues(schema, definitions, request.variables ?? {});
      if (values.errors) return { errors: values.errors };
      coerced = values.coerced;
    }
    const { plan, shaper, repeated } = await prepare(requestContext);
    repeatedSelections.set(requestContext.context, repeated);
    const errors: Error[] = [];
    // Apollo's merge defines (rather than assigns) keys an object inherits, `__proto__` included.
    const data: Record<string, unknown> = {};
    const supergraphSchema = internals.supergraphSchema;
    const services = internals.serviceMap;
    if (!supergraphSchema || !services) throw new Error('The gateway has no supergraph loaded');
    const timings: FetchTimings | undefined = exposing ? { origin, records: [] } : undefined;
    if (plan.node?.kind === 'Subscription') {
      const phase = (requestContext.context as { subscription?: SubscriptionPhase }).subscription;
      if (!phase) {
        return {
          errors: [
            new GraphQLError(
              'A subscription needs a stream: connect with graphql-transport-ws (WebSocket) or send Accept: text/event-stream (Server-Sent Events) to this endpoint.',
              { extensions: { code: SUBSCRIPTION_TRANSPORT_REQUIRED } },
            ),
          ],
        };
      }
      // The primary fetch asks the field's owner, with the event (signed with the body) when
      // there is one; the rest of the plan resolves the other subgraphs' fields as for a query.
      const run: PlanRun = {
        serviceMap: services,
        requestContext,
        supergraphSchema,
        conditions: coerced,
        errors,
        timings,
        extensions: phase.phase === 'event' ? { subscriptionEvent: phase.event } : undefined,
      };
      await executeNode(run, plan.node.primary, { path: [], data, fullResult: data });
      if (phase.phase === 'check') return errors.length > 0 ? { errors: errors as GraphQLError[] } : { data: null };
      run.extensions = undefined;
      if (plan.node.rest) await executeNode(run, plan.node.rest, { path: [], data, fullResult: data });
    } else if (plan.node) {
      const run: PlanRun = { serviceMap: services, requestContext, supergraphSchema, conditions: coerced, errors, timings };
      await executeNode(run, plan.node, { path: [], data, fullResult: data });
    }
    return tracer.startActiveSpan(OpenTelemetrySpanNames.POST_PROCESSING, (span) => {
      try {
        const shaped = shaper.shape(data, coerced, request.variables);
        const result: GatewayExecutionResult =
          errors.length === 0 && shaped.errors.length > 0
            ? { extensions: { valueCompletion: shaped.errors }, data: shaped.data }
            : errors.length === 0
              ? { data: shaped.data }
              : { errors: errors as GraphQLError[], data: shaped.data };
        return timings ? withPlan(requestContext, result, plan, 'own', timings) : result;
      } catch (error) {
        // As Apollo's: data that cannot be shaped at all (a subgraph broke its schema) is the response's only error.
        if (error instanceof GraphQLError) return { errors: [error] };
        return { errors: [new GraphQLError((error as Error).message, { originalError: error as Error })] };
      } finally {
        span.end();
      }
    });
  };

  let apolloExecutor: GatewayExecutor | null = null;
  /** Whether @apollo/gateway keeps what ours reads where 2.14 keeps it: decided at load, not per request. */
  let supported = false;
  const own = options.executor === 'own';
  const executor: GatewayExecutor = (requestContext) => {
    // One header look-up per request, and only where the config allows plans out at all.
    const exposing = options.exposeQueryPlan && asksForQueryPlan(requestContext.request.http?.headers);
    // Apollo's executor runs no subscription: ours runs every one, whatever PLAN_EXECUTOR says.
    const subscription = requestContext.operation.operation === 'subscription';
    if (!supported || (!subscription && (!own || requestContext.metrics.captureTraces))) {
      if (!apolloExecutor) throw new Error('The gateway is not loaded');
      return exposing ? withApolloPlan(requestContext, apolloExecutor) : apolloExecutor(requestContext);
    }
    return tracer.startActiveSpan(OpenTelemetrySpanNames.REQUEST, async (span) => {
      try {
        return await execute(requestContext, exposing);
      } finally {
        span.end();
      }
    });
  };

  /**
   * Apollo's executor's result with the plan it ran: the plan @apollo/gateway just stored under
   * the key our executor reads too. Apollo's executor reports no per-fetch timings.
   */
  const withApolloPlan = async (requestContext: GatewayGraphQLRequestContext, run: GatewayExecutor): Promise<GatewayExecutionResult> => {
    const result = await run(requestContext);
    const plan = await internals.queryPlanStore?.get(planKey(requestContext));
    return plan ? withPlan(requestContext, result, plan, 'apollo', undefined) : result;
  };

  return {
    onSchemaLoadOrUpdate: (callback) => gateway.onSchemaLoadOrUpdate(callback),
    stop: () => gateway.stop(),
    async load(loadOptions) {
      const loaded = await gateway.load(loadOptions);
      apolloExecutor = loaded.executor;
      supported = Boolean(internals.queryPlanStore && internals.serviceMap && internals.apiSchema && internals.queryPlanner);
      if (!supported && own) options.logger.warn("@apollo/gateway's internals were not found: plans run on its own executor");
      if (!internals.queryPlanStore && options.exposeQueryPlan)
        options.logger.warn("@apollo/gateway's plan store was not found: no plan is exposed");
      return { ...loaded, executor };
    },
  };
}

/**
 * `result` with `extensions.queryPlan` (and `extensions.fetchTimings` when the calls were timed).
 * Such a response is for the one client that asked: its cache policy is made uncacheable, so
 * `Cache-Control` says `no-store` and no HTTP cache hands the plan to anyone else.
 */
function withPlan(
  requestContext: GatewayGraphQLRequestContext,
  result: GatewayExecutionResult,
  plan: QueryPlan,
  executor: QueryPlanExtension['executor'],
  timings: FetchTimings | undefined,
): GatewayExecutionResult {
  const { tree, text, ids } = exposedPlan(plan);
  const queryPlan: QueryPlanExtension = { executor, tree, text };
  const extensions: Record<string, unknown> = { ...result.extensions, queryPlan };
  if (timings) {
    const fetchTimings: FetchTiming[] = timings.records
      .map((r) => ({
        fetchId: ids.get(r.node) ?? -1,
        subgraph: r.node.serviceName,
        path: r.path,
        start: ms(timings.origin, r.start),
        duration: ms(r.start, r.end),
        representations: r.representations,
        cacheHits: r.stats.cacheHits,
        memoHits: r.stats.memoHits,
        errors: r.errors,
      }))
      .sort((a, b) => a.start - b.start);
    extensions.fetchTimings = fetchTimings;
  }
  (requestContext.overallCachePolicy as { restrict(hint: { maxAge: number }): void }).restrict({ maxAge: 0 });
  return { ...result, extensions };
}
