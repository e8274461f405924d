// Hostile GraphQL documents, built from their sizes: the shapes issue #11 lists (fragment graphs,
// floods, deep values, huge bodies). Every builder is a pure function of its parameters, so a
// test states the size it sends and can grow it.
//
// The documents stay inside a small vocabulary that the gateway's API schema and the reviews
// subgraph both have: `Query.__typename`, and the cycle
// `review(id) -> Review.product -> Product.reviews(first) -> Review.author -> User.reviews(first) -> ...`
// (reviews serves all of it itself; through the gateway it crosses products and accounts).

/** A POST body: a document with its variables and operation name. */
export interface GraphQLBody {
  query: string;
  variables?: Record<string, unknown>;
  operationName?: string;
}

/** A request body ready to send: usually `JSON.stringify` of a {@link GraphQLBody}, hand-written where JSON.stringify cannot make it. */
export type RawBody = string;

/** The largest request body the HTTP front accepts (README, "Errors": over it is 413). */
export const BODY_LIMIT_BYTES = 1_000_000;

/** A seeded review: the entry point of nested documents (`r000001` exists in every seed). */
export const SEED_REVIEW_ID = 'r000001';

const body = (query: string, extra: Omit<GraphQLBody, 'query'> = {}): RawBody => JSON.stringify({ query, ...extra });

/** Extra selections for fragment `i` (padding that makes each fragment bigger), or nothing. */
export type FragmentPadding = (i: number) => string;

const pad = (padding: FragmentPadding | undefined, i: number) => (padding ? ` ${padding(i)}` : '');

/** `n` fragments on Query, each spreading the next once; the last selects `leaf`. */
export function fragmentChain(n: number, leaf = '__typename', padding?: FragmentPadding): string {
  const parts = ['query Chain { ...F0 }'];
  for (let i = 0; i < n; i++) parts.push(`fragment F${i} on Query { ${i + 1 < n ? `...F${i + 1}` : leaf}${pad(padding, i)} }`);
  return parts.join('\n');
}

/**
 * Diamonds stacked `levels` high: fragments A_i and B_i each spread both A_{i+1} and B_{i+1}, so
 * the operation reaches the last level by 2^levels paths through 2 x levels fragments.
 */
export function fragmentDiamonds(levels: number, leaf = '__typename', padding?: FragmentPadding): string {
  const parts = ['query Diamonds { ...A0 ...B0 }'];
  for (let i = 0; i < levels; i++) {
    const inner = i + 1 < levels ? `...A${i + 1} ...B${i + 1}` : leaf;
    parts.push(
      `fragment A${i} on Query { ${inner}${pad(padding, 2 * i)} }`,
      `fragment B${i} on Query { ${inner}${pad(padding, 2 * i + 1)} }`,
    );
  }
  return parts.join('\n');
}

/**
 * `n` fragments, each spreading the next one twice (issue #11's own example):
 * `fragment F0 on Query { ...F1 ...F1 } fragment F1 on Query { ...F2 ...F2 } ...`. Expanded, the
 * last fragment appears 2^(n-1) times.
 */
export function doubleSpreads(n: number, leaf = '__typename', padding?: FragmentPadding): string {
  const parts = ['query Doubles { ...F0 }'];
  for (let i = 0; i < n; i++) parts.push(`fragment F${i} on Query { ${i + 1 < n ? `...F${i + 1} ...F${i + 1}` : leaf}${pad(padding, i)} }`);
  return parts.join('\n');
}

/** `count` distinct aliases of `__typename` (`prefix0: __typename prefix1: __typename ...`). */
export function aliasRun(count: number, prefix = 'a'): string {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(`${prefix}${i}: __typename`);
  return out.join(' ');
}

/** `fragments` fragments on Query, each holding `aliasesEach` aliases, all spread by the operation. */
export function aliasesInFragments(fragments: number, aliasesEach: number): string {
  const spreads: string[] = [];
  const defs: string[] = [];
  for (let i = 0; i < fragments; i++) {
    spreads.push(`...F${i}`);
    defs.push(`fragment F${i} on Query { ${aliasRun(aliasesEach, `f${i}_`)} }`);
  }
  return [`query HiddenAliases { ${spreads.join(' ')} }`, ...defs].join('\n');
}

/** The review-rooted cycle, `levels` fields deep, `first` on each list: valid in the gateway and in reviews. */
export function nestedReviews(levels: number, first: number, leaf = 'id'): string {
  // review -> product -> reviews -> author -> reviews -> product -> reviews -> ...
  const steps = [`product`, `reviews(first: ${first})`, `author`, `reviews(first: ${first})`];
  let open = `review(id: "${SEED_REVIEW_ID}") {`;
  let close = '}';
  for (let i = 1; i < levels; i++) {
    open += ` ${steps[(i - 1) % steps.length]} {`;
    close += ' }';
  }
  return `query Nested { ${open} ${leaf} ${close} }`;
}

/** Issue #11's nested lists of lists through the gateway: 100 x 100 x 100 x 100 reviews if run. */
export const NESTED_LISTS_QUERY =
  '{ topProducts(first:100){ reviews(first:100){ author { reviews(first:100){ product { reviews(first:100){ author { name } } } } } } } }';

/** The same four lists of 100 as the reviews subgraph itself serves them, from one review. */
export const NESTED_LISTS_REVIEWS_QUERY = `{ review(id: "${SEED_REVIEW_ID}") { product { reviews(first: 100) { author { reviews(first: 100) { product { reviews(first: 100) { author { reviews(first: 100) { id } } } } } } } } } }`;

