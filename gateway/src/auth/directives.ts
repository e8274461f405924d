import { type DirectiveNode, type DocumentNode, Kind, parse } from 'graphql';
import { argumentsOf } from '@shop/server';

/** One condition a field or type sets on who may read it. */
export type Requirement =
  /** `@authenticated`: a verified caller, whoever it is. */
  | { kind: 'authenticated' }
  /** `@requiresScopes(scopes: [[a, b], [c]])`: all scopes of at least one inner list. */
  | { kind: 'scopes'; anyOf: string[][] }
  /** `@policy(policies: [[p, q], [r]])`: all policies of at least one inner list hold. */
  | { kind: 'policy'; anyOf: string[][] };

/** The supergraph's authorization directives, by schema coordinate. */
export interface AuthDirectives {
  /** By `Type.field`. */
  fields: ReadonlyMap<string, readonly Requirement[]>;
  /** By type name: every field that returns the type needs them too. */
  types: ReadonlyMap<string, readonly Requirement[]>;
  /** Every scope and policy named anywhere: what an identity is judged on. */
  scopes: readonly string[];
  policies: readonly string[];
}

export const emptyAuthDirectives = (): AuthDirectives => ({ fields: new Map(), types: new Map(), scopes: [], policies: [] });

/** The specs Apollo Router enforces; composition links them `for: SECURITY` in the supergraph. */
const SPECS = {
  authenticated: /^https:\/\/specs\.apollo\.dev\/authenticated\/v0\.\d+$/,
  requiresScopes: /^https:\/\/specs\.apollo\.dev\/requiresScopes\/v0\.\d+$/,
  policy: /^https:\/\/specs\.apollo\.dev\/policy\/v0\.\d+$/,
} as const;
type Spec = keyof typeof SPECS;

/** The names the directives go by in this supergraph: the spec's own, or the link's `as:`. */
function directiveNames(document: DocumentNode): Map<string, Spec> {
  const names = new Map<string, Spec>();
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.SCHEMA_DEFINITION && definition.kind !== Kind.SCHEMA_EXTENSION) continue;
    for (const directive of definition.directives ?? []) {
      if (directive.name.value !== 'link') continue;
      const args = argumentsOf(directive);
      if (typeof args.url !== 'string') continue;
      for (const spec of Object.keys(SPECS) as Spec[]) {
        if (SPECS[spec].test(args.url)) names.set(typeof args.as === 'string' ? args.as : spec, spec);
      }
    }
  }
  return names;
}

/**
 * Whether a supergraph links any of the three: a gateway that does not enforce them must refuse
 * it, as @apollo/gateway itself refuses `for: SECURITY` features it does not know.
 */
export const linksAuthDirectives = (sdl: string | DocumentNode): boolean =>
  directiveNames(typeof sdl === 'string' ? parse(sdl, { noLocation: true }) : sdl).size > 0;

const nestedStrings = (value: unknown): string[][] =>
  Array.isArray(value)
    ? value.filter(Array.isArray).map((inner: unknown[]) => inner.filter((v): v is string => typeof v === 'string'))
    : [];

/**
 * Reads `@authenticated`, `@requiresScopes` and `@policy` from a supergraph SDL: the API schema
 * the gateway validates against drops them, the supergraph keeps them (linked `for: SECURITY`).
 * A supergraph that does not link them has none, and its operations run untouched.
 */
export function authDirectivesOf(sdl: string | DocumentNode): AuthDirectives {
  const document = typeof sdl === 'string' ? parse(sdl, { noLocation: true }) : sdl;
  const names = directiveNames(document);
  if (names.size === 0) return emptyAuthDirectives();
  const scopes = new Set<string>();
  const policies = new Set<string>();
  const requirementsOf = (directives: readonly DirectiveNode[] | undefined): Requirement[] => {
    const out: Requirement[] = [];
    for (const directive of directives ?? []) {
      const spec = names.get(directive.name.value);
      if (spec === 'authenticated') out.push({ kind: 'authenticated' });
      else if (spec === 'requiresScopes') {
        const anyOf = nestedStrings(argumentsOf(directive).scopes);
        for (const s of anyOf.flat()) scopes.add(s);
        out.push({ kind: 'scopes', anyOf });
      } else if (spec === 'policy') {
        const anyOf = nestedStrings(argumentsOf(directive).policies);
        for (const p of anyOf.flat()) policies.add(p);
        out.push({ kind: 'policy', anyOf });
      }
    }
    return out;
  };
  const fields = new Map<string, Requirement[]>();
  const types = new Map<string, Requirement[]>();
  const add = (map: Map<string, Requirement[]>, key: string, list: Requirement[]) => {
    if (list.length > 0) map.set(key, [...(map.get(key) ?? []), ...list]);
  };
  for (const definition of document.definitions) {
    if (definition.kind === Kind.DIRECTIVE_DEFINITION || definition.kind === Kind.SCHEMA_DEFINITION) continue;
    if (definition.kind === Kind.SCHEMA_EXTENSION || !('name' in definition) || !definition.name) continue;
    const typeName = definition.name.value;
    add(types, typeName, requirementsOf('directives' in definition ? definition.directives : undefined));
    if (definition.kind !== Kind.OBJECT_TYPE_DEFINITION && definition.kind !== Kind.INTERFACE_TYPE_DEFINITION) continue;
    for (const field of definition.fields ?? []) add(fields, `${typeName}.${field.name.value}`, requirementsOf(field.directives));
  }
  return { fields, types, scopes: [...scopes].sort(), policies: [...policies].sort() };
}
