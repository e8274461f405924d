import type {
  FetchNode,
  FlattenNode,
  PlanNode,
  QueryPlan,
  QueryPlanSelectionNode,
  SequenceNode,
  SubscriptionNode,
} from '@apollo/query-planner';
import {
  type DocumentNode,
  type FieldNode,
  type InlineFragmentNode,
  Kind,
  type OperationDefinitionNode,
  type SelectionNode,
  parse,
  print,
  stripIgnoredCharacters,
} from 'graphql';

// A pass over Apollo's query plans that folds an entity fetch into a later one of the same
// subgraph at the same path, when the later one needs at least its representations. Apollo's
// planner fetches what needs only the key at once, beside the fetches that provide another
// fetch's @requires, and that other fetch later: `inStock` from inventory beside products, then
// `shippingEstimate` from inventory once price and weight are known. Both ask inventory for the
// same products; folded, inventory is asked once, with the later fetch's representations (Hive's
// Rust planner plans the same). The later fetch runs when it ran before: nothing waits longer
// than the plan's longest chain already did.

/** An entity fetch under a Flatten: where its entities are and the fetch. */
type EntityFetch = FlattenNode & { node: FetchNode & { requires: QueryPlanSelectionNode[] } };

function isEntityFetch(node: PlanNode): node is EntityFetch {
  return node.kind === 'Flatten' && node.node.kind === 'Fetch' && Array.isArray(node.node.requires) && node.node.requires.length > 0;
}

/** A fetch the pass leaves alone: deferred parts, rewrites and interface objects are Apollo's to get right. */
function plain(fetch: FetchNode): boolean {
  return (
    !fetch.id &&
    !fetch.hasDefers &&
    !fetch.inputRewrites?.length &&
    !fetch.outputRewrites?.length &&
    !fetch.contextRewrites?.length &&
    fetch.operationKind === 'query'
  );
}

/** A selection as text, for comparing requirements. */
function selectionText(node: QueryPlanSelectionNode): string {
  const inner = node.selections ? `{${node.selections.map(selectionText).sort().join(' ')}}` : '';
  return node.kind === 'Field' ? `${node.alias ? `${node.alias}:` : ''}${node.name}${inner}` : `...on ${node.typeCondition ?? ''}${inner}`;
}

/** Every selection of `small` is in `big` (per type condition). */
function covers(big: readonly QueryPlanSelectionNode[], small: readonly QueryPlanSelectionNode[]): boolean {
  const byType = new Map<string, Set<string>>();
  for (const node of big) {
    if (node.kind !== 'InlineFragment') return false;
    const set = byType.get(node.typeCondition ?? '') ?? new Set<string>();
    for (const s of node.selections) set.add(selectionText(s));
    byType.set(node.typeCondition ?? '', set);
  }
  return small.every(
    (node) => node.kind === 'InlineFragment' && node.selections.every((s) => byType.get(node.typeCondition ?? '')?.has(selectionText(s))),
  );
}

/** Field names any fetch of the plan sends as part of its representations (its `requires`). */
function requiredNames(node: PlanNode | SubscriptionNode | undefined, into: Set<string>): Set<string> {
  if (!node) return into;
  const walk = (selections: readonly QueryPlanSelectionNode[]) => {
    for (const s of selections) {
      if (s.kind === 'Field') into.add(s.alias ?? s.name);
      if (s.selections) walk(s.selections);
    }
  };
  switch (node.kind) {
    case 'Fetch':
      walk(node.requires ?? []);
      break;
    case 'Flatten':
      requiredNames(node.node, into);
      break;
    case 'Sequence':
    case 'Parallel':
      for (const n of node.nodes) requiredNames(n, into);
      break;
    case 'Condition':
      requiredNames(node.ifClause, into);
      requiredNames(node.elseClause, into);
      break;
    case 'Defer':
      requiredNames(node.primary.node, into);
      for (const d of node.deferred) requiredNames(d.node, into);
      break;
    case 'Subscription':
      requiredNames(node.primary, into);
      requiredNames(node.rest, into);
      break;
  }
  return into;
}

/** The `_entities` field and the operation of an entity fetch's document, or null when it is not the planner's plain shape. */
function entitiesOperation(document: DocumentNode): { operation: OperationDefinitionNode; field: FieldNode } | null {
  if (document.definitions.length !== 1) return null;
  const operation = document.definitions[0];
  if (operation?.kind !== Kind.OPERATION_DEFINITION || operation.selectionSet.selections.length !== 1) return null;
  const field = operation.selectionSet.selections[0];
  if (field?.kind !== Kind.FIELD || field.name.value !== '_entities' || field.directives?.length || !field.selectionSet) return null;
  if (!field.selectionSet.selections.every((s) => s.kind === Kind.INLINE_FRAGMENT && !s.directives?.length)) return null;
  return { operation, field };
}

