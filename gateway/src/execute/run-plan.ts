// Runs one of Apollo's query plans: the nodes (Sequence, Parallel, Flatten, Fetch, Condition), the
// representations each entity fetch sends, the merge of each answer into the response, and the
// mapping of each subgraph error to its place in the response. It does what @apollo/gateway's
// `executeQueryPlan.ts` does (and reuses its data rewrites and merge), with these differences:
//
// - an `_entities` error lands on the entity whose representation it names. Apollo counts every
//   object at the fetch's path, including those that sent no representation (a union's other
//   members), so such an error could land on the wrong item; the federation suite shows it;
// - no Apollo usage-reporting trace nodes (a request that asks for them runs on Apollo's executor);
// - the data is walked with plain loops (no `[head, ...rest]` copies per step);
// - when the client asked for its plan (`expose.ts`), each subgraph call is timed.
import type { GraphQLDataSource } from '@apollo/gateway';
import { GraphQLDataSourceRequestKind } from '@apollo/gateway/dist/datasources/types';
import { applyRewrites, isObjectOfType } from '@apollo/gateway/dist/dataRewrites';
import { deepMerge } from '@apollo/gateway/dist/utilities/deepMerge';
import { generateHydratedPaths } from '@apollo/gateway/dist/executeQueryPlan';
import { OpenTelemetrySpanNames, tracer } from '@apollo/gateway/dist/utilities/opentelemetry';
import type { FetchNode, PlanNode, QueryPlanSelectionNode } from '@apollo/query-planner';
import type { GatewayGraphQLRequestContext } from '@apollo/server-gateway-interface';
import { ERRORS, errorCodeDef } from '@apollo/federation-internals';
import { GraphQLError, type GraphQLFormattedError, type GraphQLSchema } from 'graphql';
import type { FetchStats } from '../fetch/layer';

type Data = Record<string, unknown>;
type ResponsePath = Array<string | number>;

/** Where a plan node works: the objects at `path` ('@' for each item of a list) in the response so far. */
interface Cursor {
  path: ResponsePath;
  data: unknown;
  fullResult: Data;
}

export interface PlanRun {
  /** @apollo/gateway's data sources by subgraph name, as it keeps them. */
  serviceMap: Readonly<Record<string, { dataSource: GraphQLDataSource }>>;
  requestContext: GatewayGraphQLRequestContext;
  /** The supergraph (graphql-js): data rewrites and type conditions of representations read it. */
  supergraphSchema: GraphQLSchema;
  /** The request's coerced variables: `Condition` nodes read them. */
  conditions: Readonly<Record<string, unknown>>;
  /** What went wrong in the fetches, in the order it was found. */
  errors: Error[];
  /**
   * Set only for a request that asked for its plan: every subgraph call is timed into it. Absent,
   * no clock is read and no record is made (the request path of every other request).
   */
  timings?: FetchTimings | undefined;
  /**
   * Sent in the body's `extensions` with every fetch while set: a subscription's primary fetch
   * carries the event it is resolved for (`{ subscriptionEvent }`), signed with the body.
   */
  extensions?: Record<string, unknown> | undefined;
}

/** The subgraph calls of one request, in the order they were answered. */
export interface FetchTimings {
  /** `performance.now()` when execution started: starts are counted from it. */
  origin: number;
  records: FetchTimingRecord[];
}

export interface FetchTimingRecord {
  node: FetchNode;
  /** The fetch's response path (the cursor's: `@` for each item of a list). */
  path: ResponsePath;
  /** `performance.now()` readings, before the call and once it was answered. */
  start: number;
  end: number;
  representations: number;
  errors: number;
  /** Of `representations`, those the fetch layers answered without the subgraph (see FetchStats). */
  stats: FetchStats;
}

export async function executeNode(run: PlanRun, node: PlanNode, cursor: Cursor): Promise<void> {
  switch (node.kind) {
    case 'Sequence':
      for (const child of node.nodes) await executeNode(run, child, cursor);
      return;
    case 'Parallel':
      await Promise.all(node.nodes.map((child) => executeNode(run, child, cursor)));
      return;
    case 'Flatten': {
      const data = flattenAt(cursor.data, node.path, 0);
      if (!data) return;
      await executeNode(run, node.node, { path: cursor.path.concat(node.path), data, fullResult: cursor.fullResult });
      return;
    }
    case 'Fetch':
      try {
        await executeFetch(run, node, cursor);
      } catch (err) {
        run.errors.push(err as Error);
      }
      return;
    case 'Condition': {
      const value = run.conditions[node.condition];
      if (typeof value !== 'boolean')
        throw new Error(`Invalid non-boolean value ${String(value)} for Boolean! variable $${node.condition}`);
      const branch = value ? node.ifClause : node.elseClause;
      if (branch) await executeNode(run, branch, cursor);
      return;
    }
    default:
      // Defer (the planner builds none: the gateway does not enable it) and Subscription.
      throw new Error(`${node.kind} nodes are not supported by the gateway`);
  }
}

