import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import { type FieldNode, GraphQLError, Kind, type SelectionSetNode, type ValidationContext, type ValidationRule } from 'graphql';
import type { Metrics } from '@shop/telemetry';

/**
 * Bounds on one GraphQL document, checked before any planning or resolving. Every check is linear
 * in the document's size: GraphQL Armor's rules measure each fragment once and reuse the result at
 * every spread, and the token limit stops the parser itself.
 */
export interface DocumentLimits {
  /** Deepest nesting of fields, fragments followed (a spread adds no level). @default 15 */
  depth: number;
  /** Aliased fields in one operation, counted through every fragment spread. @default 50 */
  aliases: number;
  /** Directives in one operation, counted through every fragment spread. @default 50 */
  directives: number;
  /** Lexical tokens in the whole document; the parser stops at the first token over. GraphQL Armor's default; gateway/test/cost.test.ts checks the storefront's operations and an introspection query use at most a fifth of it. @default 1000 */
  tokens: number;
  /**
   * Field selections of one operation once every fragment spread is expanded: what the query
   * planner and the executor walk. Stacked fragments that spread two others reach 2^n fields in
   * a few hundred bytes. @default 2000
   */
  fields: number;
}

export const defaultDocumentLimits: DocumentLimits = { depth: 15, aliases: 50, directives: 50, tokens: 1000, fields: 2000 };

/** The `extensions.validationErrorCode` of each limit, beside `code: GRAPHQL_VALIDATION_FAILED`. */
export const LIMIT_CODES = {
  depth: 'MAX_DEPTH_EXCEEDED',
  aliases: 'MAX_ALIASES_EXCEEDED',
  directives: 'MAX_DIRECTIVES_EXCEEDED',
  fields: 'MAX_FIELDS_EXCEEDED',
} as const;

type ArmorLimit = Exclude<keyof typeof LIMIT_CODES, 'fields'>;

/** Armor's callbacks: the context (null from the parser), then the measure or Armor's own error. */
type AcceptHandler = (context: ValidationContext | null, details: { n: number }) => void;
type RejectHandler = (context: ValidationContext | null, error: GraphQLError) => void;

/** The Armor rule options we set; the packages' own option types are not exported from their roots. */
interface ArmorRuleOptions {
  n: number;
  exposeLimits: boolean;
  propagateOnRejection: boolean;
  onAccept: AcceptHandler[];
  onReject: RejectHandler[];
  flattenFragments?: boolean;
  ignoreIntrospection?: boolean;
}

export interface DocumentLimitOptions {
  /** Counts refusals in `graphql_documents_rejected_total{service, limit}`. */
  metrics?: Metrics;
  /** The `service` label of that counter. @default 'gateway' */
  service?: string;
}

/**
 * The validation rules for `limits` (depth, aliases, directives), from GraphQL Armor. Armor's
 * own error says "Syntax Error: ..." and is thrown out of validation; here each refusal is
 * reported as a validation error naming the limit, its value and what was found, with a
 * `validationErrorCode`, so the client gets one coded 400 and the other rules still run.
 */
export function documentLimitRules(limits: DocumentLimits, options: DocumentLimitOptions = {}): ValidationRule[] {
  const service = options.service ?? 'gateway';
  const rule = (limit: ArmorLimit, n: number, make: (opts: ArmorRuleOptions) => ValidationRule, noun: string): ValidationRule => {
    // Armor hands a refusal over as its own error, whose message carries what it found (exposeLimits).
    const onReject: RejectHandler = (context, error) => {
      const found = Number(/found (\d+)/.exec(error.message)?.[1] ?? NaN);
      options.metrics?.documentsRejected.inc({ service, limit });
      context?.reportError(
        new GraphQLError(`The operation's ${noun} is ${Number.isNaN(found) ? 'over the limit' : found}; the limit is ${n}.`, {
          extensions: { validationErrorCode: LIMIT_CODES[limit], limit: n, ...(Number.isNaN(found) ? {} : { found }) },
        }),
      );
    };
    return make({ n, exposeLimits: true, propagateOnRejection: false, onAccept: [], onReject: [onReject] });
  };
  return [
    rule('depth', limits.depth, (o) => maxDepthRule({ ...o, flattenFragments: true, ignoreIntrospection: true }), 'depth'),
    rule('aliases', limits.aliases, (o) => maxAliasesRule(o), 'alias count'),
    rule('directives', limits.directives, (o) => maxDirectivesRule(o), 'directive count'),
    expandedFieldsRule(limits.fields, options.metrics, service),
    finiteNumbersRule,
    reservedAliasRule,
  ];
}

