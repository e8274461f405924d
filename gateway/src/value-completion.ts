import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import {
  type DirectiveNode,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLFormattedError,
  type GraphQLOutputType,
  type GraphQLSchema,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
  getNamedType,
  getNullableType,
  isAbstractType,
  isCompositeType,
  isListType,
  isNonNullType,
  isObjectType,
  isUnionType,
  parse,
} from 'graphql';

/**
 * The `extensions.code` of a null the gateway put in place of a value a subgraph owed: the
 * subgraph answered null (or nothing) for a non-null field, and the null went up to the nearest
 * nullable parent.
 */
export const SUBGRAPH_NON_NULL_VIOLATION = 'SUBGRAPH_NON_NULL_VIOLATION';

type Path = ReadonlyArray<string | number>;
/** Which subgraphs can resolve each field, by `Type.field`, read from the supergraph's join directives. */
type Owners = ReadonlyMap<string, ReadonlySet<string>>;

const argument = (directive: DirectiveNode, name: string): string | boolean | undefined => {
  const value = directive.arguments?.find((a) => a.name.value === name)?.value;
  if (!value) return undefined;
  if (value.kind === Kind.STRING || value.kind === Kind.ENUM) return value.value;
  if (value.kind === Kind.BOOLEAN) return value.value;
  return undefined;
};

/**
 * Who resolves each field of the supergraph. A field with `@join__field` directives is resolved
 * where one of them is neither `external` nor `usedOverridden`; a field without any, by every
 * subgraph that declares its type (`@join__type`). That is the join spec's rule, which the
 * query planner follows too.
 */
export function fieldOwners(supergraphSdl: string): Owners {
  const document = parse(supergraphSdl, { noLocation: true });
  const graphNames = new Map<string, string>();
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.ENUM_TYPE_DEFINITION || definition.name.value !== 'join__Graph') continue;
    for (const value of definition.values ?? []) {
      const name = value.directives?.find((d) => d.name.value === 'join__graph');
      const subgraph = name && argument(name, 'name');
      if (typeof subgraph === 'string') graphNames.set(value.name.value, subgraph);
    }
  }
  const graphOf = (directive: DirectiveNode): string | undefined => {
    const graph = argument(directive, 'graph');
    return typeof graph === 'string' ? (graphNames.get(graph) ?? graph) : undefined;
  };

  const owners = new Map<string, Set<string>>();
  for (const definition of document.definitions) {
    if (
      definition.kind !== Kind.OBJECT_TYPE_DEFINITION &&
      definition.kind !== Kind.OBJECT_TYPE_EXTENSION &&
      definition.kind !== Kind.INTERFACE_TYPE_DEFINITION &&
      definition.kind !== Kind.INTERFACE_TYPE_EXTENSION
    ) {
      continue;
    }
    const typeGraphs = (definition.directives ?? [])
      .filter((d) => d.name.value === 'join__type')
      .map(graphOf)
      .filter((g): g is string => g !== undefined);
    for (const field of definition.fields ?? []) {
      const joins = (field.directives ?? []).filter((d) => d.name.value === 'join__field');
      const graphs = joins.length
        ? joins
            .filter((d) => argument(d, 'external') !== true && argument(d, 'usedOverridden') !== true)
            .map(graphOf)
            .filter((g): g is string => g !== undefined)
        : typeGraphs;
      const coordinate = `${definition.name.value}.${field.name.value}`;
      const set = owners.get(coordinate) ?? new Set<string>();
      for (const graph of graphs) set.add(graph);
      owners.set(coordinate, set);
    }
  }
  return owners;
}

const NON_NULLABLE_FIELD = /non-nullable field (\w+)\.(\w+)/;

/** Apollo's note for one null it bubbled: a GraphQLError, or its JSON form once serialised. */
interface CompletionNote {
  message: string;
  path?: Path;
}

const isNote = (value: unknown): value is CompletionNote =>
  typeof value === 'object' && value !== null && typeof (value as { message?: unknown }).message === 'string';

/** What the walk needs of the request. */
interface Walk {
  schema: GraphQLSchema;
  owners: Owners;
  fragments: ReadonlyMap<string, FragmentDefinitionNode>;
  /** The pathless error of each failed subgraph, by its name. */
  failed: ReadonlyMap<string, GraphQLFormattedError>;
  /** Found: the failed subgraph's error, at the path of each field it owed. */
  found: Map<string, { path: Path; error: GraphQLFormattedError }>;
}

/** The failed subgraph's error when every subgraph that could resolve `Type.field` failed. */
function failedOwner(walk: Walk, typeName: string, fieldName: string): GraphQLFormattedError | undefined {
  const owners = walk.owners.get(`${typeName}.${fieldName}`);
  if (!owners || owners.size === 0) return undefined;
  let error: GraphQLFormattedError | undefined;
  for (const owner of owners) {
    const failed = walk.failed.get(owner);
    if (!failed) return undefined;
    error ??= failed;
  }
  return error;
}

