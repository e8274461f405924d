// fast-check arbitraries over a GraphQL API schema: random valid operations (queries and
// mutations, nested up to a depth, with arguments of the right types, variables, fragments,
// aliases and @include/@skip), and random mutations of them that a hostile or broken client might
// send (tokens deleted, duplicated or swapped, values of the wrong type, huge numbers, NUL bytes,
// long strings, unknown fields, bad variables and envelopes).
import fc from 'fast-check';
import {
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLObjectType,
  type GraphQLSchema,
  Lexer,
  Source,
  type Token,
  TokenKind,
  getNamedType,
  isEnumType,
  isInputObjectType,
  isLeafType,
  isListType,
  isNonNullType,
  isObjectType,
} from 'graphql';

/** A GraphQL request as a client sends it. */
export interface GeneratedOperation {
  query: string;
  variables: Record<string, unknown>;
  operationName?: string;
}

/** A request body and how it was made (for the failure report). */
export interface GeneratedRequest {
  body: string;
  /** `valid` or the mutations applied, e.g. `mutated: delete token "{", huge number`. */
  how: string;
}

export interface OperationOptions {
  /** Deepest field nesting (the root field is level 1). @default 5 */
  maxDepth?: number;
  /** Most fields in one operation: keeps aliases and directives under the servers' limits. @default 20 */
  maxFields?: number;
  /** Ids worth asking for (seeded ones find data; random ones find none). @default none */
  ids?: readonly string[];
}

type Gen = fc.GeneratorValue;

interface Build {
  g: Gen;
  schema: GraphQLSchema;
  options: Required<OperationOptions>;
  variableDefinitions: string[];
  variables: Record<string, unknown>;
  fragments: string[];
  /** Names handed out so far (aliases, variables, fragments are all unique). */
  counter: number;
  fieldsLeft: number;
}

/** True `percent` times in a hundred. */
const chance = (g: Gen, percent: number) => g(fc.integer, { min: 1, max: 100 }) <= percent;
const pick = <T>(g: Gen, items: readonly T[]): T => items[g(fc.integer, { min: 0, max: items.length - 1 })] as T;
const nextName = (b: Build, prefix: string) => `${prefix}${b.counter++}`;

const intValue = (b: Build): number =>
  b.g(() =>
    fc.oneof(
      { weight: 8, arbitrary: fc.integer({ min: 0, max: 10 }) },
      { weight: 1, arbitrary: fc.constantFrom(-1, 100, 101, 2_147_483_647, -2_147_483_648) },
      { weight: 1, arbitrary: fc.integer() },
    ),
  );

const stringValue = (b: Build): string =>
  b.g(() =>
    fc.oneof(fc.string({ maxLength: 20 }), fc.string({ unit: 'grapheme', maxLength: 20 }), fc.constantFrom('', 'books', 'a@example.com')),
  );

const idValue = (b: Build): string =>
  b.options.ids.length > 0 && chance(b.g, 70) ? pick(b.g, b.options.ids) : b.g(() => fc.oneof(fc.string({ maxLength: 12 }), fc.uuid()));

/** A JSON value of `type`, as a well-typed variable would carry it. */
function inputValue(b: Build, type: GraphQLInputType, depth = 0): unknown {
  if (!isNonNullType(type) && chance(b.g, 10)) return null;
  const inner = isNonNullType(type) ? type.ofType : type;
  if (isListType(inner)) {
    const n = depth > 2 ? 0 : b.g(fc.integer, { min: 0, max: 3 });
    return Array.from({ length: n }, () => inputValue(b, inner.ofType, depth + 1));
  }
  if (isEnumType(inner)) return pick(b.g, inner.getValues()).name;
  if (isInputObjectType(inner)) {
    const out: Record<string, unknown> = {};
    for (const field of Object.values(inner.getFields())) {
      const required = isNonNullType(field.type) && field.defaultValue === undefined;
      if (required || chance(b.g, 50)) out[field.name] = inputValue(b, field.type, depth + 1);
    }
    return out;
  }
  switch (inner.name) {
    case 'Int':
      return intValue(b);
    case 'Float':
      return b.g(() =>
        fc.oneof(
          fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }),
          fc.double({ noNaN: true, noDefaultInfinity: true }),
        ),
      );
    case 'Boolean':
      return b.g(fc.boolean);
    case 'ID':
      return idValue(b);
    case 'String':
      return stringValue(b);
    case 'DateTime':
      return chance(b.g, 80)
        ? b
            .g(() => fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }))
            .toISOString()
        : stringValue(b);
    default:
      // Another custom scalar: the API schema accepts any value for it.
      return stringValue(b);
  }
}

