import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import {
  type ArgumentNode,
  type DirectiveNode,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLField,
  GraphQLError,
  type GraphQLSchema,
  type GraphQLType,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValueNode,
  getNamedType,
  getNullableType,
  isCompositeType,
  isInterfaceType,
  isListType,
  isObjectType,
  parse,
  valueFromASTUntyped,
} from 'graphql';
import type { Metrics } from '@shop/telemetry';

/**
 * Demand control: a static cost estimate of every operation before it is planned, with the
 * semantics of the IBM GraphQL cost directive spec as Apollo Router's demand control applies them.
 *
 * Why not a library: graphql-query-complexity (the usual choice) walks a fragment again at every
 * spread, so ten fragments that each spread the next twice cost 2^10 walks (30 froze the gateway),
 * and its directive estimator has its own `@complexity` semantics, not `@cost`/`@listSize`. Here
 * each fragment is costed once per list-size context and reused at every spread: linear in the
 * document.
 *
 * The rules:
 * - an operation starts at 10 for a mutation, 0 for a query;
 * - a field costs its type's weight (1 for an object, interface or union, 0 for a scalar or enum)
 *   unless the field has `@cost(weight:)`, plus the `@cost` of the arguments it is given, plus the
 *   cost of its selections;
 * - a list field multiplies (weight + selections) by its size: the value of its `@listSize`
 *   slicing argument (`first`; the argument's default when not given), else its `assumedSize`,
 *   else the configured default list size;
 * - `@listSize(sizedFields: ["edges"])` on a connection puts that size on the named child fields
 *   instead of on the connection itself;
 * - `@skip`/`@include` with a known condition leave the skipped fields out.
 */

/** A `@listSize` application. */
export interface ListSize {
  assumedSize?: number;
  slicingArguments?: string[];
  sizedFields?: string[];
  requireOneSlicingArgument: boolean;
}

/** The `@cost` and `@listSize` directives of a supergraph, by schema coordinate. */
export interface CostDirectives {
  /** `Type.field` -> weight. */
  fieldWeight: Map<string, number>;
  /** `Type` (object, scalar, enum) -> weight. */
  typeWeight: Map<string, number>;
  /** `Type.field(arg:)` -> weight. */
  argumentWeight: Map<string, number>;
  /** `Type.field` -> its list size rule. */
  listSize: Map<string, ListSize>;
}

export const emptyCostDirectives = (): CostDirectives => ({
  fieldWeight: new Map(),
  typeWeight: new Map(),
  argumentWeight: new Map(),
  listSize: new Map(),
});

const COST_SPEC = /^https:\/\/specs\.apollo\.dev\/cost\/v\d+\.\d+$/;

/**
 * The names `@cost` and `@listSize` go by: in a supergraph, imported (maybe renamed) from the cost
 * spec; in a subgraph, imported from the federation spec or, not imported, `@federation__cost`.
 */
function directiveNames(document: DocumentNode): { cost: Set<string>; listSize: Set<string> } {
  const names = { cost: new Set(['cost', 'federation__cost']), listSize: new Set(['listSize', 'federation__listSize']) };
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.SCHEMA_DEFINITION && definition.kind !== Kind.SCHEMA_EXTENSION) continue;
    for (const directive of definition.directives ?? []) {
      if (directive.name.value !== 'link') continue;
      const args = argumentsOf(directive);
      if (typeof args.url !== 'string' || !COST_SPEC.test(args.url) || !Array.isArray(args.import)) continue;
      for (const entry of args.import) {
        // An import is "@cost" or { name: "@cost", as: "@weight" }.
        const item = entry as string | { name?: unknown; as?: unknown };
        const name = typeof item === 'string' ? item : item.name;
        const as = typeof item === 'string' ? item : (item.as ?? item.name);
        if (typeof name !== 'string' || typeof as !== 'string') continue;
        if (name === '@cost') names.cost.add(as.slice(1));
        if (name === '@listSize') names.listSize.add(as.slice(1));
      }
    }
  }
  return names;
}

/** A directive's arguments as plain values (lists, strings, numbers). */
export function argumentsOf(directive: DirectiveNode): Record<string, unknown> {
  return Object.fromEntries((directive.arguments ?? []).map((a) => [a.name.value, valueFromASTUntyped(a.value)]));
}

const stringList = (value: unknown): string[] | undefined =>
  Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : undefined;