/**
 * A counter of `weight` over a selection set with every fragment spread expanded, each fragment
 * counted once and its figure reused at every spread: linear in the document, whatever the
 * expanded size. Past `cap` the exact figure does not matter, and counting stops before numbers
 * grow without bound. Unknown fragments and cycles count as nothing (graphql-js's own rules
 * report them). Serves the expanded-fields rule and the response cache's alias count.
 */
export function expandedCounter(
  fragmentOf: (name: string) => SelectionSetNode | undefined,
  weight: (field: FieldNode) => number,
  cap = Number.POSITIVE_INFINITY,
): (set: SelectionSetNode) => number {
  const memo = new Map<string, number>();
  const active = new Set<string>();
  const count = (set: SelectionSetNode): number => {
    let total = 0;
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) total += weight(selection) + (selection.selectionSet ? count(selection.selectionSet) : 0);
      else if (selection.kind === Kind.INLINE_FRAGMENT) total += count(selection.selectionSet);
      else total += fragment(selection.name.value);
      if (total > cap) return total;
    }
    return total;
  };
  const fragment = (name: string): number => {
    const known = memo.get(name);
    if (known !== undefined) return known;
    const body = fragmentOf(name);
    if (!body || active.has(name)) return 0;
    active.add(name);
    const n = count(body);
    active.delete(name);
    memo.set(name, n);
    return n;
  };
  return count;
}

/**
 * Counts the field selections of each operation with every fragment spread expanded
 * (`expandedCounter`). GraphQL Armor has no such rule; without it, 30 levels of fragments that
 * each spread two others (2^30 fields in 2 KB) pass every other limit and reach the query
 * planner, which gives up with an uncoded error.
 */
function expandedFieldsRule(limit: number, metrics: Metrics | undefined, service: string): ValidationRule {
  return (context) => {
    const count = expandedCounter(
      (name) => context.getFragment(name)?.selectionSet,
      () => 1,
      limit,
    );
    return {
      OperationDefinition(node) {
        const found = count(node.selectionSet);
        if (found <= limit) return;
        metrics?.documentsRejected.inc({ service, limit: 'fields' });
        context.reportError(
          new GraphQLError(`The operation selects more than ${limit} fields once its fragments are expanded; the limit is ${limit}.`, {
            nodes: [node],
            extensions: { validationErrorCode: LIMIT_CODES.fields, limit },
          }),
        );
      },
    };
  };
}

/**
 * Refuses number literals that are not finite numbers (`1e309`, a 400-digit integer): a custom
 * scalar would read them as Infinity, which the query planner cannot print back into a subgraph
 * document (an uncoded error, found by the property test).
 */
const finiteNumbersRule: ValidationRule = (context) => ({
  FloatValue(node) {
    if (!Number.isFinite(Number(node.value))) {
      context.reportError(
        new GraphQLError(`The number ${node.value.slice(0, 20)}${node.value.length > 20 ? '…' : ''} is out of range.`, {
          nodes: [node],
          extensions: { validationErrorCode: 'NUMBER_OUT_OF_RANGE' },
        }),
      );
    }
  },
  IntValue(node) {
    if (!Number.isFinite(Number(node.value))) {
      context.reportError(
        new GraphQLError(`The number ${node.value.slice(0, 20)}… is out of range.`, {
          nodes: [node],
          extensions: { validationErrorCode: 'NUMBER_OUT_OF_RANGE' },
        }),
      );
    }
  },
});

/**
 * Refuses an alias that takes a reserved name (`__typename: rating`): graphql-js accepts it, and
 * @apollo/gateway's result shaping then reads the field's value as the object's type name and
 * fails with an uncoded INTERNAL_SERVER_ERROR (found by the property test). `__typename` may still
 * be aliased to any name, and other fields to other names.
 */
const reservedAliasRule: ValidationRule = (context) => ({
  Field(node) {
    // Only `__typename` itself: gateways use other `__` aliases on their own (Hive's response
    // cache sends `__responseCacheId: id` and `__responseCacheTypeName: __typename` to subgraphs).
    if (node.alias?.value !== '__typename' || node.name.value === '__typename') return;
    context.reportError(
      new GraphQLError('The alias "__typename" is reserved for the type name: alias another field to another name.', {
        nodes: [node.alias],
        extensions: { validationErrorCode: 'RESERVED_ALIAS' },
      }),
    );
  },
});

/**
 * graphql-js's own token limit (what Armor's max-tokens plugin does for Envelop): the parser
 * stops at the first token over, so a 1 MB document costs no more than `tokens` tokens of work.
 * A document over it is `GRAPHQL_PARSE_FAILED` ("Document contains more than N tokens").
 */
export function parseOptionsFor(limits: DocumentLimits): { maxTokens: number } {
  return { maxTokens: limits.tokens };
}
