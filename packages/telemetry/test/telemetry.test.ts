import pino from 'pino';
import { Registry } from 'prom-client';
import { createTelemetry, metricValue, metricsFor } from '../src';

describe('telemetry', () => {
  it('shares series between services on one registry, told apart by label', async () => {
    const registry = new Registry();
    const logger = pino({ level: 'silent' });
    const a = createTelemetry({ service: 'accounts', registry, logger });
    const b = createTelemetry({ service: 'products', registry, logger });
    expect(a.metrics).toBe(b.metrics);
    a.metrics.storeQueries.inc({ service: 'accounts' });
    b.metrics.storeQueries.inc({ service: 'products' }, 2);
    expect(await metricValue(a.metrics.storeQueries, { service: 'accounts' })).toBe(1);
    expect(await metricValue(a.metrics.storeQueries, { service: 'products' })).toBe(2);
    const text = await registry.metrics();
    expect(text).toContain('store_queries_total{service="accounts"} 1');
    expect(text).toContain('store_queries_total{service="products"} 2');
  });

  it('gives separate registries separate series', async () => {
    const one = metricsFor(new Registry());
    const two = metricsFor(new Registry());
    one.subgraphRequests.inc({ subgraph: 'x' });
    expect(await metricValue(two.subgraphRequests, { subgraph: 'x' })).toBe(0);
  });
});