/** Reads `@cost` and `@listSize` from a supergraph SDL (the API schema drops them) or a subgraph's. */
export function costDirectivesOf(sdl: string | DocumentNode): CostDirectives {
  const document = typeof sdl === 'string' ? parse(sdl, { noLocation: true }) : sdl;
  const names = directiveNames(document);
  const out = emptyCostDirectives();
  const weightOf = (directives: readonly DirectiveNode[] | undefined): number | undefined => {
    const cost = directives?.find((d) => names.cost.has(d.name.value));
    const weight = cost ? Number(argumentsOf(cost).weight) : NaN;
    return Number.isFinite(weight) ? weight : undefined;
  };
  for (const definition of document.definitions) {
    if (!('name' in definition) || !definition.name || definition.kind === Kind.DIRECTIVE_DEFINITION) continue;
    const typeName = definition.name.value;
    const typeWeight = weightOf('directives' in definition ? definition.directives : undefined);
    if (typeWeight !== undefined) out.typeWeight.set(typeName, typeWeight);
    if (!('fields' in definition) || !definition.fields) continue;
    for (const field of definition.fields) {
      const coordinate = `${typeName}.${field.name.value}`;
      const weight = weightOf(field.directives);
      if (weight !== undefined) out.fieldWeight.set(coordinate, weight);
      if (field.kind === Kind.FIELD_DEFINITION) {
        for (const arg of field.arguments ?? []) {
          const argWeight = weightOf(arg.directives);
          if (argWeight !== undefined) out.argumentWeight.set(`${coordinate}(${arg.name.value}:)`, argWeight);
        }
      }
      const listSize = field.directives?.find((d) => names.listSize.has(d.name.value));
      if (listSize) {
        const args = argumentsOf(listSize);
        const assumed = Number(args.assumedSize);
        const rule: ListSize = { requireOneSlicingArgument: args.requireOneSlicingArgument !== false };
        if (Number.isFinite(assumed)) rule.assumedSize = assumed;
        const slicing = stringList(args.slicingArguments);
        if (slicing?.length) rule.slicingArguments = slicing;
        const sized = stringList(args.sizedFields);
        if (sized?.length) rule.sizedFields = sized;
        out.listSize.set(coordinate, rule);
      }
    }
  }
  return out;
}

/** Settings of the estimate. */
export interface CostOptions {
  /** Size of a list field with no `@listSize`. @default 10 */
  defaultListSize: number;
  /**
   * In a subgraph: cost `_entities` per representation (size 1). The gateway's merge layer puts
   * several clients' representations in one fetch, so their number says nothing about one
   * client's demand; each representation's selection is what this bounds. @default false
   */
  perRepresentation?: boolean;
}

/** Thrown for an operation whose cost cannot be estimated as written (a slicing-argument rule broken). */
export class CostInputError extends GraphQLError {}

/** A size put on some child fields by a `@listSize(sizedFields:)` parent. */
interface Sized {
  fields: readonly string[];
  size: number;
}

/**
 * One operation's estimate. Linear in the document: every fragment's cost is computed once per
 * sized-field context and reused at each spread.
 */
class Estimator {
  private readonly fragments = new Map<string, FragmentDefinitionNode>();
  private readonly memo = new Map<string, number>();
  private readonly active = new Set<string>();
  /** The variables the estimate read, in the order it read them: a later request with the same values gets the same estimate. */
  readonly read = new Set<string>();