/** One selection set of `fields` field selections, cycling over a review's scalars. */
export function hugeSelectionSet(fields: number): string {
  const names = ['id', 'body', 'rating', 'createdAt'];
  const out: string[] = [];
  for (let i = 0; i < fields; i++) out.push(names[i % names.length] as string);
  return `query Huge { review(id: "${SEED_REVIEW_ID}") { ${out.join(' ')} } }`;
}

/** `copies` copies of one field, unaliased: the overlapping-fields rule compares every pair. */
export function sameFieldFlood(copies: number): string {
  return `query Same { review(id: "${SEED_REVIEW_ID}") { ${Array.from({ length: copies }, () => 'body').join(' ')} } }`;
}

/** `copies` copies of `a: body`: one alias, the same field, every pair to compare. */
export function sameAliasFlood(copies: number): string {
  return `query SameAlias { review(id: "${SEED_REVIEW_ID}") { ${Array.from({ length: copies }, () => 'a: body').join(' ')} } }`;
}

/** `copies` selections of one alias over two different fields: every pair conflicts. */
export function conflictingAliasFlood(copies: number): string {
  return `query Conflicts { review(id: "${SEED_REVIEW_ID}") { ${Array.from({ length: copies }, (_, i) => (i % 2 ? 'a: body' : 'a: rating')).join(' ')} } }`;
}

/** `count` directives on one field. */
export function directiveFlood(count: number): string {
  return `query Directives { __typename ${Array.from({ length: count }, () => '@include(if: true)').join(' ')} }`;
}

/** `count` variables declared and sent (unused by the selection). */
export function variableFlood(count: number): RawBody {
  const defs: string[] = [];
  const variables: Record<string, boolean> = {};
  for (let i = 0; i < count; i++) {
    defs.push(`$v${i}: Boolean`);
    variables[`v${i}`] = true;
  }
  return body(`query Variables(${defs.join(', ')}) { __typename }`, { variables });
}

/** A list literal nested `depth` deep, `[[[ ... "r000001" ... ]]]`, as an argument. */
export function deepListLiteral(depth: number): string {
  return `query DeepLiteral { review(id: ${'['.repeat(depth)}"${SEED_REVIEW_ID}"${']'.repeat(depth)}) { id } }`;
}

/**
 * A variable whose JSON value is a list nested `depth` deep. Written by hand: JSON.stringify
 * recurses, and the point is a value no sane client would build.
 */
export function deepListVariable(depth: number): RawBody {
  const query = 'query DeepVariable($id: ID!) { review(id: $id) { id } }';
  return `{"query":${JSON.stringify(query)},"variables":{"id":${'['.repeat(depth)}${JSON.stringify(SEED_REVIEW_ID)}${']'.repeat(depth)}}}`;
}

/** An input-object variable nested `depth` deep in JSON (`{"a":{"a":...}}`), sent where an ID goes. */
export function deepObjectVariable(depth: number): RawBody {
  const query = 'query DeepObject($id: ID!) { review(id: $id) { id } }';
  return `{"query":${JSON.stringify(query)},"variables":{"id":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}}`;
}

/** Pads the JSON body of `query` to `bytes` with whitespace or comments after the document. */
export function padded(query: string, bytes: number, kind: 'whitespace' | 'comments'): RawBody {
  const base = body(query).length;
  const room = bytes - base;
  if (room <= 0) return body(query);
  let padding: string;
  if (kind === 'whitespace') {
    padding = ' '.repeat(room);
  } else {
    // A comment line `#xxx...\n`: the newline is two bytes once JSON-escaped.
    const line = `#${'x'.repeat(97)}\n`;
    const lineBytes = line.length + 1;
    const lines = Math.floor(room / lineBytes);
    padding = line.repeat(lines) + '#'.repeat(Math.max(0, room - lines * lineBytes));
  }
  return body(`${query}\n${padding}`);
}

/** A string of `bytes` ASCII characters. */
export const longString = (bytes: number, char = 'x'): string => char.repeat(bytes);

/** A document whose `review(id:)` argument is a string literal of `bytes` bytes. */
export function longStringArgument(bytes: number): string {
  return `query LongString { review(id: "${longString(bytes)}") { id } }`;
}

/** The same long string as a variable. */
export function longStringVariable(bytes: number): RawBody {
  return body('query LongVariable($id: ID!) { review(id: $id) { id } }', { variables: { id: longString(bytes) } });
}

/** A `products` page after a cursor of `bytes` bytes (gateway and products). */
export function longCursor(bytes: number): string {
  return `query LongCursor { products(first: 5, after: "${longString(bytes, 'A')}") { edges { cursor node { id } } } }`;
}

/** NUL bytes: raw in a string literal, escaped in one, in a variable, raw between tokens, in the operation name. */
export const nulBodies = {
  rawInString: body(`query RawNul { review(id: "r\u0000000001") { id } }`),
  escapedInString: body(`query EscapedNul { review(id: "r\\u0000000001") { id } }`),
  inVariable: body('query NulVariable($id: ID!) { review(id: $id) { id } }', { variables: { id: 'r\u0000000001' } }),
  betweenTokens: body(`query BetweenNul { review\u0000(id: "${SEED_REVIEW_ID}") { id } }`),
  inOperationName: body('query Named { __typename }', { operationName: 'Named\u0000' }),
} as const;

/** A body over the HTTP front's limit: refused (413) before it is parsed. */
export function overLimitBody(bytes = 1_048_576): RawBody {
  return padded('{ __typename }', bytes, 'whitespace');
}

/** JSON of a plain document. */
export const asBody = (query: string, extra: Omit<GraphQLBody, 'query'> = {}): RawBody => body(query, extra);