/** `value` (from {@link inputValue}) as a GraphQL literal of `type`. */
function literal(type: GraphQLInputType, value: unknown): string {
  if (value === null) return 'null';
  const inner = isNonNullType(type) ? type.ofType : type;
  if (isListType(inner)) return `[${(value as unknown[]).map((v) => literal(inner.ofType, v)).join(', ')}]`;
  if (isEnumType(inner)) return typeof value === 'string' ? value : JSON.stringify(value);
  if (isInputObjectType(inner)) {
    const fields = inner.getFields();
    return `{ ${Object.entries(value as Record<string, unknown>)
      .map(([k, v]) => `${k}: ${literal((fields[k] as { type: GraphQLInputType }).type, v)}`)
      .join(', ')} }`;
  }
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    // An Int literal must have no fraction or exponent; a Float literal may.
    if (inner.name === 'Int') return String(Math.trunc(value));
    const text = String(value);
    return /[.eE]/.test(text) ? text.replace('e+', 'e') : `${text}.0`;
  }
  return typeof value === 'boolean' ? String(value) : JSON.stringify(value);
}

/** A value for an argument of `type`: a literal, or (sometimes) a variable declared for it. */
function argumentValue(b: Build, type: GraphQLInputType): string {
  const value = inputValue(b, type);
  if (chance(b.g, 30)) {
    const name = nextName(b, 'v');
    b.variableDefinitions.push(`$${name}: ${String(type)}`);
    b.variables[name] = value;
    return `$${name}`;
  }
  return literal(type, value);
}

function directives(b: Build): string {
  if (!chance(b.g, 15)) return '';
  const name = chance(b.g, 50) ? 'include' : 'skip';
  // Mostly keep the selection: `@include(if: true)`, `@skip(if: false)`.
  const keep = chance(b.g, 80);
  const condition = name === 'include' ? keep : !keep;
  if (chance(b.g, 30)) {
    const variable = nextName(b, 'v');
    b.variableDefinitions.push(`$${variable}: Boolean!`);
    b.variables[variable] = condition;
    return ` @${name}(if: $${variable})`;
  }
  return ` @${name}(if: ${condition})`;
}

const isLeafField = (field: GraphQLField<unknown, unknown>) => isLeafType(getNamedType(field.type));

function field(b: Build, field: GraphQLField<unknown, unknown>, depth: number): string {
  b.fieldsLeft--;
  const args: string[] = [];
  for (const arg of field.args) {
    const required = isNonNullType(arg.type) && arg.defaultValue === undefined;
    if (required || chance(b.g, 40)) args.push(`${arg.name}: ${argumentValue(b, arg.type)}`);
  }
  // Fields with arguments get an alias of their own, so two selections of one field with
  // different arguments never meet under one response name (an overlapping-fields conflict).
  const alias = args.length > 0 || chance(b.g, 15) ? `${nextName(b, 'a')}: ` : '';
  const named = getNamedType(field.type);
  const sub = isObjectType(named) ? ` ${selectionSet(b, named, depth + 1)}` : '';
  return `${alias}${field.name}${args.length > 0 ? `(${args.join(', ')})` : ''}${directives(b)}${sub}`;
}

