import { DEFAULT_SUPPORTED_SUPERGRAPH_FEATURES, Supergraph } from '@apollo/federation-internals';
import type { GraphQLSchema } from 'graphql';

/**
 * The authorization specs composition links `for: SECURITY` when a subgraph uses `@authenticated`,
 * `@requiresScopes` or `@policy`. @apollo/gateway's own feature check refuses them (it would
 * ignore them); our gateway enforces them (gateway/src/auth), so it and our tools accept them.
 */
export const AUTH_SPEC_URLS = [
  'https://specs.apollo.dev/authenticated/v0.1',
  'https://specs.apollo.dev/requiresScopes/v0.1',
  'https://specs.apollo.dev/policy/v0.1',
] as const;

/** The features a supergraph may link here: @apollo/gateway's and {@link AUTH_SPEC_URLS}. None changes the API schema. */
export const SUPERGRAPH_FEATURES: ReadonlySet<string> = new Set([...DEFAULT_SUPPORTED_SUPERGRAPH_FEATURES, ...AUTH_SPEC_URLS]);

/** The schema clients see: the supergraph without federation machinery and @inaccessible parts. */
export function apiSchemaOf(supergraphSdl: string): GraphQLSchema {
  return Supergraph.build(supergraphSdl, { supportedFeatures: new Set(SUPERGRAPH_FEATURES) })
    .apiSchema()
    .toGraphQLJSSchema();
}