  constructor(
    private readonly schema: GraphQLSchema,
    document: DocumentNode,
    private readonly variables: Record<string, unknown>,
    private readonly variableDefaults: Map<string, ValueNode>,
    private readonly directives: CostDirectives,
    private readonly options: CostOptions,
  ) {
    for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) this.fragments.set(d.name.value, d);
  }

  operation(operation: OperationDefinitionNode): number {
    const root = this.schema.getRootType(operation.operation);
    if (!root) return 0;
    return capped((operation.operation === 'mutation' ? 10 : 0) + this.selections(operation.selectionSet, root, undefined));
  }

  private selections(set: SelectionSetNode, parent: GraphQLCompositeType, sized: Sized | undefined): number {
    let total = 0;
    for (const selection of set.selections) {
      if (!this.included(selection.directives)) continue;
      if (selection.kind === Kind.FIELD) {
        total = capped(total + this.field(selection, parent, sized));
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const type = selection.typeCondition ? this.schema.getType(selection.typeCondition.name.value) : parent;
        if (type && isCompositeType(type)) total = capped(total + this.selections(selection.selectionSet, type, sized));
      } else {
        total = capped(total + this.fragment(selection.name.value, sized));
      }
    }
    return total;
  }

  private fragment(name: string, sized: Sized | undefined): number {
    const key = sized ? `${name}\u0000${sized.fields.join(',')}\u0000${sized.size}` : name;
    const known = this.memo.get(key);
    if (known !== undefined) return known;
    const fragment = this.fragments.get(name);
    // Unknown fragments and cycles are validation errors already; cost them nothing here.
    if (!fragment || this.active.has(name)) return 0;
    const type = this.schema.getType(fragment.typeCondition.name.value);
    if (!type || !isCompositeType(type)) return 0;
    this.active.add(name);
    const cost = this.selections(fragment.selectionSet, type, sized);
    this.active.delete(name);
    this.memo.set(key, cost);
    return cost;
  }

  private field(node: FieldNode, parent: GraphQLCompositeType, sized: Sized | undefined): number {
    if (!isObjectType(parent) && !isInterfaceType(parent)) return 0;
    const definition = parent.getFields()[node.name.value];
    if (!definition) return 0; // __typename, or an unknown field (a validation error already)
    const coordinate = `${parent.name}.${definition.name}`;
    const named = getNamedType(definition.type);
    const weight =
      this.directives.fieldWeight.get(coordinate) ?? this.directives.typeWeight.get(named.name) ?? (isCompositeType(named) ? 1 : 0);
    let argumentsCost = 0;
    for (const arg of node.arguments ?? []) argumentsCost += this.directives.argumentWeight.get(`${coordinate}(${arg.name.value}:)`) ?? 0;

    const rule = this.directives.listSize.get(coordinate);
    const slicing = rule?.slicingArguments ? this.slicingSize(node, definition, rule, coordinate) : undefined;
    const ownSize = slicing ?? rule?.assumedSize;
    // A connection's size goes to its sized fields (edges), not to the connection object.
    const childSized = rule?.sizedFields ? { fields: rule.sizedFields, size: ownSize ?? this.options.defaultListSize } : undefined;
    const children = node.selectionSet && isCompositeType(named) ? this.selections(node.selectionSet, named, childSized) : 0;

    const multiplier = listDepth(definition.type);
    if (multiplier === 0) return argumentsCost + weight + children;
    if (this.options.perRepresentation && coordinate === `${this.schema.getQueryType()?.name ?? 'Query'}._entities`) {
      return argumentsCost + weight + children;
    }
    const fromParent = sized?.fields.includes(definition.name) ? sized.size : undefined;
    const size = fromParent ?? (rule?.sizedFields ? undefined : ownSize) ?? this.options.defaultListSize;
    // Lists of lists multiply once per level.
    const each = weight + children;
    // 0 items of something, or any number of free items, cost nothing (and Infinity x 0 is no number).
    return capped(argumentsCost + (each === 0 || size === 0 ? 0 : capped(size ** multiplier) * each));
  }

  /** The largest slicing argument given (or defaulted); breaking `requireOneSlicingArgument` is an error. */
  private slicingSize(node: FieldNode, definition: GraphQLField<unknown, unknown>, rule: ListSize, coordinate: string): number | undefined {
    const given = new Map((node.arguments ?? []).map((a): [string, ArgumentNode] => [a.name.value, a]));
    const sizes: number[] = [];
    for (const name of rule.slicingArguments ?? []) {
      const argNode = given.get(name);
      let value: unknown = argNode ? this.value(argNode.value) : undefined;
      if (value === undefined || value === null) value = definition.args.find((a) => a.name === name)?.defaultValue;
      if (typeof value === 'number' && Number.isFinite(value)) sizes.push(capped(Math.max(0, Math.floor(value))));
    }
    if (rule.requireOneSlicingArgument && sizes.length !== 1) {
      throw new CostInputError(
        `${coordinate} needs exactly one of its slicing arguments (${(rule.slicingArguments ?? []).join(', ')}); got ${sizes.length}.`,
        {
          extensions: { code: 'GRAPHQL_VALIDATION_FAILED', validationErrorCode: 'SLICING_ARGUMENT_REQUIRED', http: { status: 400 } },
        },
      );
    }
    return sizes.length > 0 ? Math.max(...sizes) : undefined;
  }

  /** A literal, or a variable's value (its default when not sent). */
  private value(node: ValueNode): unknown {
    if (node.kind !== Kind.VARIABLE) return valueFromASTUntyped(node);
    const name = node.name.value;
    this.read.add(name);
    if (name in this.variables) return this.variables[name];
    const fallback = this.variableDefaults.get(name);
    return fallback ? valueFromASTUntyped(fallback) : undefined;
  }

  /** `@skip(if:)` / `@include(if:)` with a condition known now; an unknown one counts the field (an upper bound). */
  private included(directives: readonly DirectiveNode[] | undefined): boolean {
    for (const directive of directives ?? []) {
      const name = directive.name.value;
      if (name !== 'skip' && name !== 'include') continue;
      const condition = directive.arguments?.find((a) => a.name.value === 'if');
      const value = condition ? this.value(condition.value) : undefined;
      if (name === 'skip' && value === true) return false;
      if (name === 'include' && value === false) return false;
    }
    return true;
  }
}

