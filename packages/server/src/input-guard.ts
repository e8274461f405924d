import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import {
  BREAK,
  type DocumentNode,
  GraphQLError,
  type GraphQLList,
  type GraphQLSchema,
  type GraphQLType,
  type OperationDefinitionNode,
  type VariableDefinitionNode,
  TypeInfo,
  getNamedType,
  getNullableType,
  isInputObjectType,
  isInputType,
  isInterfaceType,
  isListType,
  isObjectType,
  typeFromAST,
  visit,
  visitWithTypeInfo,
} from 'graphql';

/** Bounds on the strings a request may carry to resolvers (and through them to the store). */
export interface InputLimits {
  /** Longest string argument, variable value or input field, in characters (UTF-16 code units). @default 10_000 */
  maxStringLength: number;
  /** Longest value of type `ID` (arguments, input fields, key fields of `_entities` representations). @default 128 */
  maxIdLength: number;
}

export const defaultInputLimits: InputLimits = { maxStringLength: 10_000, maxIdLength: 128 };

/** A position in a variable's value: enough to name it in the error, built only when there is one. */
interface Item {
  value: unknown;
  /** The GraphQL type the value is read as, when known; unknown under custom scalars. */
  type: GraphQLType | undefined;
  key: string | number;
  parent: Item | undefined;
}

function pathOf(item: Item): string {
  let path = '';
  for (let at: Item | undefined = item; at; at = at.parent) {
    path = typeof at.key === 'number' ? `[${at.key}]${path}` : at.parent ? `.${at.key}${path}` : `${at.key}${path}`;
  }
  return path;
}

function problem(where: string, field: string, message: string, limit?: number): GraphQLError {
  // 400 like Apollo's own variable errors: the request as a whole is refused, nothing ran.
  return new GraphQLError(`${where} ${message}`, {
    extensions: { code: 'BAD_USER_INPUT', field, ...(limit === undefined ? {} : { limit }), http: { status: 400 } },
  });
}

/** What is wrong with one string, or undefined. Length is checked first: it is O(1). */
function stringProblem(value: string, isId: boolean, limits: InputLimits): { message: string; limit?: number } | undefined {
  if (isId && value.length > limits.maxIdLength)
    return { message: `is an ID of ${value.length} characters; the limit is ${limits.maxIdLength}.`, limit: limits.maxIdLength };
  if (value.length > limits.maxStringLength)
    return { message: `is ${value.length} characters long; the limit is ${limits.maxStringLength}.`, limit: limits.maxStringLength };
  // PostgreSQL cannot store U+0000 in text ("invalid byte sequence for encoding UTF8: 0x00"),
  // SQLite cuts C strings at it; no field of this API has a use for it.
  if (value.includes('\u0000')) return { message: 'contains a NUL character (\\u0000), which is not allowed.' };
  return undefined;
}

const isIdType = (type: GraphQLType | undefined): boolean => type !== undefined && getNamedType(type).name === 'ID';

/**
 * The types of a value's members: an input object's fields, a list's items, and for an
 * `_entities` representation (`_Any` with a `__typename`) the entity type's fields, so that key
 * fields of type ID get the ID limit. Under any other scalar the members' types are unknown.
 */
function memberType(schema: GraphQLSchema, type: GraphQLType | undefined, value: unknown, key: string | number): GraphQLType | undefined {
  if (type === undefined) return undefined;
  const nullable = getNullableType(type);
  if (isListType(nullable)) return nullable.ofType;
  if (isInputObjectType(nullable) || isObjectType(nullable) || isInterfaceType(nullable)) return nullable.getFields()[key]?.type;
  if (nullable.name === '_Any' && typeof key === 'string') {
    const typename = (value as { __typename?: unknown }).__typename;
    const entity = typeof typename === 'string' ? schema.getType(typename) : undefined;
    if (entity && (isObjectType(entity) || isInterfaceType(entity))) return entity.getFields()[key]?.type;
  }
  return undefined;
}

/** Walks one variable's JSON value without recursion (a deeply nested value cannot overflow the stack). */
function checkVariable(
  schema: GraphQLSchema,
  name: string,
  type: GraphQLType | undefined,
  value: unknown,
  limits: InputLimits,
): GraphQLError | undefined {
  const stack: Item[] = [{ value, type, key: `$${name}`, parent: undefined }];
  while (stack.length > 0) {
    const item = stack.pop() as Item;
    const { value: v } = item;
    // A single value given for a list type is read as a list of one: check it as the item type.
    while (!Array.isArray(v) && item.type !== undefined && isListType(getNullableType(item.type))) {
      item.type = (getNullableType(item.type) as GraphQLList<GraphQLType>).ofType;
    }
    if (typeof v === 'string') {
      const found = stringProblem(v, isIdType(item.type), limits);
      if (found) return problem(`Variable "${pathOf(item)}"`, pathOf(item), found.message, found.limit);
    } else if (Array.isArray(v)) {
      const itemType = item.type !== undefined && isListType(getNullableType(item.type)) ? memberType(schema, item.type, v, 0) : item.type;
      for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], type: itemType, key: i, parent: item });
    } else if (v !== null && typeof v === 'object') {
      for (const [key, member] of Object.entries(v)) {
        const found = stringProblem(key, false, limits);
        if (found) return problem(`A field name in variable "${pathOf(item)}"`, pathOf(item), found.message, found.limit);
        stack.push({ value: member, type: memberType(schema, item.type, v, key), key, parent: item });
      }
    }
  }
  return undefined;
}

