import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SEED_ADMIN } from '@shop/seed';
import { REPO_ROOT, type Stack, startStack } from '@shop/stack';
import pino from 'pino';
import { e2eSuite } from './e2e/suite';

// The embedded mode: every subgraph and the gateway in this process, on free ports, SQLite in memory.
describe('embedded stack (SQLite)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      ports: { gateway: 0, accounts: 0, products: 0, inventory: 0, reviews: 0, orders: 0 },
      host: '127.0.0.1',
      logger: pino({ level: 'silent' }),
    });
  });
  afterAll(() => stack?.stop());

  // Tokens signed by the stack's own accounts, with the claims accounts would give each user.
  e2eSuite(
    () => stack.gatewayUrl,
    (userId) => stack.token(userId, userId === SEED_ADMIN.id ? { roles: ['customer', 'admin'] } : {}),
  );

  it("carries every service's metrics on the gateway's /metrics", async () => {
    const text = await (await fetch(stack.gatewayUrl.replace(/graphql$/, 'metrics'))).text();
    for (const service of ['accounts', 'products', 'inventory', 'reviews', 'orders']) {
      expect(text).toMatch(new RegExp(`store_queries_total\\{service="${service}"\\} [1-9]`));
    }
    expect(text).toMatch(/gateway_subgraph_requests_total\{subgraph="reviews"\} [1-9]/);
    // payments' worker polls its store in the background: its series are there too.
    expect(text).toMatch(/store_background_queries_total\{service="payments"\} [1-9]/);
  });

  it('exports every metric the Grafana dashboard queries, with the labels it groups and filters by', async () => {
    // A federated query first, so the request and fetch metrics have series whose labels can be read.
    const answer = await fetch(stack.gatewayUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ topProducts(first: 1) { name reviews(first: 1) { body } } }' }),
    });
    expect(answer.status).toBe(200);
    const text = await (await fetch(stack.gatewayUrl.replace(/graphql$/, 'metrics'))).text();
    const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1] as string, m[2] as string]));
    const labelsOf = new Map<string, Set<string>>();
    for (const m of text.matchAll(/^([a-z_]+)\{([^}]*)\}/gm)) {
      const names = [...(m[2] as string).matchAll(/([a-z_]+)="/g)].map((l) => l[1] as string);
      const set = labelsOf.get(m[1] as string) ?? new Set<string>();
      for (const name of names) set.add(name);
      labelsOf.set(m[1] as string, set);
    }
    const dashboard = JSON.parse(readFileSync(join(REPO_ROOT, 'deploy', 'grafana', 'shop-platform.json'), 'utf8')) as {
      panels: Array<{ targets?: Array<{ expr: string }> }>;
    };
    const exprs = dashboard.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr);
    expect(exprs.length).toBeGreaterThanOrEqual(20);
    const problems: string[] = [];
    const queried = new Set<string>();
    for (const expr of exprs) {
      // Metric selectors: a name, then its label matchers or a range, or the end of a parenthesis.
      // Label lists of aggregations are not metrics: left out of the scan.
      const selectors = expr.replace(/\b(by|without)\s*\([^)]*\)/g, ' ');
      for (const m of selectors.matchAll(/([a-z_][a-z0-9_]*)\s*(\{[^}]*\})?\s*(\[[^\]]*\])?(?=\s*[)\s/]|$)/g)) {
        const name = m[1] as string;
        if (['by', 'without', 'le', 'sum', 'max', 'rate'].includes(name) || /^\d/.test(name)) continue;
        // Histograms are queried through their series: _bucket, _count, _sum.
        const base = name.replace(/_(bucket|count|sum)$/, '');
        const metric = types.has(name) ? name : types.get(base) === 'histogram' ? base : undefined;
        if (!metric) {
          problems.push(`${name} (in ${expr}) is not exported`);
          continue;
        }
        queried.add(metric);
        const seen = labelsOf.get(name) ?? labelsOf.get(`${metric}_bucket`) ?? labelsOf.get(metric);
        const used = [...(m[2] ?? '').matchAll(/([a-z_]+)\s*=~?/g)].map((l) => l[1] as string);
        // Labels in `by (...)` are checked against the metric the aggregation reads when it has samples.
        const grouped = [...expr.matchAll(/by \(([^)]*)\) \((?:rate\()?([a-z_]+)/g)]
          .filter((g) => g[2] === name)
          .flatMap((g) => (g[1] as string).split(',').map((l) => l.trim()));
        for (const label of [...used, ...grouped]) {
          if (label !== 'le' && seen && !seen.has(label)) problems.push(`${metric} has no label ${label} (in ${expr})`);
        }
      }
    }
    expect(problems).toEqual([]);
    // The dashboard covers what #18 asks of it: requests, latency, fetches, caches, breakers, outbox, events, the saga.
    for (const metric of [
      'http_requests_total',
      'http_request_duration_seconds',
      'gateway_subgraph_requests_total',
      'cache_requests_total',
      'gateway_subgraph_breaker_state',
      'outbox_pending',
      'event_propagation_seconds',
      'saga_step_duration_seconds',
    ]) {
      expect(queried).toContain(metric);
    }
  });
});
