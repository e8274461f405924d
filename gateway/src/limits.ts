import {
  type FragmentDefinitionNode,
  GraphQLError,
  Kind,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';

/** Bounds on what one operation may ask for; hostile documents are refused before planning. */
export interface QueryLimits {
  /** Deepest nesting of selections, fragments followed. @default 15 */
  depth: number;
  /** Aliased fields in one operation (alias batching multiplies work). @default 50 */
  aliases: number;
}

export const defaultQueryLimits: QueryLimits = { depth: 15, aliases: 50 };

interface Measure {
  depth: number;
  aliases: number;
}

/** Depth and alias count of a selection set, following fragment spreads once per path. */
function measure(set: SelectionSetNode, fragments: Map<string, FragmentDefinitionNode>, seen: Set<string>): Measure {
  let depth = 0;
  let aliases = 0;
  for (const selection of set.selections) {
    if (selection.kind === Kind.FIELD) {
      if (selection.alias) aliases++;
      const inner = selection.selectionSet ? measure(selection.selectionSet, fragments, seen) : { depth: 0, aliases: 0 };
      depth = Math.max(depth, 1 + inner.depth);
      aliases += inner.aliases;
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      const inner = measure(selection.selectionSet, fragments, seen);
      depth = Math.max(depth, inner.depth);
      aliases += inner.aliases;
    } else {
      const name = selection.name.value;
      const fragment = fragments.get(name);
      // A cycle is reported by graphql-js's own NoFragmentCycles rule; just do not loop on it.
      if (!fragment || seen.has(name)) continue;
      seen.add(name);
      const inner = measure(fragment.selectionSet, fragments, seen);
      seen.delete(name);
      depth = Math.max(depth, inner.depth);
      aliases += inner.aliases;
    }
  }
  return { depth, aliases };
}

/** A validation rule refusing operations deeper or more aliased than `limits`, with a clear message. */
export function queryLimitsRule(limits: QueryLimits): ValidationRule {
  return (context: ValidationContext) => {
    const fragments = new Map(
      context
        .getDocument()
        .definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION)
        .map((d) => [d.name.value, d]),
    );
    return {
      OperationDefinition(node) {
        const { depth, aliases } = measure(node.selectionSet, fragments, new Set());
        const name = node.name ? `Operation "${node.name.value}"` : 'The operation';
        if (depth > limits.depth) {
          context.reportError(
            new GraphQLError(`${name} is ${depth} levels deep; the limit is ${limits.depth}.`, {
              nodes: [node],
              extensions: { validationErrorCode: 'MAX_DEPTH_EXCEEDED' },
            }),
          );
        }
        if (aliases > limits.aliases) {
          context.reportError(
            new GraphQLError(`${name} uses ${aliases} aliases; the limit is ${limits.aliases}.`, {
              nodes: [node],
              extensions: { validationErrorCode: 'MAX_ALIASES_EXCEEDED' },
            }),
          );
        }
      },
    };
  };
}