/** The fields a selection set asks of an object of type `typeName`, fragments expanded. */
function fieldsOf(walk: Walk, selectionSet: SelectionSetNode, type: GraphQLCompositeType, typeName: string | undefined): FieldNode[] {
  const fields: FieldNode[] = [];
  const applies = (condition: string | undefined): boolean => {
    if (condition === undefined || condition === type.name) return true;
    // An abstract type whose runtime type the response does not show: fragments on a concrete
    // type cannot be matched, so only the fields the abstract type has are followed.
    return typeName !== undefined && condition === typeName;
  };
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) fields.push(selection);
    else if (selection.kind === Kind.INLINE_FRAGMENT) {
      if (applies(selection.typeCondition?.name.value)) fields.push(...fieldsOf(walk, selection.selectionSet, type, typeName));
    } else {
      const fragment = walk.fragments.get(selection.name.value);
      if (fragment && applies(fragment.typeCondition.name.value)) fields.push(...fieldsOf(walk, fragment.selectionSet, type, typeName));
    }
  }
  return fields;
}

/**
 * Below a null of type `type`: the path (relative) to a non-null field a failed subgraph owed,
 * through non-null objects only, whose missing value the null stands for. Undefined when the
 * null is not explained by a failure (a null the subgraph chose, or one behind a list).
 */
function failedBelow(
  walk: Walk,
  selectionSet: SelectionSetNode,
  type: GraphQLCompositeType,
): { path: Path; error: GraphQLFormattedError } | undefined {
  if (!isObjectType(type)) return undefined;
  for (const field of fieldsOf(walk, selectionSet, type, undefined)) {
    const definition = type.getFields()[field.name.value];
    if (!definition || !isNonNullType(definition.type)) continue;
    const responseName = field.alias?.value ?? field.name.value;
    const error = failedOwner(walk, type.name, field.name.value);
    if (error) return { path: [responseName], error };
    const inner = getNullableType(definition.type);
    if (field.selectionSet && isCompositeType(inner)) {
      const below = failedBelow(walk, field.selectionSet, inner);
      if (below) return { path: [responseName, ...below.path], error: below.error };
    }
  }
  return undefined;
}

function record(walk: Walk, path: Path, error: GraphQLFormattedError): void {
  const key = JSON.stringify(path);
  if (!walk.found.has(key)) walk.found.set(key, { path, error });
}

/** A null at `path` of type `type`: the field a failed subgraph owed under it, if any. */
function explainNull(walk: Walk, path: Path, type: GraphQLOutputType, field: FieldNode): void {
  const named = getNamedType(type);
  if (!field.selectionSet || !isCompositeType(named) || isListType(getNullableType(type))) return;
  const below = failedBelow(walk, field.selectionSet, named);
  if (below) record(walk, [...path, ...below.path], below.error);
}

function visitValue(walk: Walk, value: unknown, type: GraphQLOutputType, field: FieldNode, path: Path): void {
  if (value === null || value === undefined) {
    explainNull(walk, path, type, field);
    return;
  }
  const nullable = getNullableType(type);
  if (isListType(nullable)) {
    if (!Array.isArray(value)) return;
    value.forEach((item, index) => visitValue(walk, item, nullable.ofType, field, [...path, index]));
    return;
  }
  if (!field.selectionSet || !isCompositeType(nullable) || typeof value !== 'object') return;
  visitObject(walk, value as Record<string, unknown>, nullable, field.selectionSet, path);
}

function visitObject(
  walk: Walk,
  value: Record<string, unknown>,
  type: GraphQLCompositeType,
  selectionSet: SelectionSetNode,
  path: Path,
): void {
  const typename = typeof value.__typename === 'string' ? value.__typename : undefined;
  let runtime: GraphQLCompositeType = type;
  if (isAbstractType(type) && typename) {
    const concrete = walk.schema.getType(typename);
    if (concrete && isObjectType(concrete)) runtime = concrete;
  }
  // A union's members are only reached through fragments, which need the runtime type.
  const fieldDefinitions = isUnionType(runtime) ? {} : runtime.getFields();
  for (const field of fieldsOf(walk, selectionSet, runtime, typename)) {
    const name = field.name.value;
    if (name.startsWith('__')) continue;
    const definition = fieldDefinitions[name];
    if (!definition) continue;
    const responseName = field.alias?.value ?? name;
    const fieldPath = [...path, responseName];
    const fieldValue = value[responseName];
    if (fieldValue === null || fieldValue === undefined) {
      const error = failedOwner(walk, runtime.name, name);
      if (error) record(walk, fieldPath, error);
      else explainNull(walk, fieldPath, definition.type, field);
      continue;
    }
    visitValue(walk, fieldValue, definition.type, field, fieldPath);
  }
}