function selectionSet(b: Build, type: GraphQLObjectType, depth: number, root = false): string {
  const fields = Object.values(type.getFields());
  const last = depth >= b.options.maxDepth || b.fieldsLeft <= 0;
  const choices = last ? fields.filter(isLeafField) : fields;
  const count = root && type === b.schema.getMutationType() ? b.g(fc.integer, { min: 1, max: 2 }) : b.g(fc.integer, { min: 1, max: 3 });
  const parts: string[] = [];
  for (let i = 0; i < count; i++) {
    const roll = b.g(fc.integer, { min: 1, max: 20 });
    if (choices.length === 0 || (roll === 1 && !root)) {
      parts.push('__typename');
    } else if (roll === 2 && !last) {
      parts.push(`... on ${type.name}${directives(b)} ${selectionSet(b, type, depth, root)}`);
    } else if (roll === 3 && !last) {
      const name = nextName(b, 'F');
      b.fragments.push(`fragment ${name} on ${type.name} ${selectionSet(b, type, depth, root)}`);
      parts.push(`...${name}${directives(b)}`);
    } else {
      parts.push(field(b, pick(b.g, choices), depth));
    }
    if (b.fieldsLeft <= 0) break;
  }
  return `{ ${parts.join(' ')} }`;
}

function operation(g: Gen, schema: GraphQLSchema, options: Required<OperationOptions>): GeneratedOperation {
  const b: Build = { g, schema, options, variableDefinitions: [], variables: {}, fragments: [], counter: 0, fieldsLeft: options.maxFields };
  const mutationType = schema.getMutationType();
  const queryType = schema.getQueryType();
  if (!queryType) throw new Error('the schema has no Query type');
  const root = mutationType && chance(b.g, 25) ? mutationType : queryType;
  const isMutation = root === mutationType;
  const selection = selectionSet(b, root, 1, true);
  const name = chance(b.g, 40) ? nextName(b, 'Op') : undefined;
  const defs = b.variableDefinitions.length > 0 ? `(${b.variableDefinitions.join(', ')})` : '';
  const head =
    !isMutation && !name && !defs && chance(b.g, 50) ? '' : `${isMutation ? 'mutation' : 'query'}${name ? ` ${name}` : ''}${defs} `;
  const query = [`${head}${selection}`, ...b.fragments].join('\n');
  return { query, variables: b.variables, ...(name && chance(b.g, 50) ? { operationName: name } : {}) };
}

const defaults = (options: OperationOptions): Required<OperationOptions> => ({ maxDepth: 5, maxFields: 20, ids: [], ...options });

/** Random operations that validate against `schema`. */
export function validOperation(schema: GraphQLSchema, options: OperationOptions = {}): fc.Arbitrary<GeneratedOperation> {
  const resolved = defaults(options);
  return fc.gen().map((g) => operation(g, schema, resolved));
}

// ---- mutations ----------------------------------------------------------------------------

interface Lexed {
  kind: string;
  start: number;
  end: number;
}

/** The tokens of `text`, or undefined when it no longer lexes. */
function tokens(text: string): Lexed[] | undefined {
  try {
    const lexer = new Lexer(new Source(text));
    const out: Lexed[] = [];
    for (let t: Token = lexer.advance(); t.kind !== TokenKind.EOF; t = lexer.advance())
      out.push({ kind: t.kind, start: t.start, end: t.end });
    return out;
  } catch {
    return undefined;
  }
}

const VALUE_KINDS: readonly string[] = [TokenKind.INT, TokenKind.FLOAT, TokenKind.STRING, TokenKind.BLOCK_STRING];
const WRONG_VALUES = ['"text"', '42', '4.2', 'true', 'false', 'null', '[1, 2]', '{ a: 1 }', 'SOME_ENUM', '$undeclared', '""', '[]', '{}'];
const HUGE_NUMBERS = [
  '99999999999999999999999999',
  '-2147483649',
  '2147483648',
  '1e309',
  '-1e309',
  '0.0000000000000000000001',
  '123456789012345678901234567890.5',
  '-0',
  '1e-400',
];
const LONG_LENGTHS = [1_000, 10_001, 100_000, 500_000];
const UNKNOWN_FIELDS = [
  'unknownField',
  'unknownField(first: 1)',
  'unknownField { id }',
  '__schema { types { name } }',
  '__type(name: "Query") { name }',
  'id(x: 1)',
];
const INSERTED_CHARS = [
  '{',
  '}',
  '(',
  ')',
  '[',
  ']',
  ':',
  '$',
  '@',
  '!',
  '...',
  '=',
  '"',
  '\\',
  '#',
  ',',
  '|',
  '&',
  '\u0000',
  '\uFEFF',
  '\uD800',
];
const BAD_VARIABLE_VALUES: readonly unknown[] = [
  'text',
  42,
  4.2,
  true,
  null,
  [],
  {},
  [[[]]],
  Number.MAX_VALUE,
  2 ** 53,
  -(2 ** 31) - 1,
  'x\u0000y',
  '\uD800',
];

