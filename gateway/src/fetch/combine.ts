import {
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  Kind,
  Lexer,
  type OperationDefinitionNode,
  type SelectionNode,
  Source,
  TokenKind,
  type VariableDefinitionNode,
  parse,
  print,
  stripIgnoredCharacters,
  visit,
} from 'graphql';
import type { GraphQLFormattedError } from 'graphql';
import type { GraphQLBody } from './layer';

// Combining `_entities` fetches of different selections to one subgraph into one request: each
// fetch's document becomes one aliased `_entities` field of a combined operation, its variables
// and fragments renamed apart (`p0_representations`, `p1_Review`), and the answer is split back
// by alias. Apollo's planner sends one request per fetch node; Hive's Rust executor sends the
// fetches that are ready together as one request the same way. graphql-js does the parsing and
// printing; no library combines operations, so the renaming is ours.

/** An `_entities` fetch's document, read once per distinct query text. */
interface EntitiesDocument {
  operation: OperationDefinitionNode;
  fragments: readonly FragmentDefinitionNode[];
  /** Lexical tokens of the query text: combined requests stay well inside a subgraph's token limit. */
  tokens: number;
  /** Aliased fields in the document (a combined request adds one per part). */
  aliases: number;
}

/** What a combined request may hold at most, so a subgraph's document limits (5,000 tokens, 100 aliases by default) never refuse it. */
export interface CombineLimits {
  tokens: number;
  aliases: number;
  parts: number;
}

export const defaultCombineLimits: CombineLimits = { tokens: 2500, aliases: 40, parts: 16 };

const MAX_REMEMBERED = 2000;
const documents = new Map<string, EntitiesDocument | null>();

function countTokens(query: string): number {
  const lexer = new Lexer(new Source(query));
  let n = 0;
  try {
    while (lexer.advance().kind !== TokenKind.EOF) n++;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
  return n;
}

/**
 * The document of an `_entities` fetch as the planner writes it (one query operation selecting
 * `_entities` alone, fragments beside it), or null for anything else: such a fetch is sent alone.
 */
export function entitiesDocument(query: string): EntitiesDocument | null {
  const known = documents.get(query);
  if (known !== undefined) return known;
  let result: EntitiesDocument | null = null;
  try {
    const document: DocumentNode = parse(query, { noLocation: true });
    const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
    const fragments = document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION);
    const operation = operations[0];
    const only = operation?.selectionSet.selections[0];
    if (
      operations.length === 1 &&
      fragments.length + 1 === document.definitions.length &&
      operation?.operation === 'query' &&
      !operation.directives?.length &&
      operation.selectionSet.selections.length === 1 &&
      only?.kind === Kind.FIELD &&
      only.name.value === '_entities' &&
      !only.directives?.length
    ) {
      let aliases = 0;
      visit(document, {
        Field(node) {
          if (node.alias) aliases++;
        },
      });
      result = { operation, fragments, tokens: countTokens(query), aliases };
    }
  } catch {
    result = null;
  }
  if (documents.size >= MAX_REMEMBERED) documents.clear();
  documents.set(query, result);
  return result;
}

/** One part of a combined request: where its answer is and how its variables are named in it. */
export interface CombinedPart {
  alias: string;
  /** The part's variable names, each with its name in the combined operation. */
  variables: ReadonlyArray<readonly [string, string]>;
}

export interface CombinedDocument {
  query: string;
  parts: readonly CombinedPart[];
}

const combined = new Map<string, CombinedDocument>();

/** Renames a part's variables and fragments apart from the other parts'. */
function renamed<T extends OperationDefinitionNode | FragmentDefinitionNode>(node: T, prefix: string): T {
  return visit(node, {
    Variable: (v) => ({ ...v, name: { ...v.name, value: prefix + v.name.value } }),
    FragmentSpread: (s) => ({ ...s, name: { ...s.name, value: prefix + s.name.value } }),
    FragmentDefinition: (f) => ({ ...f, name: { ...f.name, value: prefix + f.name.value } }),
  });
}

/**
 * The combined operation of these `_entities` documents (in this order), memoised by their
 * texts: plans reuse the same strings, so a combination is built once.
 */
