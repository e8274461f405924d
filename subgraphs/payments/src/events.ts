// What payments consumes: the checkout saga's four commands (see @shop/events' checkout.ts). Each
// handler runs inside the inbox transaction that records the command, and only records the intent
// there (the payment, a pending operation), or sends a recorded reply again for a duplicate; the
// provider is called afterwards, by the worker, outside any transaction. What it publishes: the
// six replies, appended to the outbox by the worker in the transaction that records each outcome.
import { AUTHORIZE_PAYMENT, CAPTURE_PAYMENT, PAYMENT_COMMANDS, REFUND_PAYMENT, VOID_PAYMENT, parseCheckoutMessage } from '@shop/events';
import type { Consumers } from '@shop/server';
import type { PaymentsRepository } from './data/repository';

/** The commands' handlers, by message type (schema version 1). */
export function consumers(payments: PaymentsRepository): Consumers {
  const handlers: Consumers = {
    [AUTHORIZE_PAYMENT]: {
      versions: [1],
      handle: (trx, event) => payments.authorizeRequested(trx, parseCheckoutMessage(AUTHORIZE_PAYMENT, event), event.id),
    },
    [CAPTURE_PAYMENT]: {
      versions: [1],
      handle: (trx, event) => payments.operationRequested(trx, 'capture', parseCheckoutMessage(CAPTURE_PAYMENT, event), event.id),
    },
    [VOID_PAYMENT]: {
      versions: [1],
      handle: (trx, event) => payments.operationRequested(trx, 'void', parseCheckoutMessage(VOID_PAYMENT, event), event.id),
    },
    [REFUND_PAYMENT]: {
      versions: [1],
      handle: (trx, event) => payments.operationRequested(trx, 'refund', parseCheckoutMessage(REFUND_PAYMENT, event), event.id),
    },
  };
  // Every command of the contract has a handler here.
  for (const type of PAYMENT_COMMANDS) if (!handlers[type]) throw new Error(`payments has no handler for ${type}`);
  return handlers;
}
