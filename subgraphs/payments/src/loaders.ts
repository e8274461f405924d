import { createLoader } from '@shop/server';
import type { Telemetry } from '@shop/telemetry';
import type { PaymentRow, PaymentsRepository } from './data/repository';

/** Per-request loaders: made in the context factory, so their cache lives as long as one request. */
export function createLoaders(payments: PaymentsRepository, telemetry: Telemetry) {
  return {
    /** Payments by id; null where there is none. */
    payment: createLoader<string, PaymentRow>(telemetry, 'payment', (ids) => payments.byIds(ids)),
    /** Each order's latest payment; null for an order with none. */
    paymentByOrder: createLoader<string, PaymentRow>(telemetry, 'paymentByOrder', (ids) => payments.latestByOrderIds(ids)),
  };
}

export type Loaders = ReturnType<typeof createLoaders>;