function splice(text: string, start: number, end: number, replacement: string): string {
  return text.slice(0, start) + replacement + text.slice(end);
}

/** One mutation of the document text; its name for the report. */
function mutateText(g: Gen, text: string): { text: string; how: string } {
  const lexed = tokens(text);
  const kinds = ['delete', 'duplicate', 'swap', 'wrong type', 'huge number', 'nul', 'long string', 'unknown field', 'insert char'] as const;
  const kind = pick(g, kinds);
  if (!lexed || lexed.length === 0 || kind === 'insert char') {
    const at = g(fc.integer, { min: 0, max: text.length });
    const char = pick(g, INSERTED_CHARS);
    return { text: splice(text, at, at, char), how: `insert ${JSON.stringify(char)} at ${at}` };
  }
  const token = pick(g, lexed);
  const tokenText = text.slice(token.start, token.end);
  const values = lexed.filter(
    (t) => VALUE_KINDS.includes(t.kind) || (t.kind === TokenKind.NAME && ['true', 'false', 'null'].includes(text.slice(t.start, t.end))),
  );
  const value = values.length > 0 ? pick(g, values) : token;
  switch (kind) {
    case 'delete':
      return { text: splice(text, token.start, token.end, ''), how: `delete ${JSON.stringify(tokenText)}` };
    case 'duplicate':
      return { text: splice(text, token.end, token.end, ` ${tokenText}`), how: `duplicate ${JSON.stringify(tokenText)}` };
    case 'swap': {
      const other = pick(g, lexed);
      if (other === token) return { text, how: 'swap (same token)' };
      const [first, second] = token.start < other.start ? [token, other] : [other, token];
      const a = text.slice(first.start, first.end);
      const c = text.slice(second.start, second.end);
      return {
        text: text.slice(0, first.start) + c + text.slice(first.end, second.start) + a + text.slice(second.end),
        how: `swap ${JSON.stringify(a)} and ${JSON.stringify(c)}`,
      };
    }
    case 'wrong type': {
      const replacement = pick(g, WRONG_VALUES);
      return {
        text: splice(text, value.start, value.end, replacement),
        how: `value ${JSON.stringify(text.slice(value.start, value.end))} -> ${replacement}`,
      };
    }
    case 'huge number': {
      const replacement = pick(g, HUGE_NUMBERS);
      return {
        text: splice(text, value.start, value.end, replacement),
        how: `value ${JSON.stringify(text.slice(value.start, value.end))} -> ${replacement}`,
      };
    }
    case 'nul': {
      const strings = lexed.filter((t) => t.kind === TokenKind.STRING);
      if (strings.length > 0 && g(fc.boolean)) {
        const s = pick(g, strings);
        const escaped = g(fc.boolean);
        return {
          text: splice(text, s.start + 1, s.start + 1, escaped ? '\\u0000' : '\u0000'),
          how: `NUL ${escaped ? 'escaped' : 'raw'} in a string`,
        };
      }
      const at = g(fc.integer, { min: 0, max: text.length });
      return { text: splice(text, at, at, '\u0000'), how: `raw NUL at ${at}` };
    }
    case 'long string': {
      const length = pick(g, LONG_LENGTHS);
      return {
        text: splice(text, value.start, value.end, `"${'x'.repeat(length)}"`),
        how: `value ${JSON.stringify(text.slice(value.start, value.end))} -> string of ${length}`,
      };
    }
    case 'unknown field': {
      const braces = lexed.filter((t) => t.kind === TokenKind.BRACE_L);
      const brace = braces.length > 0 ? pick(g, braces) : token;
      const inserted = pick(g, UNKNOWN_FIELDS);
      return { text: splice(text, brace.end, brace.end, ` ${inserted} `), how: `insert field ${inserted}` };
    }
  }
}