/** The values at `path` below `value`, every list at an '@' flattened into one (Apollo's `flattenResultsAtPath`). */
function flattenAt(value: unknown, path: ReadonlyArray<string | number>, at: number): unknown {
  if (at === path.length || value === undefined || value === null) return value;
  const head = path[at];
  if (head === '@') {
    if (!Array.isArray(value)) throw new TypeError(`Expected a list at '@' of ${path.join('.')}`);
    const out: unknown[] = [];
    for (const element of value) {
      const inner = flattenAt(element, path, at + 1);
      if (Array.isArray(inner)) for (const item of inner) out.push(item);
      else out.push(inner);
    }
    return out;
  }
  if (typeof head !== 'string') throw new Error(`Unexpected ${typeof head} found in path`);
  if (Array.isArray(value)) throw new Error(`Unexpected array in result for path element ${head}`);
  const object = value as Data;
  return flattenAt(Object.hasOwn(object, head) ? object[head] : undefined, path, at + 1);
}

async function executeFetch(run: PlanRun, fetch: FetchNode, cursor: Cursor): Promise<void> {
  const service = run.serviceMap[fetch.serviceName]?.dataSource;
  if (!service) throw new Error(`Couldn't find service with name "${fetch.serviceName}"`);
  let entities: Data[];
  if (Array.isArray(cursor.data)) {
    entities = [];
    for (const item of cursor.data) if (item !== null && item !== undefined) entities.push(item as Data);
  } else entities = [cursor.data as Data];
  if (entities.length < 1) return;

  // A plain object, as the data source copies and serialises it; a variable named `__proto__` is defined, not assigned.
  const variables: Data = {};
  const provided = run.requestContext.request.variables;
  if (fetch.variableUsages && provided) {
    for (const name of fetch.variableUsages) {
      if (!Object.hasOwn(provided, name) || provided[name] === undefined) continue;
      if (name === '__proto__')
        Object.defineProperty(variables, name, { value: provided[name], enumerable: true, writable: true, configurable: true });
      else variables[name] = provided[name];
    }
  }
  await tracer.startActiveSpan(OpenTelemetrySpanNames.FETCH, { attributes: { service: fetch.serviceName } }, async (span) => {
    try {
      if (!fetch.requires) {
        const data = await send(run, service, fetch, cursor, variables, undefined);
        if (data) applyRewrites(run.supergraphSchema, fetch.outputRewrites, data);
        for (const entity of entities) deepMerge(entity, data);
        return;
      }
      const representations: Data[] = [];
      const representationToEntity: number[] = [];
      for (let index = 0; index < entities.length; index++) {
        const representation = selectRepresentation(run.supergraphSchema, entities[index] as Data, fetch.requires);
        if (representation && representation.__typename) {
          applyRewrites(run.supergraphSchema, fetch.inputRewrites, representation);
          representations.push(representation);
          representationToEntity.push(index);
        }
      }
      if (representations.length < 1) return;
      if ('representations' in variables) throw new Error(`Variables cannot contain key "representations"`);
      variables.representations = representations;
      const data = await send(run, service, fetch, cursor, variables, representationToEntity);
      if (!data) return;
      const received = data._entities;
      if (!Array.isArray(received)) throw new Error(`Expected "data._entities" in response to be an array`);
      if (received.length !== representations.length)
        throw new Error(`Expected "data._entities" to contain ${representations.length} elements`);
      for (let i = 0; i < received.length; i++) {
        const entity = received[i] as Data | null | undefined;
        const existing = entities[representationToEntity[i] as number] as Data;
        if (entity && !entity.__typename) entity.__typename = existing.__typename;
        if (entity) applyRewrites(run.supergraphSchema, fetch.outputRewrites, entity);
        deepMerge(existing, entity);
      }
    } catch (err) {
      span.recordException(err as Error);
      throw err;
    } finally {
      span.end();
    }
  });
}