const responseName = (s: SelectionNode) => (s.kind === Kind.FIELD ? (s.alias?.value ?? s.name.value) : null);

/**
 * The later fetch with the earlier one's selections added, or null when the two cannot be one:
 * another document shape, variables of one name with two types, or one response name selected
 * differently by each.
 */
function foldInto(later: FetchNode, earlier: FetchNode): FetchNode | null {
  let laterDoc: DocumentNode;
  let earlierDoc: DocumentNode;
  try {
    laterDoc = later.operationDocumentNode ?? parse(later.operation);
    earlierDoc = earlier.operationDocumentNode ?? parse(earlier.operation);
  } catch {
    return null;
  }
  const a = entitiesOperation(laterDoc);
  const b = entitiesOperation(earlierDoc);
  if (!a || !b) return null;
  const variables = new Map((a.operation.variableDefinitions ?? []).map((d) => [d.variable.name.value, d]));
  for (const d of b.operation.variableDefinitions ?? []) {
    const known = variables.get(d.variable.name.value);
    if (known && print(known) !== print(d)) return null;
    if (!known) variables.set(d.variable.name.value, d);
  }
  const fragments = [...(a.field.selectionSet?.selections as InlineFragmentNode[])].map((f) => ({
    ...f,
    selectionSet: { ...f.selectionSet, selections: [...f.selectionSet.selections] },
  }));
  for (const add of b.field.selectionSet?.selections as InlineFragmentNode[]) {
    const type = add.typeCondition?.name.value;
    const target = fragments.find((f) => f.typeCondition?.name.value === type);
    if (!target) {
      fragments.push({ ...add, selectionSet: { ...add.selectionSet, selections: [...add.selectionSet.selections] } });
      continue;
    }
    let added = 0;
    for (const selection of add.selectionSet.selections) {
      const name = responseName(selection);
      const same = target.selectionSet.selections.find((s) => name !== null && responseName(s) === name);
      if (same) {
        if (print(same) !== print(selection)) return null;
        continue;
      }
      // The earlier fetch's fields first: the client's order, as Apollo writes a fetch of both
      // (`{inStock shippingEstimate}`), so the folded fetch has the same selection as such a
      // fetch elsewhere in the plan and the per-request memo answers one from the other.
      target.selectionSet.selections.splice(added++, 0, selection);
    }
  }
  const field: FieldNode = { ...a.field, selectionSet: { kind: Kind.SELECTION_SET, selections: fragments } };
  const operation: OperationDefinitionNode = {
    ...a.operation,
    variableDefinitions: [...variables.values()],
    selectionSet: { kind: Kind.SELECTION_SET, selections: [field] },
  };
  const document: DocumentNode = { kind: Kind.DOCUMENT, definitions: [operation] };
  const usages = [...new Set([...(later.variableUsages ?? []), ...(earlier.variableUsages ?? [])])];
  return {
    ...later,
    operation: stripIgnoredCharacters(print(document)),
    operationDocumentNode: document,
    ...(usages.length > 0 ? { variableUsages: usages } : {}),
  };
}

/** The entity fetches directly in a Sequence (and in its Parallels), with where each sits. */
function laterFetches(sequence: SequenceNode): Array<{ fetch: EntityFetch; replace: (node: PlanNode) => void }> {
  const found: Array<{ fetch: EntityFetch; replace: (node: PlanNode) => void }> = [];
  sequence.nodes.forEach((node, i) => {
    // The first node of a sequence runs at once: folding into it would gain nothing.
    if (i === 0) return;
    if (isEntityFetch(node)) found.push({ fetch: node, replace: (n) => (sequence.nodes[i] = n) });
    else if (node.kind === 'Parallel')
      node.nodes.forEach((child, j) => {
        if (isEntityFetch(child)) found.push({ fetch: child, replace: (n) => (node.nodes[j] = n) });
      });
  });
  return found;
}

function samePath(a: FlattenNode, b: FlattenNode): boolean {
  return a.path.length === b.path.length && a.path.every((p, i) => p === b.path[i]);
}

