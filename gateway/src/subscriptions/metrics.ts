import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { HubOptions } from './hub';

/** The metric `name` of `registry`, made by `make` the first time (two gateways may share one registry). */
function shared<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

/**
 * The hub's metrics: `gateway_subscriptions_active`, `gateway_subscription_events_total{field}`
 * (results sent), `gateway_subscription_event_seconds{field}` (from the event's arrival at the
 * subscriber to its result, the fan-out latency) and `gateway_subscriptions_ended_total{reason}`.
 */
export function subscriptionMetrics(registry: Registry): NonNullable<HubOptions['onMetrics']> {
  const registers = [registry];
  const active = shared(
    registry,
    'gateway_subscriptions_active',
    () => new Gauge({ name: 'gateway_subscriptions_active', help: 'Subscriptions active on this gateway replica', registers }),
  );
  const events = shared(
    registry,
    'gateway_subscription_events_total',
    () =>
      new Counter({
        name: 'gateway_subscription_events_total',
        help: 'Subscription results sent, one per event per subscriber',
        labelNames: ['field'],
        registers,
      }),
  );
  const seconds = shared(
    registry,
    'gateway_subscription_event_seconds',
    () =>
      new Histogram({
        name: 'gateway_subscription_event_seconds',
        help: "From an event's arrival at a subscriber to its result being ready: the subscription's run, and its wait behind the subscriber's earlier events",
        labelNames: ['field'],
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
        registers,
      }),
  );
  const ended = shared(
    registry,
    'gateway_subscriptions_ended_total',
    () =>
      new Counter({
        name: 'gateway_subscriptions_ended_total',
        help: 'Subscriptions ended, by reason (complete, slow_consumer, shutting_down, token_expired)',
        labelNames: ['reason'],
        registers,
      }),
  );
  return {
    active: (delta) => active.inc(delta),
    delivered: (field, s) => {
      events.inc({ field });
      seconds.observe({ field }, s);
    },
    ended: (reason) => ended.inc({ reason }),
  };
}
