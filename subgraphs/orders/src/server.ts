import { join } from 'node:path';
import { type StoreSubgraph, type SubgraphFactoryOptions, defineStoreSubgraph, loadTypeDefs } from '@shop/server';
import { type StoreLocation, openStore } from '@shop/store';
import type { Telemetry } from '@shop/telemetry';
import { eventMigrations } from '@shop/events';
import type { Context } from './context';
import { migrations } from './data/migrations';
import { type OrdersDB, OrdersRepository } from './data/repository';
import { checkoutConsumers, consumers } from './events';
import { type CheckoutOptions, CheckoutOrchestrator, defaultCheckoutOptions } from './checkout/orchestrator';
import { createLoaders } from './loaders';
import { resolvers } from './resolvers';

export const typeDefs = loadTypeDefs(join(__dirname, 'schema.graphql'));

/** The orders subgraph, with its repository: tests and the rebuild command use it. */
export interface OrdersSubgraph extends StoreSubgraph<OrdersDB> {
  readonly orders: OrdersRepository;
  readonly checkout: CheckoutOrchestrator;
}

export { OrdersRepository };

/**
 * Builds the orders subgraph (owner of `Order`) on its own store. Does not listen. Its read
 * models catch up at start, after every command, and every `projectionPollMs` in the background.
 */
export async function createOrders(
  options: SubgraphFactoryOptions & { projectionPollMs?: number; checkout?: Partial<CheckoutOptions> },
): Promise<OrdersSubgraph> {
  let repository: OrdersRepository | undefined;
  let orchestrator: CheckoutOrchestrator | undefined;
  const checkoutOptions: CheckoutOptions = { ...defaultCheckoutOptions, ...options.checkout };
  const factory = defineStoreSubgraph<OrdersDB, OrdersRepository, Context>({
    typeDefs,
    resolvers,
    migrations,
    repository: (store, events) => {
      repository = new OrdersRepository(store, events, options.telemetry.logger);
      orchestrator = new CheckoutOrchestrator(repository, repository.events, events.source, options.telemetry, checkoutOptions);
      return repository;
    },
    consumes: () => ({ ...consumers(), ...checkoutConsumers(orchestrator!) }),
    context: ({ repository: orders, telemetry, logger, pageMax, identity }) => ({
      orders,
      checkout: orchestrator!,
      loaders: createLoaders(orders, telemetry),
      logger,
      requestId: requestIdOf(logger),
      pageMax,
      viewer: identity,
    }),
  });
  const subgraph = await factory(options);
  const orders = repository!;
  try {
    await orders.projections.catchUp();
  } catch (err) {
    await subgraph.stop();
    throw err;
  }
  orders.projections.start(options.projectionPollMs ?? 1000);
  const checkout = orchestrator!;
  checkout.startSweeper();
  const stop = subgraph.stop.bind(subgraph);
  return Object.assign(subgraph, {
    orders,
    checkout,
    async stop() {
      await checkout.stop();
      await orders.projections.stop();
      await stop();
    },
  });
}

/**
 * Opens orders' store on its own (no server, no bus) for maintenance: `npm run orders:rebuild`.
 * Events the repository would append stay in the outbox for the service's relay.
 */
export async function openOrdersRepository(options: {
  telemetry: Telemetry;
  store: StoreLocation;
}): Promise<{ orders: OrdersRepository; close(): Promise<void> }> {
  const store = await openStore<OrdersDB>({ service: options.telemetry.service, telemetry: options.telemetry, ...options.store });
  try {
    await store.migrate({ ...eventMigrations, ...migrations });
  } catch (err) {
    await store.close();
    throw err;
  }
  const orders = new OrdersRepository(store, { source: options.telemetry.service, committed: () => {} }, options.telemetry.logger);
  return { orders, close: () => store.close() };
}

/** The request id a request's child logger was made with ('' outside a request). */
function requestIdOf(logger: { bindings(): Record<string, unknown> }): string {
  const id = logger.bindings().requestId;
  return typeof id === 'string' ? id : '';
}
export type { CheckoutView } from './checkout/projection';