/**
 * Estimates stay finite: a `first` of 1e308 (the property test sent one) would otherwise make the
 * estimate Infinity, which neither JSON nor a metric can carry. Anything this large is refused.
 */
const capped = (value: number): number => (Number.isNaN(value) ? Number.MAX_SAFE_INTEGER : Math.min(value, Number.MAX_SAFE_INTEGER));

function listDepth(type: GraphQLType): number {
  let depth = 0;
  let current = getNullableType(type);
  while (isListType(current)) {
    depth++;
    current = getNullableType(current.ofType);
  }
  return depth;
}

/** Estimates kept per operation node: the inputs they were made with and, by the values of the variables they read, the cost. */
interface KeptEstimates {
  schema: GraphQLSchema;
  directives: CostDirectives;
  defaultListSize: number;
  perRepresentation: boolean;
  read: readonly string[];
  costs: Map<string, number>;
}
const kept = new WeakMap<OperationDefinitionNode, KeptEstimates>();
/** Per operation, estimates kept for this many combinations of the variables they read (a page size, a condition). */
const KEPT_PER_OPERATION = 32;

/**
 * The static cost estimate of `operation` in `document`. Throws {@link CostInputError} for a broken
 * slicing rule. Kept per parsed operation, schema, directives and the values of the variables the
 * estimate reads: a document served again costs a look-up, not a walk.
 */
export function estimateCost(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Record<string, unknown>,
  directives: CostDirectives,
  options: CostOptions = { defaultListSize: 10 },
): number {
  const perRepresentation = options.perRepresentation ?? false;
  let entry = kept.get(operation);
  if (
    entry &&
    (entry.schema !== schema ||
      entry.directives !== directives ||
      entry.defaultListSize !== options.defaultListSize ||
      entry.perRepresentation !== perRepresentation)
  ) {
    entry = undefined;
  }
  const keyOf = (read: readonly string[]) =>
    read.length === 0 ? '' : JSON.stringify(read.map((name) => (name in variables ? [variables[name]] : [])));
  const known = entry?.costs.get(keyOf(entry.read));
  if (known !== undefined) return known;
  const defaults = new Map<string, ValueNode>();
  for (const v of operation.variableDefinitions ?? []) if (v.defaultValue) defaults.set(v.variable.name.value, v.defaultValue);
  const estimator = new Estimator(schema, document, variables, defaults, directives, options);
  const cost = estimator.operation(operation);
  const read = [...estimator.read];
  if (!entry || entry.read.join(',') !== read.join(',')) {
    entry = { schema, directives, defaultListSize: options.defaultListSize, perRepresentation, read, costs: new Map() };
    kept.set(operation, entry);
  }
  if (entry.costs.size < KEPT_PER_OPERATION) entry.costs.set(keyOf(entry.read), cost);
  return cost;
}

/**
 * The actual cost of a response: the same weights, counted over what came back (each object
 * returned costs its weight once; lists cost what they hold, not their estimated size).
 */
