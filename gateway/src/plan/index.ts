import type { ApolloGateway } from '@apollo/gateway';
import type { QueryPlan } from '@apollo/query-planner';
import { foldEntityFetches, levelFetches } from './fold';

export { foldEntityFetches, levelFetches } from './fold';

/** The part of @apollo/gateway's planner the gateway calls for every new operation. */
interface Planner {
  buildQueryPlan(...args: unknown[]): QueryPlan;
}

/** How plans are reshaped before they run. */
export interface PlanShaping {
  /** {@link foldEntityFetches} (`FOLD_FETCHES`). */
  fold: boolean;
  /** {@link levelFetches} (`LEVEL_FETCHES`). */
  levels: boolean;
}

/**
 * Runs every plan @apollo/gateway builds through {@link foldEntityFetches} and
 * {@link levelFetches} (as `shaping` says) before it is cached and executed. The gateway makes a new planner on every supergraph (re)load, before it tells
 * `onSchemaLoadOrUpdate` listeners: each new one is wrapped there. @apollo/gateway has no hook for
 * this; the planner is its private `queryPlanner` member (pinned version, checked by the tests:
 * a gateway whose planner is not found folds nothing and says so once).
 */
export function shapePlans(gateway: ApolloGateway, shaping: PlanShaping, warn: (message: string) => void): void {
  if (!shaping.fold && !shaping.levels) return;
  const shape = (plan: QueryPlan): QueryPlan => {
    const folded = shaping.fold ? foldEntityFetches(plan) : plan;
    return shaping.levels ? levelFetches(folded) : folded;
  };
  let warned = false;
  gateway.onSchemaLoadOrUpdate(() => {
    const holder = gateway as unknown as { queryPlanner?: Planner };
    const planner = holder.queryPlanner;
    if (!planner || typeof planner.buildQueryPlan !== 'function') {
      if (!warned) warn("@apollo/gateway's query planner was not found: plans are not reshaped");
      warned = true;
      return;
    }
    const build = planner.buildQueryPlan.bind(planner);
    planner.buildQueryPlan = (...args: unknown[]) => shape(build(...args));
  });
}