export function combineDocuments(queries: readonly string[], operationName: string): CombinedDocument | null {
  const key = `${operationName}\u0001${queries.join('\u0001')}`;
  const known = combined.get(key);
  if (known) return known;
  const variableDefinitions: VariableDefinitionNode[] = [];
  const selections: SelectionNode[] = [];
  const fragments: FragmentDefinitionNode[] = [];
  const parts: CombinedPart[] = [];
  for (let i = 0; i < queries.length; i++) {
    const doc = entitiesDocument(queries[i] as string);
    if (!doc) return null;
    const prefix = `p${i}_`;
    const operation = renamed(doc.operation, prefix);
    const field = operation.selectionSet.selections[0] as FieldNode;
    const alias = `p${i}`;
    variableDefinitions.push(...(operation.variableDefinitions ?? []));
    selections.push({ ...field, alias: { kind: Kind.NAME, value: alias } });
    for (const fragment of doc.fragments) fragments.push(renamed(fragment, prefix));
    parts.push({
      alias,
      variables: (doc.operation.variableDefinitions ?? []).map((d) => [d.variable.name.value, prefix + d.variable.name.value] as const),
    });
  }
  const operation: OperationDefinitionNode = {
    kind: Kind.OPERATION_DEFINITION,
    operation: 'query' as OperationDefinitionNode['operation'],
    name: { kind: Kind.NAME, value: operationName },
    variableDefinitions,
    directives: [],
    selectionSet: { kind: Kind.SELECTION_SET, selections },
  };
  const document: DocumentNode = { kind: Kind.DOCUMENT, definitions: [operation, ...fragments] };
  const result: CombinedDocument = { query: stripIgnoredCharacters(print(document)), parts };
  if (combined.size >= MAX_REMEMBERED) combined.clear();
  combined.set(key, result);
  return result;
}

/**
 * Splits the documents into runs that may go out as one request each (in order, greedily), within
 * the limits; a document that cannot be combined is a run of its own.
 */
export function packDocuments(queries: readonly string[], limits: CombineLimits): number[][] {
  const runs: number[][] = [];
  let run: number[] = [];
  let tokens = 0;
  let aliases = 0;
  for (let i = 0; i < queries.length; i++) {
    const doc = entitiesDocument(queries[i] as string);
    if (!doc) {
      runs.push([i]);
      continue;
    }
    if (
      run.length > 0 &&
      (run.length >= limits.parts || tokens + doc.tokens > limits.tokens || aliases + doc.aliases + 1 > limits.aliases)
    ) {
      runs.push(run);
      run = [];
      tokens = 0;
      aliases = 0;
    }
    run.push(i);
    tokens += doc.tokens;
    aliases += doc.aliases + 1;
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

/**
 * One part's answer out of the combined one, as if it had been sent alone: its `_entities`, its
 * errors re-addressed from its alias, and errors of the whole request (no part's path) for
 * every part.
 */
export function partAnswer(body: GraphQLBody, part: CombinedPart, parts: readonly CombinedPart[]): GraphQLBody {
  const list = body.data?.[part.alias];
  const errors: GraphQLFormattedError[] = [];
  for (const error of body.errors ?? []) {
    const head = error.path?.[0];
    if (head === part.alias) errors.push({ ...error, path: ['_entities', ...(error.path?.slice(1) ?? [])] });
    else if (typeof head !== 'string' || !parts.some((p) => p.alias === head)) errors.push(error);
  }
  const data = Array.isArray(list) ? { _entities: list } : body.data === undefined ? undefined : null;
  const answer: GraphQLBody = {};
  if (data !== undefined) answer.data = data;
  if (errors.length > 0) answer.errors = errors;
  return answer;
}

/** Codes with which a subgraph refuses a whole document before running it: the parts are then sent one by one. */
const REFUSALS = new Set(['GRAPHQL_PARSE_FAILED', 'GRAPHQL_VALIDATION_FAILED', 'COST_ESTIMATED_TOO_EXPENSIVE']);

/** True when the subgraph refused the combined document as a whole (a limit): each part may still pass alone. */
export function refusedWhole(body: GraphQLBody): boolean {
  if (body.data) return false;
  return (body.errors ?? []).some((e) => typeof e.extensions?.code === 'string' && REFUSALS.has(e.extensions.code));
}
