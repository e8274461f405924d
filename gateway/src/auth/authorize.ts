import { createHash, randomBytes } from 'node:crypto';
import type { ApolloServerPlugin, BaseContext, GraphQLRequest } from '@apollo/server';
import {
  type DirectiveNode,
  type DocumentNode,
  type FieldNode,
  type GraphQLCompositeType,
  type GraphQLField,
  type GraphQLFormattedError,
  type GraphQLOutputType,
  type GraphQLSchema,
  Kind,
  type OperationDefinitionNode,
  TypeInfo,
  getNamedType,
  isAbstractType,
  isListType,
  isNonNullType,
  visit,
  visitWithTypeInfo,
} from 'graphql';
import { DEFAULT_SUPPORTED_SUPERGRAPH_FEATURES } from '@apollo/federation-internals';
import { LRUCache } from 'lru-cache';
import { ADMIN_ROLE, type Identity } from '@shop/server';
import { AUTH_SPEC_URLS } from '@shop/composition';
import { type AuthDirectives, type Requirement, authDirectivesOf, emptyAuthDirectives } from './directives';

/** The `extensions.code` of a field the caller may not see (Apollo Router's). */
export const UNAUTHORIZED_FIELD_OR_TYPE = 'UNAUTHORIZED_FIELD_OR_TYPE';

/**
 * Decides one `@policy` name for a request, before planning (as Apollo Router's coprocessors do):
 * it sees who is asking, not the data. Per-object rules (is this order yours?) are the owning
 * subgraph's, which gets the same identity signed.
 */
export type Policy = (identity: Identity | undefined) => boolean;

/**
 * The shop's policies. `self`: a signed-in caller, asking for data the owning subgraph gives only
 * to its owner (or an admin); `admin`: the caller holds the admin role. A policy the supergraph
 * names and no one registered never holds.
 */
export const defaultPolicies: Readonly<Record<string, Policy>> = {
  self: (identity) => identity !== undefined,
  admin: (identity) => identity?.roles.includes(ADMIN_ROLE) ?? false,
};

export interface AuthorizationOptions {
  /** Policies by name, over {@link defaultPolicies}. */
  policies?: Record<string, Policy>;
  /** At most this many UNAUTHORIZED_FIELD_OR_TYPE errors per response (a list of 10,000 users is still 10,000 nulls). @default 100 */
  maxErrors?: number;
  /**
   * Rewrites kept, by document, operation and what the caller may see, bounded by the documents'
   * total length in characters (their parsed form is some ten times that). @default 1_000_000
   */
  cacheChars?: number;
}

/** A field taken out of the operation, and what stands in its place: `marker: __typename`. */
interface Removal {
  /** The field's response key (its alias, else its name), where the null goes. */
  responseKey: string;
  /** Its type is non-null: the null goes up to {@link nullableAt} instead. */
  nonNull: boolean;
  /**
   * For a non-null field: how many positions above the object that holds it the null lands (0:
   * that object's own place; a list's item and the list are a position each). Past the operation's
   * root field, `data` itself is null.
   */
  nullableAt: number;
}

interface Rewrite {
  document: DocumentNode;
  operation: OperationDefinitionNode | undefined;
  /** By marker alias. Empty: nothing was removed, and the document is the client's. */
  removals: ReadonlyMap<string, Removal>;
  /** What the response cache and the plan cache key on besides the document: '' when nothing was removed. */
  signature: string;
  /** Its weight in the rewrite cache: the length of the document's source. */
  size: number;
}

/** The same for every operation the caller may see whole: it holds no document. */
const NO_REWRITE: Rewrite = {
  document: { kind: Kind.DOCUMENT, definitions: [] },
  operation: undefined,
  removals: new Map(),
  signature: '',
  size: 1,
};

/** Every condition holds for this caller. */
function satisfies(requirements: readonly Requirement[], identity: Identity | undefined, policy: (name: string) => boolean): boolean {
  return requirements.every((r) => {
    if (r.kind === 'authenticated') return identity !== undefined;
    if (r.kind === 'scopes') return identity !== undefined && r.anyOf.some((all) => all.every((s) => identity.scopes.includes(s)));
    return r.anyOf.some((all) => all.every(policy));
  });
}

