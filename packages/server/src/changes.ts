import type { GraphQLSchema } from 'graphql';

/** An entity a write changed, for the gateway's caches to evict: `{ __typename, id }`. */
export interface Invalidation {
  __typename: string;
  id: string;
}

/** Marks a Mutation resolver built by `declareChanges`: the start-up check looks for it. */
const DECLARED = Symbol('declaredChanges');
/** Where a request's context collects the entities its mutations changed. */
export const CHANGED = Symbol('changedEntities');

// Resolver types as graphql-codegen writes them: a function, or `{ resolve }`.
type ResolverFnOf<R> = R extends (...args: never[]) => unknown ? R : R extends { resolve: infer F } ? F : never;
type ArgsOf<R> = ResolverFnOf<R> extends (parent: never, args: infer A, ...rest: never[]) => unknown ? A : never;
type ResultOf<R> = ResolverFnOf<R> extends (...args: never[]) => infer T ? Awaited<T> : never;

/**
 * For each Mutation field, the entities it changed, from its arguments and the domain result its
 * resolver returned (before any selection applies, so what the client selected never matters).
 */
export type MutationChanges<M> = {
  [K in keyof M as string extends K ? never : K]-?: (
    args: ArgsOf<NonNullable<M[K]>>,
    result: ResultOf<NonNullable<M[K]>>,
  ) => Invalidation[];
};

type AnyResolverFn = (parent: unknown, args: unknown, context: unknown, info: unknown) => unknown;

/**
 * Declares what each mutation changes. Write the resolvers with `satisfies MutationResolvers` (so
 * their parameters are typed) and pass them here with one `(args, result) => Invalidation[]` per
 * field: a field without one does not compile, and `createSubgraph` refuses to start a subgraph
 * whose schema has a Mutation field without a declared resolver. After the resolver succeeds, its
 * declared entities go to the gateway in `extensions.invalidate`; a resolver that throws declares
 * nothing (it wrote nothing: see the write paths' transactions).
 */
export function declareChanges<M extends object>(mutations: M, changes: MutationChanges<M>): M {
  const declared: Record<string, unknown> = {};
  const table = changes as Record<string, (args: unknown, result: unknown) => Invalidation[]>;
  for (const [field, resolver] of Object.entries(mutations)) {
    const resolve = (typeof resolver === 'function' ? resolver : (resolver as { resolve: AnyResolverFn }).resolve) as AnyResolverFn;
    const changed = table[field];
    if (typeof changed !== 'function') throw new Error(`Mutation.${field} declares no changes`);
    const wrapped = async (parent: unknown, args: unknown, context: unknown, info: unknown) => {
      const result = await resolve(parent, args, context, info);
      recordChanges(context, changed(args, result));
      return result;
    };
    Object.defineProperty(wrapped, DECLARED, { value: true });
    declared[field] = typeof resolver === 'function' ? wrapped : { ...(resolver as object), resolve: wrapped };
  }
  return declared as M;
}

/** Adds to the request's list; a context that `createSubgraph` did not build (a unit test's) keeps none. */
function recordChanges(context: unknown, entities: Invalidation[]): void {
  const list = (context as { [CHANGED]?: Invalidation[] } | null)?.[CHANGED];
  if (list) list.push(...entities);
}

/** Mutation fields of `schema` whose resolver was not built by `declareChanges`. */
export function undeclaredMutations(schema: GraphQLSchema, resolvers: object): string[] {
  const fields = Object.keys(schema.getMutationType()?.getFields() ?? {});
  const map = (resolvers as { Mutation?: Record<string, unknown> }).Mutation ?? {};
  const isDeclared = (r: unknown) => {
    const fn = typeof r === 'function' ? r : (r as { resolve?: unknown } | undefined)?.resolve;
    return typeof fn === 'function' && (fn as { [DECLARED]?: boolean })[DECLARED] === true;
  };
  return fields.filter((f) => !isDeclared(map[f]));
}

/** Whether any Mutation resolver of `resolvers` declares its changes (the subgraph opted in). */
export function declaresChanges(schema: GraphQLSchema, resolvers: object): boolean {
  const fields = Object.keys(schema.getMutationType()?.getFields() ?? {});
  return fields.length > 0 && undeclaredMutations(schema, resolvers).length < fields.length;
}