async function send(
  run: PlanRun,
  service: GraphQLDataSource,
  fetch: FetchNode,
  cursor: Cursor,
  variables: Data,
  representationToEntity: readonly number[] | undefined,
): Promise<Data | null | undefined> {
  const { requestContext, timings } = run;
  const request = {
    kind: GraphQLDataSourceRequestKind.INCOMING_OPERATION,
    request: run.extensions
      ? { query: fetch.operation, variables, operationName: fetch.operationName, extensions: run.extensions }
      : { query: fetch.operation, variables, operationName: fetch.operationName },
    incomingRequestContext: requestContext,
    context: requestContext.context,
    document: fetch.operationDocumentNode,
    pathInIncomingRequest: cursor.path,
  } as const;
  const response = timings ? await timed(timings, service, request, fetch, cursor, representationToEntity) : await service.process(request);
  if (response.errors) {
    const pathOf = errorPaths(fetch, cursor, representationToEntity);
    for (const error of response.errors) run.errors.push(downstreamServiceError(error, fetch.serviceName, pathOf));
    if (!response.extensions?.ftv1) {
      // As Apollo's executor records them for usage reporting.
      const metrics = requestContext.metrics as { nonFtv1ErrorPaths?: Array<{ subgraph: string; path: GraphQLFormattedError['path'] }> };
      const paths = response.errors.map((error) => ({ subgraph: fetch.serviceName, path: error.path }));
      if (metrics.nonFtv1ErrorPaths) metrics.nonFtv1ErrorPaths.push(...paths);
      else metrics.nonFtv1ErrorPaths = paths;
    }
  }
  return response.data as Data | null | undefined;
}

/** `service.process(request)`, recorded in `timings` whether it is answered or fails. */
async function timed(
  timings: FetchTimings,
  service: GraphQLDataSource,
  request: Parameters<GraphQLDataSource['process']>[0],
  fetch: FetchNode,
  cursor: Cursor,
  representationToEntity: readonly number[] | undefined,
): ReturnType<GraphQLDataSource['process']> {
  const record: FetchTimingRecord = {
    node: fetch,
    path: cursor.path,
    start: performance.now(),
    end: 0,
    representations: representationToEntity?.length ?? 0,
    errors: 1,
    stats: { memoHits: 0, cacheHits: 0 },
  };
  try {
    // Our data source hands `fetchStats` to its layers, which count what they answer themselves.
    const withStats: typeof request & { fetchStats: FetchStats } = { ...request, fetchStats: record.stats };
    const response = await service.process(withStats);
    record.errors = response.errors?.length ?? 0;
    return response;
  } finally {
    record.end = performance.now();
    timings.records.push(record);
  }
}

/** The response path of a subgraph error: for `_entities`, the path of the entity its representation came from. */
function errorPaths(fetch: FetchNode, cursor: Cursor, representationToEntity: readonly number[] | undefined) {
  let hydrated: ResponsePath[] | undefined;
  return (path: GraphQLFormattedError['path']): ResponsePath | undefined => {
    if (fetch.requires && representationToEntity && typeof path?.[1] === 'number') {
      if (!hydrated) {
        hydrated = [];
        generateHydratedPaths([], cursor.path, cursor.fullResult, hydrated);
      }
      const entity = representationToEntity[path[1]];
      const at = entity === undefined ? undefined : hydrated[entity];
      return [...(at ?? []), ...path.slice(2)];
    }
    return path ? [...cursor.path, ...path] : undefined;
  };
}

function downstreamServiceError(
  original: GraphQLFormattedError,
  serviceName: string,
  pathOf: (path: GraphQLFormattedError['path']) => ResponsePath | undefined,
): GraphQLError {
  const message = original.message || `Error while fetching subquery from service "${serviceName}"`;
  const { extensions } = original;
  const options = {
    originalError: original as unknown as Error,
    path: pathOf(original.path),
    extensions: { ...extensions, serviceName },
  };
  const codeDef = errorCodeDef(original);
  if (!codeDef && extensions?.code) return new GraphQLError(message, options);
  return (codeDef ?? ERRORS.DOWNSTREAM_SERVICE_ERROR).err(message, options);
}

/** An entity's representation: the `requires` selection of it, or null when a key field is missing (Apollo's `executeSelectionSet`). */
function selectRepresentation(schema: GraphQLSchema, source: Data | null, selections: readonly QueryPlanSelectionNode[]): Data | null {
  if (source === null) return null;
  // A plain object (it is serialised into the request body); key fields are schema field names, never `__proto__`.
  const result: Data = {};
  for (const selection of selections) {
    if (selection.kind === 'Field') {
      const name = selection.alias ?? selection.name;
      const value = Object.hasOwn(source, name) ? source[name] : undefined;
      if (value === undefined) return null;
      const sub = selection.selections;
      if (Array.isArray(value))
        result[name] = value.map((item: unknown) => (sub ? selectRepresentation(schema, item as Data | null, sub) : item));
      else if (sub) result[name] = selectRepresentation(schema, value as Data | null, sub);
      else result[name] = value;
    } else if (selection.typeCondition && isObjectOfType(schema, source, selection.typeCondition)) {
      deepMerge(result, selectRepresentation(schema, source, selection.selections));
    }
  }
  return result;
}