/** A refusal, kept as data so that a cached one is thrown as a fresh error each time. */
interface Problem {
  where: string;
  field: string;
  message: string;
  limit?: number | undefined;
}

const toError = (p: Problem) => problem(p.where, p.field, p.message, p.limit);

/**
 * The first hostile string literal of a document (arguments, input fields, variable defaults),
 * or undefined. Depends on the document, schema and limits only, so the plugin keeps it per parsed
 * document (Apollo hands the same DocumentNode to every request of the same text).
 */
function literalProblem(schema: GraphQLSchema, document: DocumentNode, limits: InputLimits): Problem | undefined {
  let found: Problem | undefined;
  const typeInfo = new TypeInfo(schema);
  const path: string[] = [];
  const push = { enter: (node: { name: { value: string } }) => void path.push(node.name.value), leave: () => void path.pop() };
  const pushVariable = {
    enter: (node: VariableDefinitionNode) => void path.push(`$${node.variable.name.value}`),
    leave: () => void path.pop(),
  };
  // The whole document, not only the operation: fragments carry literals too, and anything sent is input.
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      VariableDefinition: pushVariable,
      Argument: push,
      ObjectField: push,
      StringValue(node) {
        const bad = stringProblem(node.value, isIdType(typeInfo.getInputType() ?? undefined), limits);
        if (!bad) return undefined;
        const field = path.join('.');
        const where = field.startsWith('$')
          ? `The default of variable "${field}"`
          : field
            ? `Argument "${field}"`
            : 'A string in the document';
        found = { where, field, message: bad.message, limit: bad.limit };
        return BREAK;
      },
    }),
  );
  return found;
}

/** The variable values' first hostile string, as an error, or undefined. */
function variablesProblem(
  schema: GraphQLSchema,
  operation: OperationDefinitionNode | undefined,
  variables: Readonly<Record<string, unknown>> | undefined,
  limits: InputLimits,
): GraphQLError | undefined {
  for (const definition of operation?.variableDefinitions ?? []) {
    const name = definition.variable.name.value;
    const value = variables?.[name];
    if (value === undefined) continue;
    const type = typeFromAST(schema, definition.type);
    const error = checkVariable(schema, name, type && isInputType(type) ? type : undefined, value, limits);
    if (error) return error;
  }
  return undefined;
}

/**
 * Checks every string a request carries: the literals in its document (arguments, input fields,
 * variable defaults) and its variable values. The first string with a NUL character, longer than
 * `maxStringLength`, or of type ID and longer than `maxIdLength`, is a BAD_USER_INPUT error naming
 * where it is (`extensions.field`) and the limit (`extensions.limit`), never quoting it.
 * Linear in the size of the request.
 */
export function checkRequestInput(
  schema: GraphQLSchema,
  document: DocumentNode,
  /** Undefined when the request names no operation of the document: only its literals are checked. */
  operation: OperationDefinitionNode | undefined,
  variables: Readonly<Record<string, unknown>> | undefined,
  limits: InputLimits = defaultInputLimits,
): GraphQLError | undefined {
  const literal = literalProblem(schema, document, limits);
  return literal ? toError(literal) : variablesProblem(schema, operation, variables, limits);
}

/**
 * Refuses a request carrying hostile strings (see {@link checkRequestInput}) once its operation is
 * resolved and before anything executes: no resolver runs, so nothing reaches the store.
 */
export function inputGuardPlugin<TContext extends BaseContext>(limits: Partial<InputLimits> = {}): ApolloServerPlugin<TContext> {
  const bounds: InputLimits = { ...defaultInputLimits, ...limits };
  // The literal walk (a visit with type info) was 3.5% of reviews' CPU under the bench's varied
  // load, for documents that repeat: kept per parsed document and schema, null for "no problem".
  const literals = new WeakMap<GraphQLSchema, WeakMap<DocumentNode, Problem | null>>();
  const literalsOf = (schema: GraphQLSchema, document: DocumentNode) => {
    let bySchema = literals.get(schema);
    if (!bySchema) literals.set(schema, (bySchema = new WeakMap()));
    let found = bySchema.get(document);
    if (found === undefined) bySchema.set(document, (found = literalProblem(schema, document, bounds) ?? null));
    return found;
  };
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ schema, document, operation, request }) {
          const literal = literalsOf(schema, document);
          const error = literal ? toError(literal) : variablesProblem(schema, operation, request.variables, bounds);
          if (error) throw error;
        },
      };
    },
  };
}
