// The application's subgraphs and the helpers both launchers (embedded and services mode) share:
// its own module, so that index.ts and services.ts both import it and neither imports the other.
import { resolve } from 'node:path';
import { createAccounts } from '@shop/accounts';
import { type SubgraphConfig, loadSubgraphConfig } from '@shop/config';
import { createInventory } from '@shop/inventory';
import { createOrders } from '@shop/orders';
import { createPayments } from '@shop/payments';
import { createProducts } from '@shop/products';
import { createReviews } from '@shop/reviews';

/** The repository root, where supergraph.graphql lives. */
export const REPO_ROOT = resolve(__dirname, '..', '..');

/** The subgraphs of this repository with their contract ports, in supergraph.yaml order. */
export const SUBGRAPHS = [
  { name: 'accounts', port: 4001, create: createAccounts },
  { name: 'products', port: 4002, create: createProducts },
  { name: 'inventory', port: 4003, create: createInventory },
  { name: 'reviews', port: 4004, create: createReviews },
  { name: 'orders', port: 4005, create: createOrders },
  { name: 'payments', port: 4006, create: createPayments },
] as const;

export type SubgraphName = (typeof SUBGRAPHS)[number]['name'];

/** A process's port: the one asked for; else 0 when the caller asked for free ports elsewhere; else the configured one. */
export function portFor(ports: Partial<Record<string, number>> | undefined, name: string, configuredPort: number): number {
  const asked = ports?.[name];
  if (asked !== undefined) return asked;
  return ports && Object.values(ports).includes(0) ? 0 : configuredPort;
}

/** Every subgraph's settings from one environment, with its contract port as the default port. */
export function loadSubgraphConfigs(env: NodeJS.ProcessEnv): Record<SubgraphName, SubgraphConfig> {
  return Object.fromEntries(SUBGRAPHS.map((s) => [s.name, loadSubgraphConfig(s.name, s.port, env)])) as Record<
    SubgraphName,
    SubgraphConfig
  >;
}

/** Where accounts publishes its public keys, from its GraphQL URL: the gateway's `JWKS_URL` when none is set. */
export function jwksUrlOf(accountsGraphqlUrl: string): string {
  return new URL('/.well-known/jwks.json', accountsGraphqlUrl).toString();
}