/** One mutation of the request around the document: its variables, operation name or envelope. */
function mutateEnvelope(g: Gen, op: GeneratedOperation): { envelope: Record<string, unknown>; how: string } {
  const base: Record<string, unknown> = {
    query: op.query,
    variables: op.variables,
    ...(op.operationName ? { operationName: op.operationName } : {}),
  };
  const kind = pick(g, [
    'variable value',
    'extra variable',
    'variables not an object',
    'operation name',
    'query not a string',
    'persisted query',
  ] as const);
  switch (kind) {
    case 'variable value': {
      const keys = Object.keys(op.variables);
      const key = keys.length > 0 ? pick(g, keys) : 'v0';
      const value = g(fc.boolean) ? pick(g, BAD_VARIABLE_VALUES) : 'x'.repeat(pick(g, LONG_LENGTHS));
      return {
        envelope: { ...base, variables: { ...op.variables, [key]: value } },
        how: `variable ${key} -> ${JSON.stringify(value).slice(0, 40)}`,
      };
    }
    case 'extra variable':
      return { envelope: { ...base, variables: { ...op.variables, extra: pick(g, BAD_VARIABLE_VALUES) } }, how: 'extra variable' };
    case 'variables not an object': {
      const variables = pick(g, ['text', 42, [], true, [1]] as unknown[]);
      return { envelope: { ...base, variables }, how: `variables = ${JSON.stringify(variables)}` };
    }
    case 'operation name': {
      const operationName = pick(g, ['Nope', '', 42, null, 'Op\u0000', 'x'.repeat(10_000)] as unknown[]);
      return { envelope: { ...base, operationName }, how: `operationName = ${JSON.stringify(operationName).slice(0, 40)}` };
    }
    case 'query not a string': {
      const query = pick(g, [42, null, [], {}, true] as unknown[]);
      return { envelope: { ...base, query }, how: `query = ${JSON.stringify(query)}` };
    }
    case 'persisted query': {
      const sha256Hash = pick(g, ['0'.repeat(64), 'abc', '']);
      return {
        envelope: {
          ...base,
          ...(g(fc.boolean) ? {} : { query: undefined }),
          extensions: { persistedQuery: { version: pick(g, [1, 2]), sha256Hash } },
        },
        how: 'persisted query with a wrong hash',
      };
    }
  }
}

/** Random mutations (one to three) of a valid operation, as a request body. */
export function mutatedRequest(op: GeneratedOperation): fc.Arbitrary<GeneratedRequest> {
  return fc.gen().map((g) => {
    if (chance(g, 25)) {
      const { envelope, how } = mutateEnvelope(g, op);
      return { body: JSON.stringify(envelope), how: `mutated: ${how}` };
    }
    let text = op.query;
    const hows: string[] = [];
    const count = g(fc.integer, { min: 1, max: 3 });
    for (let i = 0; i < count; i++) {
      const next = mutateText(g, text);
      text = next.text;
      hows.push(next.how);
    }
    const body = JSON.stringify({ query: text, variables: op.variables, ...(op.operationName ? { operationName: op.operationName } : {}) });
    return { body, how: `mutated: ${hows.join('; ')}` };
  });
}

/** Valid operations and mutations of them, about half and half. */
export function requestArbitrary(schema: GraphQLSchema, options: OperationOptions = {}): fc.Arbitrary<GeneratedRequest> {
  return validOperation(schema, options).chain((op) =>
    fc.oneof(fc.constant<GeneratedRequest>({ body: JSON.stringify(op), how: 'valid' }), mutatedRequest(op)),
  );
}
