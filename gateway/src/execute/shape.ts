// Result shaping: from the data the plan's fetches merged (every subgraph's fields, keys and
// `__typename`s the client did not ask for, in fetch order) to the response the client asked
// for, in its selection's order, with null propagation.
//
// It gives the answers of @apollo/gateway's `computeResponse` (resultShaping.ts), errors and their
// messages included, but compiles the operation once instead of walking federation-internals'
// `Operation` on every request: per document, operation and `@skip`/`@include` outcome, each
// selection set is collected once per runtime type into a flat list of fields (as graphql-js's
// `collectFields` does), so a request only walks its data. In the deep workload Apollo's shaping
// was 7% of the gateway's CPU (bench `--profile`), and building the `Operation` it walks another 2%.
import {
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLEnumType,
  type GraphQLError,
  type GraphQLNamedType,
  type GraphQLOutputType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type SelectionNode,
  GraphQLIncludeDirective,
  GraphQLSkipDirective,
  Kind,
  OperationTypeNode,
  executeSync,
  getDirectiveValues,
  getNamedType,
  isCompositeType,
  isEnumType,
  isListType,
  isNonNullType,
  isObjectType,
  isScalarType,
  isTypeSubTypeOf,
} from 'graphql';
import { ERRORS } from '@apollo/federation-internals';

type Path = Array<string | number>;
type Data = Record<string, unknown>;

/** One response key of an object: every field of the selection (after fragments) that answers to it. */
interface ShapeField {
  readonly responseName: string;
  /** An alias `__proto__`: written as an own property (assigning it would set the object's prototype). */
  readonly proto: boolean;
  readonly kind: 'value' | 'typename' | 'introspection';
  /** The field's type in the API schema (`value` fields only). */
  readonly type: GraphQLOutputType | undefined;
  /** The type the field was selected on (its enclosing fragment's condition, else the object's): error messages name it. */
  readonly parent: GraphQLCompositeType;
  /** Every node of the field: their sub-selections are one merged selection. */
  readonly nodes: FieldNode[];
  /** The sub-selection collected per runtime type (`''`: the object has no `__typename`). */
  readonly children: Map<string, ShapeField[]>;
}

/** The values of the variables the operation's `@skip`/`@include` read (a prototype-less object, as graphql-js reads variables). */
type Conditions = Readonly<Record<string, boolean>>;
const NO_CONDITIONS: Conditions = Object.freeze(Object.create(null) as Record<string, boolean>);

/** The shaper of one operation: compiled per outcome of its conditions, on first use. */
export class OperationShaper {
  /** Every variable a `@skip` or `@include` of the operation reads, in a fixed order. */
  private readonly conditionVariables: string[];
  /** Root fields per condition outcome ('' when the operation has none). */
  private readonly roots = new Map<string, ShapeField[]>();
  private readonly fragments: Record<string, FragmentDefinitionNode>;
  private readonly rootType: GraphQLCompositeType;

  constructor(
    private readonly schema: GraphQLSchema,
    document: DocumentNode,
    private readonly operation: OperationDefinitionNode,
  ) {
    this.fragments = Object.create(null) as Record<string, FragmentDefinitionNode>;
    for (const definition of document.definitions) {
      if (definition.kind === Kind.FRAGMENT_DEFINITION) this.fragments[definition.name.value] = definition;
    }
    const variables = new Set<string>();
    const visitSet = (set: SelectionSetNode, seen: Set<string>) => {
      for (const selection of set.selections) {
        for (const directive of selection.directives ?? []) {
          if (directive.name.value !== 'skip' && directive.name.value !== 'include') continue;
          const value = directive.arguments?.find((a) => a.name.value === 'if')?.value;
          if (value?.kind === Kind.VARIABLE) variables.add(value.name.value);
        }
        if (selection.kind === Kind.FRAGMENT_SPREAD) {
          const name = selection.name.value;
          const fragment = this.fragments[name];
          if (fragment && !seen.has(name)) {
            seen.add(name);
            visitSet(fragment.selectionSet, seen);
          }
        } else if (selection.selectionSet) visitSet(selection.selectionSet, seen);
      }
    };
    visitSet(operation.selectionSet, new Set());
    this.conditionVariables = [...variables].sort();
    const rootType = schema.getRootType(operation.operation);
    if (!rootType) throw new Error(`The schema has no ${operation.operation} type`);
    this.rootType = rootType;
  }