/** Folds within one node, children first; `required` names the fields some fetch reads from earlier ones. */
function optimise(node: PlanNode, required: ReadonlySet<string>): PlanNode {
  switch (node.kind) {
    case 'Sequence':
      return { ...node, nodes: node.nodes.map((n) => optimise(n, required)) };
    case 'Flatten':
      return { ...node, node: optimise(node.node, required) };
    case 'Parallel': {
      const nodes = node.nodes.map((n) => optimise(n, required));
      const kept: PlanNode[] = [];
      for (const child of nodes) {
        if (!isEntityFetch(child) || !plain(child.node) || !folded(child, nodes, required)) kept.push(child);
      }
      return kept.length === 1 ? (kept[0] as PlanNode) : { ...node, nodes: kept };
    }
    default:
      return node;
  }
}

/** Folds `early` into a later fetch of a sibling Sequence when one fits; true when it did. */
function folded(early: EntityFetch, siblings: readonly PlanNode[], required: ReadonlySet<string>): boolean {
  // A field another fetch reads from the result must be there before that fetch runs.
  const provides = early.node.operationDocumentNode ?? parse(early.node.operation);
  const shape = entitiesOperation(provides);
  if (!shape) return false;
  for (const fragment of shape.field.selectionSet?.selections as InlineFragmentNode[]) {
    for (const s of fragment.selectionSet.selections) {
      const name = responseName(s);
      if (name === null || required.has(name)) return false;
    }
  }
  for (const sibling of siblings) {
    if (sibling.kind !== 'Sequence') continue;
    for (const { fetch: later, replace } of laterFetches(sibling)) {
      if (later.node.serviceName !== early.node.serviceName || !samePath(later, early) || !plain(later.node)) continue;
      if (!covers(later.node.requires, early.node.requires)) continue;
      const merged = foldInto(later.node, early.node);
      if (!merged) continue;
      replace({ ...later, node: merged });
      return true;
    }
  }
  return false;
}

/** The plan with entity fetches folded into later ones where that sends fewer fetches (see above); the plan itself is not changed. */
export function foldEntityFetches(plan: QueryPlan): QueryPlan {
  if (!plan.node || plan.node.kind === 'Subscription') return plan;
  const required = requiredNames(plan.node, new Set());
  return { ...plan, node: optimise(plan.node, required) };
}

/** A node as the steps it runs one after another: a Sequence's (nested ones flattened), or itself. */
function steps(node: PlanNode): PlanNode[] {
  return node.kind === 'Sequence' ? node.nodes.flatMap(steps) : [node];
}

/** Nodes that run side by side as one node: a Parallel's children are taken in, one node stays itself. */
function together(nodes: readonly PlanNode[]): PlanNode {
  const flat = nodes.flatMap((n) => (n.kind === 'Parallel' ? n.nodes : [n]));
  return flat.length === 1 ? (flat[0] as PlanNode) : { kind: 'Parallel', nodes: flat };
}

function sequence(nodes: readonly PlanNode[]): PlanNode {
  return nodes.length === 1 ? (nodes[0] as PlanNode) : { kind: 'Sequence', nodes: [...nodes] };
}

/**
 * Branches that run side by side, each a chain of steps, run level by level instead: the first
 * steps of every branch together, then the second steps, and so on. Each step still runs after
 * the steps of its own branch before it (and now after the other branches' earlier steps too),
 * so every fetch has what it needs; what the levels gain is that the fetches of one level, to
 * one subgraph, go out in the same turn of the event loop and merging sends them as one request
 * (`fetch/merge.ts`). The deep query's two root branches (users, then their reviews, products
 * and inventory; top products, then theirs) become four levels of one request per subgraph each.
 * Hive's Rust planner plans by level the same way. The price: a branch whose step is fast waits
 * for the slowest step of its level.
 */
function byLevel(node: PlanNode): PlanNode {
  switch (node.kind) {
    case 'Sequence':
      return sequence(node.nodes.map(byLevel).flatMap(steps));
    case 'Parallel': {
      const branches = node.nodes.map(byLevel).map(steps);
      const depth = Math.max(...branches.map((b) => b.length));
      if (depth <= 1) return together(branches.map((b) => b[0] as PlanNode));
      const levels: PlanNode[] = [];
      for (let i = 0; i < depth; i++) levels.push(together(branches.flatMap((b) => (i < b.length ? [b[i] as PlanNode] : []))));
      return sequence(levels);
    }
    default:
      return node;
  }
}

/** The plan run level by level (see {@link byLevel}); the plan itself is not changed. */
export function levelFetches(plan: QueryPlan): QueryPlan {
  if (!plan.node || plan.node.kind === 'Subscription') return plan;
  return { ...plan, node: byLevel(plan.node) };
}