/** The positions of a field's value, innermost first: [item, list] for `[T!]!` is [true, true]. */
function positionsOf(type: GraphQLOutputType): boolean[] {
  const outermostFirst: boolean[] = [];
  let t: GraphQLOutputType = type;
  for (;;) {
    const nonNull = isNonNullType(t);
    if (isNonNullType(t)) t = t.ofType;
    outermostFirst.push(nonNull);
    if (!isListType(t)) break;
    t = t.ofType as GraphQLOutputType;
  }
  return outermostFirst.reverse();
}

/**
 * Authorization before planning, as Apollo Router does it, on @apollo/gateway (which ignores the
 * directives): each field whose `@authenticated`, `@requiresScopes` or `@policy` (on the field,
 * on the type it returns, or, through an interface, on any implementation) the caller does not
 * satisfy is taken out of the operation, so no subgraph is asked for it; the rest is planned and
 * runs. In the response the field is null, with an UNAUTHORIZED_FIELD_OR_TYPE error at its path.
 *
 * How: each removed field is replaced by `<marker>: __typename` (keeping its `@skip`/`@include`),
 * so the objects it would have been on carry the marker in the result; the marker becomes the
 * field's null there, and its error gets that object's path. A non-null field's null goes up to
 * the nearest nullable place, as GraphQL's own null propagation would.
 *
 * The rewritten document is planned under its own query hash, and the response cache keys on
 * what was removed (`signatureOf`), so a plan or a response made for one caller is never served to
 * a caller who may see more or less. Rewrites are cached per document and caller class (signed in
 * or not, the scopes and policies the supergraph names), so the walk runs once per shape. A
 * supergraph without the directives costs nothing.
 */
