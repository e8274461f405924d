import { join } from 'node:path';
import { loadInventoryConfig } from '@shop/config';
import {
  COMMIT_STOCK,
  type CheckoutMessageType,
  type CheckoutMessages,
  type EventEnvelope,
  PermanentError,
  RELEASE_STOCK,
  RESERVE_STOCK,
  RESTOCK,
  parseCheckoutMessage,
} from '@shop/events';
import { type Consumers, type StoreSubgraph, type SubgraphFactoryOptions, defineStoreSubgraph, loadTypeDefs } from '@shop/server';
import type { Kysely } from '@shop/store';
import type { Telemetry } from '@shop/telemetry';
import type { Context } from './context';
import { migrations } from './data/migrations';
import { type InventoryDB, type InventoryTrx, StockRepository } from './data/repository';
import type { Decision } from './domain';
import { createLoaders } from './loaders';
import { reservationMetrics } from './metrics';
import { resolvers } from './resolvers';
import { ReservationSweeper } from './sweeper';

export const typeDefs = loadTypeDefs(join(__dirname, 'schema.graphql'));

/** What inventory's factory takes: every subgraph's options plus its sweeper's pace. */
export interface InventoryOptions extends SubgraphFactoryOptions {
  /**
   * Milliseconds between two sweeps of expired reservations (`RESERVATION_SWEEP_INTERVAL_MS`;
   * `index.ts` passes the environment's), or false for no sweeper (tests that sweep by hand with
   * `sweeper.sweepOnce()`). @default 1000
   */
  reservationSweepIntervalMs?: number | false;
}

/** The inventory subgraph with its data layer and its sweeper, for tests and tools. */
export interface InventorySubgraph extends StoreSubgraph<InventoryDB> {
  readonly stock: StockRepository;
  /** Runs while the subgraph runs (unless turned off); `sweepOnce()` sweeps now. */
  readonly sweeper: ReservationSweeper;
}

/**
 * The checkout saga's commands (@shop/events' contract) and ProductCreated, each applied inside
 * the inbox transaction that records the event: the reservation, the stock, StockChanged and the
 * reply commit together, and a redelivered event is not applied again. A command seen again
 * under a new event id (a saga's retry) is answered from the reservation's recorded state.
 */
export function inventoryConsumers(stock: StockRepository, telemetry: Telemetry): Consumers {
  const count = reservationMetrics(telemetry);
  const command = <T extends CheckoutMessageType>(
    type: T,
    run: (trx: InventoryTrx, command: CheckoutMessages[T]) => Promise<Decision>,
  ) => ({
    versions: [1],
    handle: async (trx: Kysely<never>, event: EventEnvelope) => {
      const decision = await run(trx as unknown as InventoryTrx, parseCheckoutMessage(type, event));
      if (decision.outcome) count(decision.outcome);
    },
  });
  return {
    ProductCreated: {
      versions: [1],
      handle: (trx, event) => StockRepository.ensureRecord(trx as unknown as Kysely<InventoryDB>, event.aggregateId),
    },
    [RESERVE_STOCK]: command(RESERVE_STOCK, (trx, reserve) => {
      // A time that does not parse can never be held until: dead letters, not a retry loop.
      if (Number.isNaN(Date.parse(reserve.expiresAt))) {
        throw new PermanentError(`${RESERVE_STOCK} ${reserve.checkoutId}: expiresAt ${JSON.stringify(reserve.expiresAt)} is not a time`);
      }
      return stock.reserve(trx, reserve);
    }),
    [COMMIT_STOCK]: command(COMMIT_STOCK, (trx, commit) => stock.commit(trx, commit)),
    [RELEASE_STOCK]: command(RELEASE_STOCK, (trx, release) => stock.release(trx, release)),
    [RESTOCK]: command(RESTOCK, (trx, restock) => stock.restock(trx, restock)),
  };
}

/** Builds the inventory subgraph (stock and reservations; extends `Product`) on its own store. Does not listen. */
export async function createInventory(options: InventoryOptions): Promise<InventorySubgraph> {
  const interval = options.reservationSweepIntervalMs ?? loadInventoryConfig({}).sweepIntervalMs;
  let repository: StockRepository | undefined;
  let sweeper: ReservationSweeper | undefined;
  const subgraph = await defineStoreSubgraph<InventoryDB, StockRepository, Context>({
    typeDefs,
    resolvers,
    migrations,
    repository: (store, events) => (repository = new StockRepository(store, events)),
    consumes: (stock, { telemetry }) => inventoryConsumers(stock, telemetry),
    // Started with the subgraph, stopped before its relay and store; with `false`, never started.
    worker: (stock, { telemetry }) => {
      const count = reservationMetrics(telemetry);
      const worker = new ReservationSweeper(stock, {
        telemetry,
        intervalMs: interval === false ? 0 : interval,
        swept: (decisions) => decisions.forEach((d) => d.outcome && count(d.outcome)),
      });
      sweeper = worker;
      return interval === false ? { start: () => {}, kick: () => {}, stop: () => worker.stop() } : worker;
    },
    context: ({ repository: stock, telemetry, logger, identity, subscriptionEvent }) => ({
      stock,
      loaders: createLoaders(stock, telemetry),
      logger,
      viewer: identity,
      subscriptionEvent,
    }),
  })(options);
  if (!repository || !sweeper) throw new Error('inventory: the subgraph was built without its repository or sweeper');
  return Object.assign(subgraph, { stock: repository, sweeper });
}

/** The data layer, for tests that change stock behind the API on purpose (the outage test). */
export { StockRepository } from './data/repository';
export { ReservationSweeper } from './sweeper';
export { STOCK_CHANGED, type StockChangedPayload } from './events';
