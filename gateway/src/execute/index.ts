// The gateway's own executor of Apollo's query plans (`PLAN_EXECUTOR=own`, the default).
//
// Apollo Server asks its gateway for an executor at load time; this wrapper hands it ours and
// keeps everything else (the supergraph, its reloads, the data sources, the planner and its plan
// cache) @apollo/gateway's. Per request, @apollo/gateway's executor rebuilds a federation-internals
// `Operation` from the document (twice on a plan-cache miss, once on a hit), hashes the query for
// its plan cache, and shapes the result by walking that `Operation`; here the plan and a compiled
// shaper (`shape.ts`) are kept per parsed document, and the plan runs in `run-plan.ts`.
// The federation suite runs every case through both executors and requires the same responses.
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
import { type PlanRun, executeNode } from './run-plan';
import { OperationShaper } from './shape';

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
}

/**
 * Wraps `gateway` so that Apollo Server runs its plans on our executor. When the members it needs
 * are not where @apollo/gateway 2.14 keeps them (another version), it says so once and lets
 * Apollo's executor run.
 */
export function withOwnExecutor(gateway: ApolloGateway, options: Options): GatewayInterface {
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
    const root = plan.node?.kind === 'Subscription' ? undefined : plan.node;
    const made = {
      plan,
      shaper: new OperationShaper(schema, document, requestContext.operation),
      repeated: repeatedEntitySelections(root),
    };
    byName.set(name, made);
    return made;
  };

  /** Apollo's plan cache (keyed as @apollo/gateway keys it), else a new plan from its planner. */
  const planFor = async (requestContext: GatewayGraphQLRequestContext): Promise<QueryPlan> => {
    const { request, document, queryHash } = requestContext;
    const store = internals.queryPlanStore;
    const key = request.operationName ? createHash('sha256').update(queryHash).update(request.operationName).digest('hex') : queryHash;
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

  const execute = async (requestContext: GatewayGraphQLRequestContext): Promise<GatewayExecutionResult> => {
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
    if (plan.node?.kind === 'Subscription') throw new Error('Execution of subscriptions not supported by gateway');
    if (plan.node) {
      const run: PlanRun = { serviceMap: services, requestContext, supergraphSchema, conditions: coerced, errors };
      await executeNode(run, plan.node, { path: [], data, fullResult: data });
    }
    return tracer.startActiveSpan(OpenTelemetrySpanNames.POST_PROCESSING, (span) => {
      try {
        const shaped = shaper.shape(data, coerced, request.variables);
        if (errors.length === 0 && shaped.errors.length > 0) return { extensions: { valueCompletion: shaped.errors }, data: shaped.data };
        return errors.length === 0 ? { data: shaped.data } : { errors: errors as GraphQLError[], data: shaped.data };
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
  const executor: GatewayExecutor = (requestContext) => {
    if (!supported || requestContext.metrics.captureTraces) {
      if (!apolloExecutor) throw new Error('The gateway is not loaded');
      return apolloExecutor(requestContext);
    }
    return tracer.startActiveSpan(OpenTelemetrySpanNames.REQUEST, async (span) => {
      try {
        return await execute(requestContext);
      } finally {
        span.end();
      }
    });
  };

  return {
    onSchemaLoadOrUpdate: (callback) => gateway.onSchemaLoadOrUpdate(callback),
    stop: () => gateway.stop(),
    async load(loadOptions) {
      const loaded = await gateway.load(loadOptions);
      apolloExecutor = loaded.executor;
      supported = Boolean(internals.queryPlanStore && internals.serviceMap && internals.apiSchema && internals.queryPlanner);
      if (!supported) options.logger.warn("@apollo/gateway's internals were not found: plans run on its own executor");
      return { ...loaded, executor };
    },
  };
}
