import { join } from 'node:path';
import { type PaymentsProviderConfig, loadPaymentsProviderConfig } from '@shop/config';
import { type StoreSubgraph, type SubgraphFactoryOptions, defineStoreSubgraph, loadTypeDefs } from '@shop/server';
import type { Store } from '@shop/store';
import type { Context } from './context';
import { migrations } from './data/migrations';
import { PspLedger } from './data/psp-ledger';
import { type PaymentsDB, PaymentsRepository } from './data/repository';
import { consumers } from './events';
import { createLoaders } from './loaders';
import type { PaymentProvider } from './provider/provider';
import { SimulatedProvider } from './provider/simulator';
import { resolvers } from './resolvers';
import { PaymentWorker, type WorkerOptions } from './worker';

export const typeDefs = loadTypeDefs(join(__dirname, 'schema.graphql'));

/** What payments takes beside every subgraph's options. */
export interface PaymentsOptions extends SubgraphFactoryOptions {
  /** The `PSP_*` settings (`loadPaymentsProviderConfig`). @default their defaults */
  psp?: Partial<PaymentsProviderConfig> | undefined;
  /** Another provider instead of the simulator (a real provider's adapter, a test double). @default SimulatedProvider */
  provider?: PaymentProvider | undefined;
  /** The worker's pace (poll interval, backoff, concurrency); tests shorten it. @default WorkerOptions' defaults */
  worker?: Pick<WorkerOptions, 'pollMs' | 'retryBaseMs' | 'retryMaxMs' | 'concurrency'> | undefined;
}

/** The payments subgraph, with what tests look into. */
export interface PaymentsSubgraph extends StoreSubgraph<PaymentsDB> {
  readonly payments: PaymentsRepository;
  /** The simulator's ledger: what "the provider" recorded (in payments' store, its own table). */
  readonly ledger: PspLedger;
  readonly worker: PaymentWorker;
}

export { PaymentsRepository, PspLedger, PaymentWorker };
export type { PaymentProvider };
export { ProviderError } from './provider/provider';
export { SimulatedProvider, chance } from './provider/simulator';

/**
 * Builds the payments subgraph (owner of `Payment`; extends `Order.payment`) on its own store,
 * with its provider worker. Does not listen. Payments come from the checkout saga's commands over
 * the bus; without a bus nothing arrives, and the worker only finishes what the store holds.
 */
export async function createPayments(options: PaymentsOptions): Promise<PaymentsSubgraph> {
  const psp = { ...loadPaymentsProviderConfig({}), ...options.psp };
  let parts: { payments: PaymentsRepository; ledger: PspLedger; worker?: PaymentWorker } | undefined;
  const subgraph = await defineStoreSubgraph<PaymentsDB, PaymentsRepository, Context>({
    typeDefs,
    resolvers,
    migrations,
    repository: (store, events) => {
      const payments = new PaymentsRepository(store, events);
      parts = { payments, ledger: new PspLedger(store as Store<unknown>) };
      return payments;
    },
    consumes: (payments) => consumers(payments),
    worker: (payments, { telemetry }) => {
      const provider = options.provider ?? new SimulatedProvider(parts!.ledger, psp);
      const worker = new PaymentWorker(payments, provider, telemetry, {
        maxAttempts: psp.maxAttempts,
        callTimeoutMs: psp.callTimeoutMs,
        ...options.worker,
      });
      parts!.worker = worker;
      return worker;
    },
    context: ({ repository, telemetry, logger, identity }) => ({
      loaders: createLoaders(repository, telemetry),
      logger,
      viewer: identity,
    }),
  })(options);
  return Object.assign(subgraph, { payments: parts!.payments, ledger: parts!.ledger, worker: parts!.worker! });
}
