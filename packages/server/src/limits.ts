import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import { GraphQLError, type ValidationContext, type ValidationRule } from 'graphql';
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
  /** Lexical tokens in the whole document; the parser stops at the first token over. @default 2000 */
  tokens: number;
}

export const defaultDocumentLimits: DocumentLimits = { depth: 15, aliases: 50, directives: 50, tokens: 2000 };

/** The `extensions.validationErrorCode` of each limit, beside `code: GRAPHQL_VALIDATION_FAILED`. */
export const LIMIT_CODES = {
  depth: 'MAX_DEPTH_EXCEEDED',
  aliases: 'MAX_ALIASES_EXCEEDED',
  directives: 'MAX_DIRECTIVES_EXCEEDED',
} as const;

type ArmorLimit = keyof typeof LIMIT_CODES;

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
  ];
}

/**
 * graphql-js's own token limit (what Armor's max-tokens plugin does for Envelop): the parser
 * stops at the first token over, so a 1 MB document costs no more than `tokens` tokens of work.
 * A document over it is `GRAPHQL_PARSE_FAILED` ("Document contains more than N tokens").
 */
export function parseOptionsFor(limits: DocumentLimits): { maxTokens: number } {
  return { maxTokens: limits.tokens };
}
