import { type Bus, type IdempotentConsumer, OutboxRelay, eventMigrations, idempotentConsumer } from '@shop/events';
import type { Consumers, EventSink, StoreLocation } from '@shop/server';
import { type Store, openStore } from '@shop/store';
import type { Telemetry } from '@shop/telemetry';
import { type CheckoutOptions, CheckoutOrchestrator } from '../checkout/orchestrator';
import { migrations } from '../data/migrations';
import { type OrdersDB, OrdersRepository } from '../data/repository';
import type { ShardInfo } from './map';

/** One shard of orders: a complete orders store with its own event store, projections, outbox, relay and inbox. */
export interface Shard {
  readonly info: ShardInfo;
  readonly store: Store<OrdersDB>;
  readonly orders: OrdersRepository;
  readonly checkout: CheckoutOrchestrator;
  /**
   * Applies consumed events in this shard's own inbox transaction (every shard but the first: the
   * service's subscription delivers into the first shard's inbox, which hands them on).
   */
  readonly consumer: IdempotentConsumer | undefined;
  /** Starts its relay, projection polling and deadline sweeper. */
  start(projectionPollMs: number): void;
  stop(): Promise<void>;
}

/** A shard location as the slot map records it: a PostgreSQL URL, or a SQLite path (':memory:' included). */
export const storeLocationOf = (location: string): StoreLocation =>
  /^postgres(ql)?:\/\//.test(location) ? { postgresUrl: location } : { sqlitePath: location };

export interface ShardParts {
  info: ShardInfo;
  store: Store<OrdersDB>;
  relay: OutboxRelay | undefined;
  /** What the relay is told after a commit. */
  sink: EventSink;
  telemetry: Telemetry;
  checkoutOptions: CheckoutOptions;
  /** This shard's consumers, bound to its own orchestrator; none for the first shard (see `Shard.consumer`). */
  consumers?: (shard: Pick<Shard, 'orders' | 'checkout'>) => Consumers;
  /** Released after everything else stops (the relay's own connections, the store of a shard this module opened). */
  close?: () => Promise<void>;
}

/** Assembles a shard from a migrated store (the first shard's comes from the service's start-up). */
export function assembleShard(parts: ShardParts): Shard {
  const { telemetry } = parts;
  const orders = new OrdersRepository(parts.store, parts.sink, telemetry.logger);
  const checkout = new CheckoutOrchestrator(orders, orders.events, telemetry.service, telemetry, parts.checkoutOptions);
  const consumer = parts.consumers
    ? idempotentConsumer({
        store: parts.store as Store<unknown>,
        telemetry,
        handlers: parts.consumers({ orders, checkout }),
        afterCommit: () => parts.relay?.kick(),
      })
    : undefined;
  let started = false;
  return {
    info: parts.info,
    store: parts.store,
    orders,
    checkout,
    consumer,
    start(projectionPollMs) {
      if (started) return;
      started = true;
      parts.relay?.start();
      orders.projections.start(projectionPollMs);
      checkout.startSweeper();
    },
    async stop() {
      await checkout.stop();
      await orders.projections.stop();
      await parts.close?.();
    },
  };
}

/**
 * Opens a shard that is not the first: its store (created and migrated when new), a relay of its
 * own to the bus, and an inbox-backed consumer for the events the first shard hands on.
 */
export async function openShard(
  info: ShardInfo,
  deps: {
    telemetry: Telemetry;
    bus: Bus | undefined;
    checkoutOptions: CheckoutOptions;
    consumers: (shard: Pick<Shard, 'orders' | 'checkout'>) => Consumers;
    poolSize: number;
  },
): Promise<Shard> {
  const { telemetry } = deps;
  const location = storeLocationOf(info.location);
  const store = await openStore<OrdersDB>({ service: telemetry.service, telemetry, poolSize: deps.poolSize, ...location });
  let relayStore: Store<unknown> | undefined;
  try {
    await store.migrate({ ...eventMigrations, ...migrations });
    // As the service's own relay: connections of its own, so a burst of requests cannot starve it.
    if (deps.bus && location.postgresUrl) {
      relayStore = await openStore<unknown>({ service: telemetry.service, telemetry, postgresUrl: location.postgresUrl, poolSize: 2 });
    }
  } catch (err) {
    await store.close();
    throw err;
  }
  // Kicked after every commit on the shard; its poll only finds what another process wrote, so it
  // polls less often than the service's own relay: measured idle, one relay polling every 50 ms
  // costs orders 27 ms of CPU a second, which a request's CPU budget (the hostile suite's) feels.
  const relay = deps.bus
    ? new OutboxRelay({ store: relayStore ?? (store as Store<unknown>), bus: deps.bus, telemetry, pollMs: 1000 })
    : undefined;
  return assembleShard({
    info,
    store,
    relay,
    sink: { source: telemetry.service, committed: () => relay?.kick() },
    telemetry,
    checkoutOptions: deps.checkoutOptions,
    consumers: deps.consumers,
    close: async () => {
      await relay?.stop();
      await relayStore?.close();
      await store.close();
    },
  });
}
