import type { GraphQLDataSource, GraphQLDataSourceProcessOptions } from '@apollo/gateway';
// The enum is not re-exported from the package root.
import { GraphQLDataSourceRequestKind } from '@apollo/gateway/dist/datasources/types';
import type { GatewayGraphQLResponse } from '@apollo/server-gateway-interface';
import {
  type CachePolicy,
  type FetchRequest,
  type FetchResponse,
  type FetchStats,
  entitiesBody,
  entitiesOf,
  remapErrors,
  selectionKeyOf,
} from './layer';
import { type DataSourceDeps, type Fetch, composePipeline } from './pipeline';
import type { Representation } from './representation';

type ProcessOptions<C extends object> = GraphQLDataSourceProcessOptions<C & Record<string, unknown>>;

const MUTATION = /^\s*mutation\b/;

function cachePolicyOf(policy: unknown): CachePolicy | undefined {
  return typeof policy === 'object' && policy !== null && 'restrict' in policy ? (policy as CachePolicy) : undefined;
}

/**
 * The `_entities` answer Apollo's query plan reads: one entity per representation asked for
 * (null where the subgraph gave none), errors at positions that exist, nothing else of the body.
 */
function entitiesAnswer(response: FetchResponse, count: number): GatewayGraphQLResponse {
  const list = entitiesOf(response.body);
  // The layers' answers are complete already; only a subgraph's own may be short or missing.
  let entities: unknown[];
  if (list?.length === count) entities = list as unknown[];
  else {
    entities = new Array<unknown>(count);
    for (let i = 0; i < count; i++) entities[i] = list?.[i] ?? null;
  }
  const errors = response.body.errors?.length ? remapErrors(response.body.errors, (at) => (at >= 0 && at < count ? [at] : [])) : [];
  return entitiesBody(entities, errors);
}

/**
 * The gateway's data source for one subgraph, as @apollo/gateway calls it: it turns Apollo's
 * request into a {@link FetchRequest} (is it a mutation? an `_entities` fetch? the client's request
 * id, connection and cache policy) and runs it through the subgraph's fetch pipeline
 * (`pipeline.ts`, one layer per file beside this one).
 */
export class BatchingDataSource<TContext extends object> implements GraphQLDataSource<TContext & Record<string, unknown>> {
  private readonly fetch: Fetch;

  constructor(
    readonly name: string,
    readonly url: string,
    deps: DataSourceDeps,
  ) {
    this.fetch = composePipeline(name, url, deps);
  }

  async process(options: ProcessOptions<TContext>): Promise<GatewayGraphQLResponse> {
    const { request } = options;
    const query = request.query ?? '';
    const incoming = options.kind === GraphQLDataSourceRequestKind.INCOMING_OPERATION;
    const context = incoming
      ? (options.context as { requestId?: unknown; signal?: unknown; deadline?: unknown; identityHeader?: unknown; cacheClock?: unknown })
      : undefined;
    const variables = request.variables ?? {};
    const mutation = MUTATION.test(query);
    const reps: unknown = variables.representations;
    const entities = incoming && !mutation && Array.isArray(reps) && reps.length > 0;
    let others = variables;
    if (entities) {
      const { representations: _reps, ...rest } = variables;
      others = rest;
    }
    // Every field of a FetchRequest, written out: the layers copy requests with a spread and
    // change fields (`{ ...request, body }`), which V8 (Node 20) does quickly only when the copy
    // adds no field the original lacks; a spread followed by a new field took microseconds.
    const fetchRequest: FetchRequest = {
      query,
      operationName: request.operationName,
      variables: others,
      representations: entities ? (reps as Representation[]) : undefined,
      selectionKey: entities ? selectionKeyOf(query, others) : undefined,
      repKeys: undefined,
      mutation,
      requestId: typeof context?.requestId === 'string' ? context.requestId : undefined,
      identity: typeof context?.identityHeader === 'string' ? context.identityHeader : undefined,
      headers: {},
      // Aborted when the client goes away: its subgraph requests are cancelled rather than left running.
      signal: context?.signal instanceof AbortSignal ? context.signal : undefined,
      deadline: typeof context?.deadline === 'number' ? context.deadline : undefined,
      cachePolicy: incoming ? cachePolicyOf(options.incomingRequestContext.overallCachePolicy) : undefined,
      // Extensions (a subscription's event) go in the body as sent: in-flight sharing keys on it.
      body: request.extensions
        ? JSON.stringify({ query, variables, operationName: request.operationName, extensions: request.extensions })
        : undefined,
      representationCount: undefined,
      // The client request's context: one object for all of its fetches.
      scope: context,
      freshness: typeof context?.cacheClock === 'string' ? context.cacheClock : undefined,
      // Our executor's, for a request that asked for its plan and per-fetch timings.
      stats: (options as { fetchStats?: FetchStats }).fetchStats,
    };
    const response = await this.fetch(fetchRequest);
    return entities ? entitiesAnswer(response, (reps as unknown[]).length) : response.body;
  }
}