export function actualCost(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  data: Record<string, unknown> | null | undefined,
  directives: CostDirectives,
): number {
  const root = schema.getRootType(operation.operation);
  if (!root || !data) return operation.operation === 'mutation' ? 10 : 0;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);

  const objectCost = (set: SelectionSetNode, parent: GraphQLCompositeType, value: Record<string, unknown>, seen: Set<string>): number => {
    let total = 0;
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        const responseName = selection.alias?.value ?? selection.name.value;
        // The same response key selected again (through a fragment) is one value: count it once.
        if (seen.has(responseName) || (!isObjectType(parent) && !isInterfaceType(parent))) continue;
        seen.add(responseName);
        const definition = parent.getFields()[selection.name.value];
        if (!definition) continue;
        const named = getNamedType(definition.type);
        const weight =
          directives.fieldWeight.get(`${parent.name}.${definition.name}`) ??
          directives.typeWeight.get(named.name) ??
          (isCompositeType(named) ? 1 : 0);
        total += valueCost(value[responseName], weight, selection.selectionSet, named);
      } else {
        const set2 = selection.kind === Kind.INLINE_FRAGMENT ? selection.selectionSet : fragments.get(selection.name.value)?.selectionSet;
        const conditionName =
          selection.kind === Kind.INLINE_FRAGMENT
            ? selection.typeCondition?.name.value
            : fragments.get(selection.name.value)?.typeCondition.name.value;
        const type = conditionName ? schema.getType(conditionName) : parent;
        if (set2 && type && isCompositeType(type)) total += objectCost(set2, type, value, seen);
      }
    }
    return total;
  };
  const valueCost = (value: unknown, weight: number, set: SelectionSetNode | undefined, named: ReturnType<typeof getNamedType>): number => {
    if (value === null || value === undefined) return 0;
    if (Array.isArray(value)) return value.reduce((sum: number, item) => sum + valueCost(item, weight, set, named), 0);
    if (set && isCompositeType(named) && typeof value === 'object') {
      const typename = (value as { __typename?: unknown }).__typename;
      const concrete = typeof typename === 'string' ? schema.getType(typename) : undefined;
      const type = concrete && isCompositeType(concrete) ? concrete : named;
      return weight + objectCost(set, type, value as Record<string, unknown>, new Set());
    }
    return weight;
  };
  return (operation.operation === 'mutation' ? 10 : 0) + objectCost(operation.selectionSet, root, data, new Set());
}

/** How the cost limit acts. */
export type CostMode = 'enforce' | 'measure';

export interface DemandControlOptions {
  /** Operations estimated above this are refused (`enforce`) or only counted (`measure`). */
  maxCost: number;
  /** @default 'enforce' */
  mode: CostMode;
  /** Also compute the actual cost of each response into `extensions.cost.actual`. @default false */
  reportActual: boolean;
  /** @default 10 */
  defaultListSize: number;
  /** The cost directives of the supergraph now being served (they change on reload). */
  directives: () => CostDirectives;
  metrics?: Metrics;
  /** Add `extensions.cost` to responses (the gateway does; a subgraph need not). @default true */
  report?: boolean;
  /** See {@link CostOptions.perRepresentation}. @default false */
  perRepresentation?: boolean;
}

/**
 * The default cost limit (`MAX_COST`): the storefront's operations in operations/ cost at most a
 * few hundred at their default sizes (gateway/test/cost.test.ts prints them); 5000 admits them with
 * room to spare and refuses nested lists of lists (the four levels of
 * `topProducts(first: 100) { reviews(first: 100) { ... } }` are estimated at over 10^8).
 */
export const defaultMaxCost = 5000;

/** The `extensions.code` of an operation refused by the cost limit. */
export const COST_ESTIMATED_TOO_EXPENSIVE = 'COST_ESTIMATED_TOO_EXPENSIVE';

/**
 * The demand-control plugin: estimates each operation once it is resolved (after parsing, the
 * document limits and validation; before the response cache, the planner and any subgraph), refuses
 * it over `maxCost` in `enforce` mode, and reports `extensions.cost` on every response.
 */
export function demandControlPlugin<TContext extends BaseContext>(options: DemandControlOptions): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      let estimated: number | undefined;
      return {
        async didResolveOperation({ document, operation, schema, request }) {
          if (!operation) return; // no operation to run: reported as OPERATION_RESOLUTION_FAILURE
          estimated = estimateCost(schema, document, operation, request.variables ?? {}, options.directives(), {
            defaultListSize: options.defaultListSize,
            perRepresentation: options.perRepresentation ?? false,
          });
          const over = estimated > options.maxCost;
          options.metrics?.costEstimated.observe(
            { result: over ? (options.mode === 'enforce' ? 'too_expensive' : 'measured_over') : 'ok' },
            estimated,
          );
          if (over && options.mode === 'enforce') {
            throw new GraphQLError(
              `The operation's estimated cost is ${estimated}; the limit is ${options.maxCost}. Ask for fewer items (first) or fewer nested lists.`,
              {
                extensions: { code: COST_ESTIMATED_TOO_EXPENSIVE, cost: { estimated, max: options.maxCost }, http: { status: 400 } },
              },
            );
          }
        },
        async willSendResponse({ response, document, operation, schema }) {
          if (estimated === undefined || response.body.kind !== 'single' || options.report === false) return;
          const result = response.body.singleResult;
          const cost: Record<string, unknown> = { estimated, max: options.maxCost, mode: options.mode };
          if (options.reportActual && document && operation) {
            cost.actual = actualCost(schema, document, operation, result.data, options.directives());
          }
          result.extensions = { ...result.extensions, cost };
        },
      };
    },
  };
}