  /**
   * The response for `input` (the plan's merged data): `errors` are the shaping's own (a null for
   * a non-null field, an invalid leaf or `__typename`), as `computeResponse` reports them. Throws,
   * as it does, when the data cannot be shaped at all (a list where an object belongs, and so on).
   * `variables` are the request's, coerced and defaulted.
   */
  shape(input: Data | null, variables: Readonly<Record<string, unknown>>, rawVariables: Readonly<Record<string, unknown>> | undefined) {
    // As computeResponse: no data at all stays as it is (the plan always makes an object).
    if (!input) return { data: input, errors: [] as GraphQLError[] };
    const conditions = this.conditionsOf(variables);
    const key = this.conditionVariables.map((v) => (conditions[v] ? '1' : '0')).join('');
    let root = this.roots.get(key);
    if (!root) {
      root = this.collect([this.operation.selectionSet], undefined, this.rootType, this.rootType, conditions);
      // Bounded: a document with many condition variables has many outcomes; past a few, each is compiled per request.
      if (this.roots.size < MAX_OUTCOMES) this.roots.set(key, root);
    }
    const run = new ShapeRun(this, conditions, rawVariables);
    const data: Data = {};
    const bubbled = run.applyFields(input, root, data) === BUBBLE;
    return { data: bubbled ? null : data, errors: run.errors };
  }

  private conditionsOf(variables: Readonly<Record<string, unknown>>): Conditions {
    if (this.conditionVariables.length === 0) return NO_CONDITIONS;
    const conditions = Object.create(null) as Record<string, boolean>;
    for (const name of this.conditionVariables) {
      const value = variables[name];
      // As computeResponse's assertion: a condition variable is a Boolean by the time shaping runs.
      if (typeof value !== 'boolean') throw new Error(`Unexpected value ${String(value)} for variable $${name} of a @skip or @include`);
      conditions[name] = value;
    }
    return conditions;
  }

  /**
   * The fields of `sets` for an object of runtime type `typed` (undefined: it has no `__typename`),
   * merged by response name. Fields are looked up on `declared` (the type the sets select on);
   * messages name `runtime` (the object's type as computeResponse sees it) or a fragment's condition.
   */
  collect(
    sets: readonly SelectionSetNode[],
    typed: GraphQLNamedType | undefined,
    declared: GraphQLCompositeType,
    runtime: GraphQLCompositeType,
    conditions: Conditions,
  ): ShapeField[] {
    const byName = new Map<string, { -readonly [K in keyof ShapeField]: ShapeField[K] }>();
    const visit = (set: SelectionSetNode, selectedOn: GraphQLCompositeType, parent: GraphQLCompositeType) => {
      for (const selection of set.selections) {
        if (!included(selection, conditions)) continue;
        if (selection.kind === Kind.FIELD) {
          const responseName = selection.alias?.value ?? selection.name.value;
          const existing = byName.get(responseName);
          if (existing) {
            existing.nodes.push(selection);
            continue;
          }
          const name = selection.name.value;
          const kind = name === '__typename' ? 'typename' : name === '__schema' || name === '__type' ? 'introspection' : ('value' as const);
          let type: GraphQLOutputType | undefined;
          if (kind === 'value') {
            const definition = 'getFields' in selectedOn ? selectedOn.getFields()[name] : undefined;
            if (!definition) throw new Error(`Cannot query field "${name}" on type "${selectedOn.name}"`);
            type = definition.type;
          }
          const proto = responseName === '__proto__';
          byName.set(responseName, { responseName, proto, kind, type, parent, nodes: [selection], children: new Map() });
          continue;
        }
        const fragment = selection.kind === Kind.INLINE_FRAGMENT ? selection : this.fragments[selection.name.value];
        if (!fragment) throw new Error(`Unknown fragment "${selection.kind === Kind.FRAGMENT_SPREAD ? selection.name.value : ''}"`);
        let condition: GraphQLCompositeType | undefined;
        if (fragment.typeCondition) {
          const named = this.schema.getType(fragment.typeCondition.name.value);
          if (!named || !isCompositeType(named)) throw new Error(`Unknown type "${fragment.typeCondition.name.value}"`);
          condition = named;
        }
        // federation-internals' `isSubtype` for named types is graphql-js's `isTypeSubTypeOf`.
        if (condition && !isTypeSubTypeOf(this.schema, typed ?? parent, condition)) continue;
        visit(fragment.selectionSet, condition ?? selectedOn, condition ?? parent);
      }
    };
    for (const set of sets) visit(set, declared, runtime);
    return [...byName.values()];
  }

