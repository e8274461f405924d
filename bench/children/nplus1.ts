// The N+1 table: store round trips per query for list sizes 5, 50 and 500, with DataLoader on
// and off. Runs the whole stack in this one process (embedded mode, SQLite in memory, seeded,
// no caches anywhere, so every look-up reaches the store) and reads `store_queries_total` per
// service from the shared registry. Run by bench/run.ts as a child, twice:
//   node --import tsx bench/children/nplus1.ts on|off
// "off" replaces the dataloader module, before any service loads it, with a DataLoader that
// neither batches nor memoises: every load is its own store query, as a resolver without
// DataLoader would make. The services' code is unchanged. Prints one JSON line on stdout.
import type { Registry } from 'prom-client';
import { NPLUS1_SIZES } from '../lib/nplus1-sizes';
import { sumMetric } from '../lib/prometheus';

/** The README's deep query with a variable list size: three levels of lists across four services. */
export const nplus1Query = (size: number) =>
  `{ topProducts(first: ${size}) { name reviews(first: 10) { body author { name reviews(first: 3) { product { name inStock } } } } } }`;

function disableDataLoader(): void {
  const path = require.resolve('dataloader');
  const Original = require('dataloader') as new (batch: unknown, options?: Record<string, unknown>) => object;
  class Unbatched extends Original {
    constructor(batch: unknown, options?: Record<string, unknown>) {
      super(batch, { ...options, batch: false, cache: false });
    }
  }
  const cached = require.cache[path];
  if (!cached) throw new Error('dataloader was not loaded from require.cache; cannot replace it');
  cached.exports = Unbatched;
}

async function main() {
  const mode = process.argv[2];
  if (mode !== 'on' && mode !== 'off') throw new Error(`usage: nplus1.ts on|off; received ${JSON.stringify(mode)}`);
  if (mode === 'off') disableDataLoader();
  // Loaded only now, so the services see the replaced module.
  const { startStack } = require('@shop/stack') as typeof import('@shop/stack');
  const pino = require('pino') as typeof import('pino');
  const stack = await startStack({
    ports: { accounts: 0, products: 0, inventory: 0, reviews: 0, gateway: 0 },
    host: '127.0.0.1',
    logger: pino.pino({ level: 'silent' }),
    cache: false,
    pageMax: 500,
    // The table shows how store round trips grow with the list, up to 500 products (a cost of
    // 40,500): the demand-control limit that would refuse it is raised with PAGE_MAX.
    cost: { maxCost: 1_000_000 },
    // Without DataLoader, 500 products cost about 7,000 store queries in one subgraph request:
    // 11 s on a busy machine. The table measures round trips, so that request must not time out.
    subgraphTimeoutMs: 120_000,
    introspection: false,
    explorer: false,
  });
  const registry: Registry = stack.registry;
  const services = ['accounts', 'products', 'inventory', 'reviews'];
  try {
    const rows = [];
    for (const size of NPLUS1_SIZES) {
      const before = await registry.metrics();
      const started = performance.now();
      const res = await fetch(stack.gatewayUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: nplus1Query(size) }),
      });
      const body = (await res.json()) as { data?: { topProducts?: unknown[] }; errors?: unknown[] };
      const ms = performance.now() - started;
      const after = await registry.metrics();
      const delta = (name: string, labels: Record<string, string> = {}) => sumMetric(after, name, labels) - sumMetric(before, name, labels);
      const byService = Object.fromEntries(services.map((s) => [s, delta('store_queries_total', { service: s })]));
      rows.push({
        size,
        dataloader: mode === 'on',
        storeRoundTrips: Object.values(byService).reduce((a, b) => a + b, 0),
        byService,
        subgraphRequests: delta('gateway_subgraph_requests_total'),
        representations: delta('gateway_entity_representations_total'),
        products: body.data?.topProducts?.length ?? 0,
        errors: body.errors?.length ?? 0,
        ms: Math.round(ms),
      });
    }
    process.stdout.write(`${JSON.stringify(rows)}\n`);
  } finally {
    await stack.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`nplus1 failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
