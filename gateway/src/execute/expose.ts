// The query plan and its fetch timings in a response's `extensions`, for the explorer's plan panel
// and for anyone debugging a slow query. A plan names every subgraph and what each is asked, so
// it is handed out only when two things agree: the gateway's config allows it
// (`EXPOSE_QUERY_PLAN`, off by default in production) and the client asks for it with Apollo
// Router's header, `Apollo-Expose-Query-Plan: true`. Apollo's older
// `Apollo-Query-Plan-Experimental` stays unhonoured (gateway.ts turns it off on both executors).
import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import type { FetchNode, PlanNode, QueryPlan, SubscriptionNode } from '@apollo/query-planner';
import { prettyFormatQueryPlan } from '@apollo/query-planner';

/** The request header that asks for the plan (Apollo Router's name; HTTP header names ignore case). */
export const QUERY_PLAN_HEADER = 'apollo-expose-query-plan';

/** A request's headers as the plugins (Apollo Server's `HeaderMap`) and the executor (`FetcherHeaders`) see them. */
interface Headers {
  get(name: string): string | null | undefined;
}

/** True when the request asks for its plan: the header's value is `true` (Apollo Router's `dry-run` is not offered). */
export function asksForQueryPlan(headers: Headers | undefined): boolean {
  const value = headers?.get(QUERY_PLAN_HEADER);
  return typeof value === 'string' && value.trim().toLowerCase() === 'true';
}

/** One node of the plan as `extensions.queryPlan.tree` carries it: Apollo's node kinds, with what a reader needs of each. */
export type PlanTreeNode =
  | { kind: 'Sequence' | 'Parallel'; nodes: PlanTreeNode[] }
  | { kind: 'Flatten'; path: Array<string | number>; node: PlanTreeNode }
  | {
      kind: 'Fetch';
      /** This fetch's number in the plan (depth first, from 0): `extensions.fetchTimings[].fetchId` refers to it. */
      id: number;
      serviceName: string;
      operationName: string | undefined;
      /** The subgraph operation, as sent. */
      operation: string;
      /** An `_entities` fetch (it sends representations of what earlier fetches returned). */
      entities: boolean;
    }
  | { kind: 'Condition'; condition: string; ifClause: PlanTreeNode | null; elseClause: PlanTreeNode | null }
  | { kind: 'Defer'; primary: PlanTreeNode | null; deferred: PlanTreeNode[] }
  | { kind: 'Subscription'; primary: PlanTreeNode; rest: PlanTreeNode | null };

/** `extensions.queryPlan`. */
export interface QueryPlanExtension {
  /** Which executor ran the plan (`PLAN_EXECUTOR`): only ours reports fetch timings. */
  executor: 'own' | 'apollo';
  /** The plan's nodes; null for an operation that needs no fetch (`{ __typename }`). */
  tree: PlanTreeNode | null;
  /** Apollo's own rendering of the plan (`prettyFormatQueryPlan`). */
  text: string;
}

/** One entry of `extensions.fetchTimings`: one subgraph call of one fetch node. */
export interface FetchTiming {
  /** The fetch node's `id` in `extensions.queryPlan.tree`. */
  fetchId: number;
  subgraph: string;
  /** Where in the response the fetch's answer goes (`@`: every item of a list); `[]` for a root fetch. */
  path: Array<string | number>;
  /** Milliseconds from the start of execution (planning included, on a plan-cache miss) to the call. */
  start: number;
  /** Milliseconds until its answer was back. */
  duration: number;
  /** Representations the executor handed the fetch layers (0 for a root fetch). */
  representations: number;
  /** Of those, answered by the entity cache without the subgraph. */
  cacheHits: number;
  /** Of those, answered by an earlier fetch of this request (the request memo). Dedupe may send the subgraph fewer still. */
  memoHits: number;
  /** The subgraph's errors in the answer; 1 when the call itself failed. */
  errors: number;
}

/** A plan in its exposed form, made once per plan (plans are kept and reused per document). */
export interface ExposedPlan {
  tree: PlanTreeNode | null;
  text: string;
  /** Each fetch node's `id`. */
  ids: ReadonlyMap<FetchNode, number>;
}

const exposed = new WeakMap<QueryPlan, ExposedPlan>();

/** The plan's tree, text and fetch ids: computed on the first request that asks for them, then kept with the plan. */
export function exposedPlan(plan: QueryPlan): ExposedPlan {
  let known = exposed.get(plan);
  if (known) return known;
  const ids = new Map<FetchNode, number>();
  const tree = (node: PlanNode | SubscriptionNode): PlanTreeNode => {
    switch (node.kind) {
      case 'Sequence':
      case 'Parallel':
        return { kind: node.kind, nodes: node.nodes.map(tree) };
      case 'Flatten':
        return { kind: 'Flatten', path: [...node.path], node: tree(node.node) };
      case 'Fetch': {
        const id = ids.size;
        ids.set(node, id);
        return {
          kind: 'Fetch',
          id,
          serviceName: node.serviceName,
          operationName: node.operationName,
          operation: node.operation,
          entities: Boolean(node.requires?.length),
        };
      }
      case 'Condition':
        return {
          kind: 'Condition',
          condition: node.condition,
          ifClause: node.ifClause ? tree(node.ifClause) : null,
          elseClause: node.elseClause ? tree(node.elseClause) : null,
        };
      case 'Defer':
        return {
          kind: 'Defer',
          primary: node.primary.node ? tree(node.primary.node) : null,
          deferred: node.deferred.flatMap((d) => (d.node ? [tree(d.node)] : [])),
        };
      case 'Subscription':
        return { kind: 'Subscription', primary: tree(node.primary), rest: node.rest ? tree(node.rest) : null };
    }
  };
  known = { tree: plan.node ? tree(plan.node) : null, text: prettyFormatQueryPlan(plan), ids };
  exposed.set(plan, known);
  return known;
}

/**
 * `plugin` for every request but those that ask for their plan, on a gateway that exposes plans
 * (`exposeQueryPlan`; otherwise `plugin` itself). The response cache is wrapped in it: a kept
 * response would answer without running a plan (no plan, no timings to show), and the one that
 * shows the plan must never be kept for others.
 */
export function unlessQueryPlanAsked<TContext extends BaseContext>(
  exposeQueryPlan: boolean,
  plugin: ApolloServerPlugin<TContext>,
): ApolloServerPlugin<TContext> {
  if (!exposeQueryPlan) return plugin;
  return {
    ...plugin,
    async requestDidStart(requestContext) {
      if (asksForQueryPlan(requestContext.request.http?.headers)) return undefined;
      return plugin.requestDidStart?.(requestContext);
    },
  };
}
