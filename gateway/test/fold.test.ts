import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Supergraph, operationFromDocument } from '@apollo/federation-internals';
import { type FetchNode, type PlanNode, type QueryPlan, QueryPlanner } from '@apollo/query-planner';
import { parse } from 'graphql';
import { SUPERGRAPH_FEATURES } from '@shop/composition';
import { foldEntityFetches, levelFetches } from '../src/plan';

const REPO_ROOT = join(__dirname, '..', '..');
const supergraph = Supergraph.build(readFileSync(join(REPO_ROOT, 'supergraph.graphql'), 'utf8'), {
  supportedFeatures: new Set(SUPERGRAPH_FEATURES),
});
// As the gateway plans (gateway.ts): client fragments written out in subgraph documents.
const planner = new QueryPlanner(supergraph, { reuseQueryFragments: false });
const plan = (query: string): QueryPlan => planner.buildQueryPlan(operationFromDocument(supergraph.schema, parse(query)));

function fetches(node: PlanNode | undefined, path: string[] = []): Array<{ fetch: FetchNode; path: string }> {
  if (!node) return [];
  switch (node.kind) {
    case 'Fetch':
      return [{ fetch: node, path: path.join('.') }];
    case 'Flatten':
      return fetches(node.node, node.path.map(String));
    case 'Sequence':
    case 'Parallel':
      return node.nodes.flatMap((n) => fetches(n, path));
    default:
      return [];
  }
}
const of = (p: QueryPlan) => fetches(p.node?.kind === 'Subscription' ? undefined : p.node);

const REVIEWED = `{ topProducts(first: 2) { reviews(first: 2) { author { reviews(first: 2) { product { name inStock shippingEstimate } } } } } }`;

describe('folding entity fetches in query plans', () => {
  it("folds inventory's inStock into the shippingEstimate fetch at the same path: one inventory fetch per path", () => {
    const before = plan(REVIEWED);
    const after = foldEntityFetches(before);
    const inventory = (p: QueryPlan) => of(p).filter((f) => f.fetch.serviceName === 'inventory');
    expect(inventory(before)).toHaveLength(2);
    expect(inventory(after)).toHaveLength(1);
    const folded = inventory(after)[0]?.fetch as FetchNode;
    expect(folded.operation).toMatch(/\{inStock shippingEstimate\}/);
    // It keeps the later fetch's representations (price and weight for shippingEstimate's @requires).
    expect(JSON.stringify(folded.requires)).toMatch(/price.*weight|weight.*price/);
    expect(of(after)).toHaveLength(of(before).length - 1);
    // The planner's own plan object is left as it was (it is cached by @apollo/gateway).
    expect(inventory(plan(REVIEWED))).toHaveLength(2);
    expect(inventory(before)).toHaveLength(2);
  });

  it('leaves alone a plan with nothing to fold, and fetches whose fields another fetch needs', () => {
    const onlyStock = plan(`{ topProducts(first: 2) { reviews(first: 2) { product { inStock } } } }`);
    expect(foldEntityFetches(onlyStock)).toEqual(onlyStock);
    // products' price and weight are shippingEstimate's @requires: that fetch stays where it is.
    const shipping = plan(`{ topProducts(first: 2) { reviews(first: 2) { product { price shippingEstimate } } } }`);
    const after = foldEntityFetches(shipping);
    expect(of(after).map((f) => f.fetch.serviceName)).toEqual(of(shipping).map((f) => f.fetch.serviceName));
  });

  it("folds the bench's deep query shape from 16 fetches to 13", () => {
    const query = `{ users(first: 3) { edges { node { id reviews(first: 2) { id product { id name inStock shippingEstimate reviews(first: 2) { id author { id name reviews(first: 2) { id product { id name inStock shippingEstimate } } } } } } } } }
      topProducts(first: 3) { id name inStock shippingEstimate reviews(first: 2) { id author { id name reviews(first: 2) { id product { id name inStock shippingEstimate } } } } } }`;
    const before = plan(query);
    expect(of(before)).toHaveLength(16);
    expect(of(foldEntityFetches(before))).toHaveLength(13);
  });

  it("runs side-by-side branches level by level: each fetch after its own branch's earlier ones, one level per subgraph", () => {
    const query = `{ users(first: 3) { edges { node { id reviews(first: 2) { id product { id name inStock shippingEstimate } } } } }
      topProducts(first: 3) { id name reviews(first: 2) { id author { id name } } } }`;
    const before = foldEntityFetches(plan(query));
    const after = levelFetches(before);
    // Same fetches, now a Sequence of levels.
    const names = (p: QueryPlan) => of(p).map((f) => `${f.fetch.serviceName} ${f.path}`);
    expect([...names(after)].sort()).toEqual([...names(before)].sort());
    expect(after.node?.kind).toBe('Sequence');
    const levels = (after.node as { nodes: PlanNode[] }).nodes.map((level) =>
      fetches(level).map((f) => `${f.fetch.serviceName} ${f.path}`),
    );
    // Every fetch comes after the fetch that gives it its entities: its path's parent was fetched at an earlier level.
    const levelOf = new Map<string, number>();
    levels.forEach((level, i) => level.forEach((name) => levelOf.set(name, i)));
    expect(levelOf.get('accounts ')).toBe(0);
    expect(levelOf.get('products ')).toBe(0);
    expect(levelOf.get('reviews users.edges.@.node')).toBe(1);
    expect(levelOf.get('reviews topProducts.@')).toBe(1);
    expect(levelOf.get('products users.edges.@.node.reviews.@.product')).toBe(2);
    expect(levelOf.get('accounts topProducts.@.reviews.@.author')).toBe(2);
    expect(levelOf.get('inventory users.edges.@.node.reviews.@.product')).toBe(3);
    // The planner's plan is left as it was.
    expect(before.node?.kind).toBe('Parallel');
  });
});