/**
 * Every null in `data` that stands for a value a failed subgraph owed, with that subgraph's error
 * at the path of the field it owed (the field itself, or the non-null field under the null).
 */
function locateFailures(
  schema: GraphQLSchema,
  owners: Owners,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  data: Record<string, unknown>,
  failed: ReadonlyMap<string, GraphQLFormattedError>,
): { path: Path; error: GraphQLFormattedError }[] {
  const root = schema.getRootType(operation.operation);
  if (!root) return [];
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions)
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  const walk: Walk = { schema, owners, fragments, failed, found: new Map() };
  visitObject(walk, data, root, operation.selectionSet, []);
  return [...walk.found.values()];
}

/**
 * Makes every null the gateway put in place of a subgraph's data show in `errors`, with a path,
 * so a client can tell missing data from absent data:
 *
 * - @apollo/gateway reports a subgraph's null in a non-null field (which it bubbles up to the
 *   nearest nullable parent) only in `extensions.valueCompletion`, and only when the request had
 *   no other error. Each such note becomes an error at its path with the code
 *   {@link SUBGRAPH_NON_NULL_VIOLATION} and, when one subgraph owns the field, its `serviceName`;
 *   the note itself is removed.
 * - A subgraph request that failed as a whole (SUBGRAPH_UNAVAILABLE and the like) comes back as
 *   one error without a path. Its copies are put at the path of every field of that subgraph
 *   that is null in the response (or of the non-null field under a null it caused), in its
 *   place; an error nothing in the response can be traced to stays as it was.
 *
 * Which subgraph resolves a field is read from the supergraph (its join directives) at each
 * load. Place it before the response cache plugin: a response with these errors is not cached.
 */
export function valueCompletionPlugin<TContext extends BaseContext>(): ApolloServerPlugin<TContext> {
  let owners: Owners = new Map();
  return {
    async serverWillStart() {
      return {
        schemaDidLoadOrUpdate({ coreSupergraphSdl }) {
          if (coreSupergraphSdl) owners = fieldOwners(coreSupergraphSdl);
        },
      };
    },
    async requestDidStart() {
      return {
        async willSendResponse({ response, document, operation, schema }) {
          if (response.body.kind !== 'single') return;
          const result = response.body.singleResult;
          const errors: GraphQLFormattedError[] = [...(result.errors ?? [])];

          const notes = result.extensions?.valueCompletion;
          if (Array.isArray(notes)) {
            for (const note of notes.filter(isNote)) {
              const field = NON_NULLABLE_FIELD.exec(note.message);
              const fieldOwnersOf = field ? owners.get(`${field[1]}.${field[2]}`) : undefined;
              const serviceName = fieldOwnersOf?.size === 1 ? [...fieldOwnersOf][0] : undefined;
              errors.push({
                message: note.message,
                ...(note.path ? { path: [...note.path] } : {}),
                extensions: { code: SUBGRAPH_NON_NULL_VIOLATION, ...(serviceName ? { serviceName } : {}) },
              });
            }
            const { valueCompletion: _notes, ...rest } = result.extensions ?? {};
            result.extensions = Object.keys(rest).length ? rest : undefined;
          }

          const failed = new Map<string, GraphQLFormattedError>();
          for (const error of errors) {
            const serviceName = error.extensions?.serviceName;
            if (!error.path && typeof serviceName === 'string' && !failed.has(serviceName)) failed.set(serviceName, error);
          }
          if (failed.size > 0 && result.data && document && operation) {
            const located = locateFailures(schema, owners, document, operation, result.data, failed);
            const placed = new Set(located.map((l) => l.error));
            // Another pathless error of a subgraph already placed (a second fetch to it that failed
            // the same way) is covered: the walk found every field that subgraph owed.
            const placedServices = new Set([...failed].filter(([, e]) => placed.has(e)).map(([name]) => name));
            const covered = (error: GraphQLFormattedError): boolean =>
              !error.path && !placed.has(error) && placedServices.has(String(error.extensions?.serviceName));
            const rewritten: GraphQLFormattedError[] = [];
            for (const error of errors) {
              if (covered(error)) continue;
              if (!placed.has(error)) {
                rewritten.push(error);
                continue;
              }
              for (const at of located) if (at.error === error) rewritten.push({ ...error, path: [...at.path] });
            }
            errors.splice(0, errors.length, ...rewritten);
          }

          if (errors.length > 0) result.errors = errors;
        },
      };
    },
  };
}