  /** The sub-fields of `field` for an object whose `__typename` is `typename` (`runtime`: its type, else the field's). */
  childrenOf(field: ShapeField, typename: string | undefined, runtime: GraphQLCompositeType, conditions: Conditions) {
    const key = typename ?? '';
    let children = field.children.get(key);
    if (!children) {
      const typed = typename === undefined ? undefined : this.schema.getType(typename);
      const sets: SelectionSetNode[] = [];
      for (const node of field.nodes) if (node.selectionSet) sets.push(node.selectionSet);
      children = this.collect(sets, typed, getNamedType(field.type) as GraphQLCompositeType, runtime, conditions);
      // Runtime types come from the schema: at most one entry per type (and one without).
      if (typename === undefined || typed) field.children.set(key, children);
    }
    return children;
  }

  typeNamed(name: string): GraphQLNamedType | undefined {
    return this.schema.getType(name);
  }

  /** An introspection field, run by graphql-js against the API schema, as computeResponse does. */
  introspect(field: ShapeField, rawVariables: Readonly<Record<string, unknown>> | undefined): unknown {
    const document: DocumentNode = {
      kind: Kind.DOCUMENT,
      definitions: [
        { ...this.operation, operation: OperationTypeNode.QUERY, selectionSet: { kind: Kind.SELECTION_SET, selections: field.nodes } },
        ...Object.values(this.fragments),
      ],
    };
    const { data, errors } = executeSync({ schema: this.schema, document, rootValue: {}, variableValues: rawVariables });
    if ((errors && errors.length > 0) || !data) {
      throw new Error(`Introspection query for ${field.responseName} should not have failed but got ${JSON.stringify(errors)}`);
    }
    return Object.hasOwn(data, field.responseName) ? data[field.responseName] : undefined;
  }
}

/** Compiled outcomes kept per operation; more are compiled per request. */
const MAX_OUTCOMES = 16;

const BUBBLE = Symbol('null bubbles up');

/** graphql-js's own reading of `@skip` and `@include` (its `shouldIncludeNode`), with the outcome's condition values. */
function included(node: SelectionNode, conditions: Conditions): boolean {
  if (!node.directives || node.directives.length === 0) return true;
  if (getDirectiveValues(GraphQLSkipDirective, node, conditions)?.if === true) return false;
  return getDirectiveValues(GraphQLIncludeDirective, node, conditions)?.if !== false;
}

/**
 * Responses are plain objects (one hidden class per selection: built and serialised faster than
 * computeResponse's prototype-less ones); an alias `__proto__` is defined, not assigned.
 */
function put(output: Data, field: ShapeField, value: unknown): void {
  if (field.proto) Object.defineProperty(output, field.responseName, { value, enumerable: true, writable: true, configurable: true });
  else output[field.responseName] = value;
}

/** One request's shaping: the errors it found and the path it is at. */
class ShapeRun {
  readonly errors: GraphQLError[] = [];
  private readonly path: Path = [];
  /** Whether the value just shaped carried an error already (so its non-null parent adds none). */
  private hasErrors = false;

  constructor(
    private readonly shaper: OperationShaper,
    private readonly conditions: Conditions,
    private readonly rawVariables: Readonly<Record<string, unknown>> | undefined,
  ) {}

  applyFields(input: Data, fields: readonly ShapeField[], output: Data): typeof BUBBLE | undefined {
    for (const field of fields) {
      const name = field.responseName;
      if (field.kind === 'introspection') {
        put(output, field, this.shaper.introspect(field, this.rawVariables));
        continue;
      }
      let value: unknown = Object.hasOwn(input, name) ? (input[name] ?? null) : null;
      if (field.kind === 'typename') {
        if (value === null && name !== '__typename') value = input.__typename ?? null;
        const type = typeof value === 'string' ? (this.shaper.typeNamed(value) ?? field.parent) : field.parent;
        if (!isObjectType(type)) return BUBBLE;
        put(output, field, type.name);
        continue;
      }
      this.path.push(name);
      const shaped = this.value(value, field.type as GraphQLOutputType, field, field.parent);
      this.path.pop();
      if (shaped === BUBBLE) {
        put(output, field, null);
        return BUBBLE;
      }
      put(output, field, shaped);
    }
    return undefined;
  }