export function authorization<TContext extends BaseContext & { identity?: Identity | undefined }>(
  options: AuthorizationOptions = {},
): { plugin: ApolloServerPlugin<TContext>; signatureOf: (request: GraphQLRequest) => string } {
  const policies = { ...defaultPolicies, ...options.policies };
  // @apollo/gateway refuses a supergraph with `for: SECURITY` features it does not list, rightly:
  // it would ignore them. This gateway enforces these three, so it lists them. (The list is the
  // library's, shared by the process; a gateway built with authorization off refuses such a
  // supergraph itself, in createGateway.)
  for (const url of AUTH_SPEC_URLS) DEFAULT_SUPPORTED_SUPERGRAPH_FEATURES.add(url);
  const maxErrors = options.maxErrors ?? 100;
  const rewrites = new LRUCache<string, Rewrite>({ maxSize: options.cacheChars ?? 1_000_000, sizeCalculation: (r) => r.size });
  // Random per process: no client alias can be mistaken for a marker.
  const markerPrefix = `_authz${randomBytes(6).toString('hex')}_`;
  let directives: AuthDirectives = emptyAuthDirectives();
  let generation = 0;
  const signatures = new WeakMap<GraphQLRequest, string>();

  const rewrite = (
    schema: GraphQLSchema,
    document: DocumentNode,
    operationName: string | null,
    identity: Identity | undefined,
    size: number,
  ): Rewrite => {
    const policyResults = new Map<string, boolean>();
    const policy = (name: string): boolean => {
      let result = policyResults.get(name);
      if (result === undefined) {
        result = policies[name]?.(identity) ?? false;
        policyResults.set(name, result);
      }
      return result;
    };
    const permitted = (parent: GraphQLCompositeType, field: GraphQLField<unknown, unknown>): boolean => {
      const parents = isAbstractType(parent) ? [parent, ...schema.getPossibleTypes(parent)] : [parent];
      const named = getNamedType(field.type);
      const returned = isAbstractType(named) ? [named, ...schema.getPossibleTypes(named)] : [named];
      for (const p of parents) {
        const own = directives.fields.get(`${p.name}.${field.name}`);
        if (own && !satisfies(own, identity, policy)) return false;
      }
      for (const t of returned) {
        const own = directives.types.get(t.name);
        if (own && !satisfies(own, identity, policy)) return false;
      }
      return true;
    };

    const typeInfo = new TypeInfo(schema);
    const removed = new Map<FieldNode, Removal & { marker: string }>();
    // The enclosing fields' value positions (each innermost first), the innermost field last.
    const enclosing: boolean[][] = [];
    visit(
      document,
      visitWithTypeInfo(typeInfo, {
        Field: {
          enter(node) {
            const parent = typeInfo.getParentType();
            const field = typeInfo.getFieldDef();
            if (parent && field && !permitted(parent, field)) {
              const nonNull = isNonNullType(field.type);
              let nullableAt = 0;
              if (nonNull) {
                // Innermost first: the holding object's own place, then outwards.
                const above = [...enclosing].reverse().flat();
                const first = above.indexOf(false);
                // Past the last known place: the operation's `data`, or in a fragment the object
                // the fragment is spread on (its own place's nullability is not known here).
                nullableAt = first >= 0 ? first : above.length;
              }
              removed.set(node, {
                marker: `${markerPrefix}${removed.size}`,
                responseKey: (node.alias ?? node.name).value,
                nonNull,
                nullableAt,
              });
              return false;
            }
            enclosing.push(field ? positionsOf(field.type) : [false]);
            return undefined;
          },
          leave() {
            enclosing.pop();
          },
        },
      }),
    );
    if (removed.size === 0) return NO_REWRITE;
    const markerOf = (node: FieldNode): FieldNode => {
      const removal = removed.get(node) as Removal & { marker: string };
      const conditions: DirectiveNode[] = (node.directives ?? []).filter((d) => d.name.value === 'skip' || d.name.value === 'include');
      return {
        kind: Kind.FIELD,
        alias: { kind: Kind.NAME, value: removal.marker },
        name: { kind: Kind.NAME, value: '__typename' },
        directives: conditions,
      };
    };
    const rewritten = visit(document, {
      Field(node) {
        return removed.has(node) ? markerOf(node) : undefined;
      },
    });
    const removals = new Map([...removed.values()].map(({ marker, ...removal }) => [marker, removal]));
    const signature = createHash('sha256')
      .update([...removed.values()].map((r) => `${r.marker}:${r.responseKey}`).join(','))
      .digest('base64url');
    return { document: rewritten, operation: findOperation(rewritten, operationName), removals, signature, size };
  };

  /** Which class of caller an identity is, for the rewrite cache: only what the directives ask about. */
  const classOf = (identity: Identity | undefined): string => {
    if (!identity) return '-';
    const scopes = directives.scopes.map((s) => (identity.scopes.includes(s) ? '1' : '0')).join('');
    const decided = directives.policies.map((p) => (policies[p]?.(identity) ? '1' : '0')).join('');
    return `+${scopes}/${decided}`;
  };

  const plugin: ApolloServerPlugin<TContext> = {
    async serverWillStart() {
      return {
        schemaDidLoadOrUpdate({ coreSupergraphSdl }) {
          if (!coreSupergraphSdl) return;
          directives = authDirectivesOf(coreSupergraphSdl);
          generation++;
          rewrites.clear();
        },
      };
    },
    async requestDidStart() {
      let applied: Rewrite | undefined;
      return {
        async didResolveOperation(requestContext) {
          if (directives.fields.size === 0 && directives.types.size === 0) return;
          const { document, schema, request, contextValue } = requestContext;
          const operationName = request.operationName ?? null;
          const key = `${generation}\0${requestContext.queryHash}\0${operationName ?? ''}\0${classOf(contextValue.identity)}`;
          let result = rewrites.get(key);
          if (!result) {
            const size = Math.max(1, requestContext.source?.length ?? 1);
            result = rewrite(schema, document, operationName, contextValue.identity, size);
            rewrites.set(key, result);
          }
          if (result.removals.size === 0) return;
          applied = result;
          signatures.set(request, result.signature);
          // Apollo Server passes these on to the gateway's executor, which plans the document under
          // the query hash: a caller who may see more must not get this plan.
          const writable = requestContext as unknown as {
            document: DocumentNode;
            operation: OperationDefinitionNode | undefined;
            queryHash: string;
          };
          writable.document = result.document;
          writable.operation = result.operation;
          writable.queryHash = createHash('sha256').update(`${requestContext.queryHash}\0${result.signature}`).digest('hex');
        },
        async willSendResponse({ response }) {
          if (!applied || response.body.kind !== 'single') return;
          const result = response.body.singleResult;
          const { data, errors } = restoreRemoved(result.data, applied.removals, maxErrors);
          if (result.data !== undefined) result.data = data;
          if (errors.length > 0) result.errors = [...(result.errors ?? []), ...errors];
        },
      };
    },
  };
  return { plugin, signatureOf: (request) => signatures.get(request) ?? '' };
}

