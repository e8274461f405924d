import type { Bus, EventEnvelope, Subscription } from '@shop/events';

/** The entities an event changed: its aggregate (type from the event name) and any it lists in `payload.affects`. */
export function entitiesChangedBy(event: Pick<EventEnvelope, 'type' | 'aggregateId' | 'payload'>): Array<{ typename: string; id: string }> {
  const typename = /^[A-Z][a-z0-9]*/.exec(event.type)?.[0];
  const out = typename ? [{ typename, id: event.aggregateId }] : [];
  const affects = event.payload.affects;
  if (Array.isArray(affects)) {
    for (const a of affects) {
      const item = a as { __typename?: unknown; id?: unknown };
      if (typeof item.__typename === 'string' && (typeof item.id === 'string' || typeof item.id === 'number')) {
        out.push({ typename: item.__typename, id: String(item.id) });
      }
    }
  }
  return out;
}

/**
 * Keeps the gateway's caches honest about writes made behind its back: every event of `types`
 * evicts the entities it changed. One consumer group for all gateway replicas suffices when the
 * cache is shared (Redis); eviction is idempotent, so redelivery is harmless.
 */
export function subscribeEvictions(
  bus: Bus,
  types: readonly string[],
  invalidate: (entities: Array<{ typename: string; id: string }>) => Promise<void>,
): Promise<Subscription> {
  return bus.subscribe({
    group: 'gateway',
    types: [...types],
    handler: async (event) => {
      await invalidate(entitiesChangedBy(event));
    },
  });
}

/** The events this platform's services publish that change what the gateway may have cached. */
export const defaultEvictionEvents = [
  'ProductCreated',
  'ProductUpdated',
  'ProductDiscontinued',
  'ProductRatingChanged',
  'UserUpdated',
  'ReviewAdded',
  // inventory: on hand, reserved or available changed (a write, or the checkout saga); its
  // payload's `affects` names the Product.
  'StockChanged',
];
