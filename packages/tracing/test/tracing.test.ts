import { ROOT_CONTEXT, context, propagation, trace } from '@opentelemetry/api';
import {
  contextFrom,
  currentTraceContext,
  inSpan,
  memorySpans,
  shutdownTracing,
  startTracing,
  tracer,
  tracingEnabled,
  tracingRequested,
} from '../src';

describe('when tracing is asked for', () => {
  it.each([
    [{}, false],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }, true],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:4318/v1/traces' }, true],
    [{ OTEL_TRACES_EXPORTER: 'console' }, true],
    [{ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' }, false],
    [{ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' }, false],
    [{ OTEL_TRACES_EXPORTER: ' ' }, false],
  ])('%j: %s', (env, expected) => {
    expect(tracingRequested(env)).toBe(expected);
  });

  it('starts nothing and writes no span of its own when not asked', async () => {
    expect(startTracing({ service: 'x', env: {} })).toBeUndefined();
    expect(tracingEnabled()).toBe(false);
    let active: unknown = 'unset';
    await inSpan('work', {}, async () => {
      active = trace.getActiveSpan();
    });
    expect(active).toBeUndefined();
    expect(currentTraceContext()).toBeUndefined();
  });
});

describe('with tracing on (an in-memory exporter)', () => {
  const memory = memorySpans();
  beforeAll(() => {
    startTracing({ service: 'unit', env: {}, spanProcessors: memory.spanProcessors });
  });
  afterAll(() => shutdownTracing());

  it('records our spans under the active one, and marks a failure without swallowing it', async () => {
    expect(tracingEnabled()).toBe(true);
    let traceId = '';
    await tracer.startActiveSpan('parent', async (parent) => {
      traceId = parent.spanContext().traceId;
      await inSpan('ok', { 'shop.n': 1 }, async () => undefined);
      await expect(
        inSpan('fails', {}, async () => {
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      parent.end();
    });
    const spans = memory.finished().filter((s) => s.traceId === traceId);
    const parent = spans.find((s) => s.name === 'parent');
    expect(spans.find((s) => s.name === 'ok')).toMatchObject({
      parentSpanId: parent?.spanId,
      service: 'unit',
      attributes: { 'shop.n': 1 },
    });
    expect(spans.find((s) => s.name === 'ok')?.failed).toBe(false);
    expect(spans.find((s) => s.name === 'fails')).toMatchObject({ parentSpanId: parent?.spanId, failed: true });
  });

  it('hands out the W3C context of the active span, and reads it back', () => {
    expect(currentTraceContext()).toBeUndefined();
    tracer.startActiveSpan('writer', (span) => {
      const carrier = currentTraceContext();
      expect(carrier?.traceparent).toBe(`00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`);
      expect(trace.getSpan(contextFrom(carrier))?.spanContext().traceId).toBe(span.spanContext().traceId);
      span.end();
    });
  });

  it('reads nothing from a carrier that is not a trace context', () => {
    for (const carrier of [
      undefined,
      {},
      { traceparent: 'nonsense' },
      { traceparent: 5 },
      { traceparent: `00-${'0'.repeat(32)}-${'0'.repeat(16)}-01` },
    ])
      expect(trace.getSpan(contextFrom(carrier))).toBeUndefined();
  });

  it('propagates no baggage (a client could put anything in it for every subgraph)', () => {
    const withBaggage = propagation.setBaggage(ROOT_CONTEXT, propagation.createBaggage({ secret: { value: 'x'.repeat(1000) } }));
    const carrier: Record<string, string> = {};
    tracer.startActiveSpan('s', {}, withBaggage, (span) => {
      propagation.inject(context.active(), carrier);
      span.end();
    });
    expect(Object.keys(carrier)).toEqual(['traceparent']);
  });
});