  /** computeResponse's `updateOutputValue` for a value seen once: the shaped value, or BUBBLE (null, and its parent is invalid). */
  private value(input: unknown, type: GraphQLOutputType, field: ShapeField, parent: GraphQLCompositeType): unknown {
    if (isNonNullType(type)) {
      const shaped = this.value(input, type.ofType, field, parent);
      if (shaped === null || shaped === BUBBLE) {
        if (!this.hasErrors) {
          this.errors.push(
            ERRORS.INVALID_GRAPHQL.err(`Cannot return null for non-nullable ${this.describe(type.ofType, parent)}.`, {
              path: [...this.path],
            }),
          );
        }
        this.hasErrors = true;
        return BUBBLE;
      }
      this.hasErrors = false;
      return shaped;
    }
    this.hasErrors = false;
    if (input === null || input === undefined) return null;
    if (isListType(type)) {
      if (!Array.isArray(input))
        throw new Error(`Invalid non-list value ${text(input)} returned by subgraph for list type ${String(type)}`);
      const items = input as unknown[];
      const out = new Array<unknown>(items.length);
      let nullify = false;
      let hasErrors = false;
      for (let i = 0; i < items.length; i++) {
        this.path.push(i);
        const item = items[i];
        if (item === undefined) throw new Error('Should not pass undefined for `inputValue` to this method');
        const shaped = this.value(item, type.ofType, field, parent);
        this.path.pop();
        if (shaped === BUBBLE) {
          nullify = true;
          out[i] = null;
        } else out[i] = shaped;
        hasErrors ||= this.hasErrors;
      }
      this.hasErrors = hasErrors;
      return nullify ? null : out;
    }
    if (isCompositeType(type)) {
      if (typeof input !== 'object') {
        throw new Error(`Invalid non-object value ${text(input)} returned by subgraph for composite type ${String(type)}`);
      }
      const object = input as Data;
      const typename = object.__typename;
      if (typename !== undefined && typeof typename !== 'string') {
        throw new Error(`Invalid non-string value ${text(typename)} for __typename at ${this.path.join(',')}`);
      }
      let declared: GraphQLCompositeType = type;
      if (typename) {
        const named = this.shaper.typeNamed(typename);
        if (!named || !isCompositeType(named)) {
          this.errors.push(
            ERRORS.INVALID_GRAPHQL.err(`Invalid __typename found for object at ${this.describe(type, parent)}.`, { path: [...this.path] }),
          );
          this.hasErrors = true;
          return null;
        }
        declared = named;
      }
      const fields = this.shaper.childrenOf(field, typename || undefined, declared, this.conditions);
      const output: Data = {};
      const bubbled = this.applyFields(object, fields, output) === BUBBLE;
      this.hasErrors = bubbled;
      return bubbled ? null : output;
    }
    const named = getNamedType(type);
    if (!isValidLeafValue(input, named)) {
      this.errors.push(ERRORS.INVALID_GRAPHQL.err(`Invalid value found for ${this.describe(type, parent)}.`, { path: [...this.path] }));
      this.hasErrors = true;
      return null;
    }
    return input;
  }

  private describe(type: GraphQLOutputType, parent: GraphQLCompositeType): string {
    const last = this.path[this.path.length - 1];
    return typeof last === 'string' ? `field ${parent.name}.${last}` : `array element of type ${String(type)} at index ${String(last)}`;
  }
}

/** A value as a template string shows it (the messages are computeResponse's). */
function text(value: unknown): string {
  if (typeof value !== 'object' || value === null) return String(value);
  return Array.isArray(value) ? value.map(text).join(',') : '[object Object]';
}

const INTEGER = /^-?(?:0|[1-9][0-9]*)$/;

type LeafKind = 'custom' | 'enum' | 'Int' | 'Float' | 'String' | 'Boolean' | 'ID';
const SPECIFIED = new Set(['Int', 'Float', 'String', 'Boolean', 'ID']);
/** Per leaf type of the schemas served: what it accepts (graphql-js's `isSpecifiedScalarType` is a search per call). */
const leafKinds = new WeakMap<GraphQLNamedType, LeafKind>();

function leafKindOf(type: GraphQLNamedType): LeafKind {
  let kind = leafKinds.get(type);
  if (!kind) {
    kind = isEnumType(type) ? 'enum' : isScalarType(type) && SPECIFIED.has(type.name) ? (type.name as LeafKind) : 'custom';
    leafKinds.set(type, kind);
  }
  return kind;
}

/** federation-internals' `isValidLeafValue`: what a subgraph may answer for a scalar or enum. */
function isValidLeafValue(value: unknown, type: GraphQLNamedType): boolean {
  const kind = leafKindOf(type);
  if (kind === 'custom') return true;
  if (typeof value === 'boolean') return kind === 'Boolean';
  if (typeof value === 'number' && Number.isFinite(value)) {
    if (kind === 'Int' || kind === 'ID') return INTEGER.test(String(value));
    return kind === 'Float';
  }
  if (typeof value === 'string') {
    if (kind === 'enum') return (type as GraphQLEnumType).getValue(value) !== undefined;
    return kind !== 'Boolean' && kind !== 'Int' && kind !== 'Float';
  }
  return false;
}