function findOperation(document: DocumentNode, operationName: string | null): OperationDefinitionNode | undefined {
  const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  if (operationName === null) return operations.length === 1 ? operations[0] : undefined;
  return operations.find((o) => o.name?.value === operationName);
}

type Container = Record<string, unknown> | unknown[];
interface Slot {
  container: Container;
  key: string | number;
}

/**
 * Turns markers back into the removed fields' nulls, in the fields' places, each with an error at
 * its path; a non-null field's null goes up to its nullable place. Linear in the response.
 */
function restoreRemoved(
  data: Record<string, unknown> | null | undefined,
  removals: ReadonlyMap<string, Removal>,
  maxErrors: number,
): { data: Record<string, unknown> | null | undefined; errors: GraphQLFormattedError[] } {
  const errors: GraphQLFormattedError[] = [];
  if (!data) return { data, errors };
  const reported = new Set<string>();
  const propagate: Array<{ slots: Slot[]; up: number }> = [];
  const path: Array<string | number> = [];

  const restoreObject = (object: Record<string, unknown>, slots: Slot[]): Record<string, unknown> => {
    let out = object;
    if (Object.keys(object).some((k) => removals.has(k))) {
      out = {};
      for (const [key, value] of Object.entries(object)) {
        const removal = removals.get(key);
        if (!removal) {
          out[key] = value;
          continue;
        }
        if (!(removal.responseKey in out)) out[removal.responseKey] = null;
        const at = [...path, removal.responseKey];
        const id = at.join('\0');
        if (!reported.has(id)) {
          reported.add(id);
          if (errors.length < maxErrors) {
            errors.push({ message: 'Unauthorized field or type', path: at, extensions: { code: UNAUTHORIZED_FIELD_OR_TYPE } });
          }
        }
        if (removal.nonNull) propagate.push({ slots: [...slots], up: removal.nullableAt });
      }
    }
    for (const [key, value] of Object.entries(out)) {
      if (value === null || typeof value !== 'object') continue;
      path.push(key);
      slots.push({ container: out, key });
      out[key] = restoreValue(value, slots);
      slots.pop();
      path.pop();
    }
    return out;
  };
  const restoreValue = (value: object, slots: Slot[]): unknown => {
    if (!Array.isArray(value)) return restoreObject(value as Record<string, unknown>, slots);
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (item === null || typeof item !== 'object') continue;
      path.push(i);
      slots.push({ container: value, key: i });
      value[i] = restoreValue(item, slots);
      slots.pop();
      path.pop();
    }
    return value;
  };

  const restored = restoreObject(data, []);
  let rootNull = false;
  for (const { slots, up } of propagate) {
    if (up >= slots.length) {
      rootNull = true;
      continue;
    }
    const slot = slots[slots.length - 1 - up] as Slot;
    (slot.container as Record<string | number, unknown>)[slot.key] = null;
  }
  return { data: rootNull ? null : restored, errors };
}
