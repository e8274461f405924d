// The baseline: plain @apollo/gateway as a user starts with it. No custom data source (Apollo's
// RemoteGraphQLDataSource and its default fetcher), no caches, no plugins beyond the defaults;
// the only change is the routing URLs, pointed at the bench's subgraphs.
//
// Environment (read once, here): SUPERGRAPH_PATH (required), GATEWAY_PORT (required),
// SUBGRAPH_<NAME>_URL (optional per subgraph).
import { readFileSync } from 'node:fs';
import { DEFAULT_SUPPORTED_SUPERGRAPH_FEATURES } from '@apollo/federation-internals';
import { ApolloGateway, RemoteGraphQLDataSource } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set; received ${JSON.stringify(value)}`);
  return value;
}

async function main() {
  // Apollo's own usage telemetry is off: nothing leaves the machine, and no peer pays for it.
  process.env.APOLLO_TELEMETRY_DISABLED = 'true';
  const supergraphSdl = readFileSync(required('SUPERGRAPH_PATH'), 'utf8');
  // The supergraph links the authorization specs (@authenticated, @requiresScopes, @policy) `for:
  // SECURITY`, which @apollo/gateway refuses to load since it cannot enforce them. Told to accept
  // them, it ignores them, as a plain gateway would: the bench sends it only requests that need no
  // authorization (the write mix, which does, is measured through ours alone).
  for (const spec of ['authenticated/v0.1', 'requiresScopes/v0.1', 'policy/v0.1'])
    DEFAULT_SUPPORTED_SUPERGRAPH_FEATURES.add(`https://specs.apollo.dev/${spec}`);
  const port = Number(required('GATEWAY_PORT'));
  const gateway = new ApolloGateway({
    supergraphSdl,
    buildService: ({ name, url }) => new RemoteGraphQLDataSource({ url: process.env[`SUBGRAPH_${name.toUpperCase()}_URL`] ?? url }),
  });
  const server = new ApolloServer({ gateway });
  const { url } = await startStandaloneServer(server, { listen: { port, host: '127.0.0.1' } });
  process.stderr.write(`plain @apollo/gateway listening at ${url}\n`);
  const stop = () => {
    server.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`apollo-plain failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
