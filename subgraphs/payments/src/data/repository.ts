import { type CheckoutMessages, PermanentError, appendEvents, checkoutMessage } from '@shop/events';
import type { EventSink } from '@shop/server';
import type { Generated, Kysely, Store } from '@shop/store';
import {
  type Operation,
  type Payment,
  type PaymentReply,
  type PaymentReplyType,
  type PaymentStatus,
  paymentIdFor,
  voidedReply,
} from '../domain';

/** payments' own tables, as the query builder sees them (the simulator's ledger is not among them). */
export interface PaymentsDB {
  payments: {
    id: string;
    checkout_id: string;
    order_id: string;
    /** The customer the authorize command named: the one caller (besides orders:admin) who may read the payment. */
    customer_id: string | null;
    amount: number;
    currency: string;
    status: string;
    reason: string | null;
    authorization_ref: string | null;
    /** 1 while FAILED with an unknown outcome at the provider. */
    unresolved: number;
    attempts: number;
    /** The checkout's idempotency key the client sent, for the record. */
    client_key: string | null;
    created_at: string;
    updated_at: string;
  };
  payment_operations: {
    seq: Generated<number>;
    id: string;
    payment_id: string;
    checkout_id: string;
    operation: string;
    /** PENDING until the worker recorded its outcome, then DONE. */
    state: string;
    /** Provider calls made for it. */
    attempts: number;
    /** 1 when a call's outcome is unknown (it timed out): the next attempt asks the provider's status first. */
    uncertain: number;
    next_attempt_at: string;
    /** The worker holding it, until `lease_until`: another worker (or a restarted one) takes it after. */
    lease_owner: string | null;
    lease_until: string | null;
    reply_type: string | null;
    reply_payload: string | null;
    last_error: string | null;
    /** The event id of the command that asked for it. */
    command_id: string | null;
    created_at: string;
    done_at: string | null;
  };
}

/** A payment as payments stores it: the rules' view plus what the graph shows. */
export interface PaymentRow extends Payment {
  customerId: string | null;
  attempts: number;
  createdAt: string;
  updatedAt: string;
}

/** An operation payments was asked to perform, as the worker sees it. */
export interface OperationRow {
  seq: number;
  id: string;
  paymentId: string;
  checkoutId: string;
  operation: Operation;
  state: 'PENDING' | 'DONE';
  attempts: number;
  uncertain: boolean;
  nextAttemptAt: string;
  reply: PaymentReply | null;
  lastError: string | null;
  createdAt: string;
  doneAt: string | null;
}

/** A reference to an entity another service owns: payments stores only its id. */
export interface EntityRef {
  id: string;
}

/** What a finished operation leaves behind. */
export interface Outcome {
  /** The payment after it, or null when it did not change it. */
  payment: Payment | null;
  reply: PaymentReply | null;
  /** Provider calls made in this attempt. */
  calls: number;
  error?: string | undefined;
  /** Give the payment a reconcile operation (a FAILED authorization with an unknown outcome). */
  reconcile?: boolean;
}

/** A currency code for what has no currency (ISO 4217 XXX): a checkout voided before it asked for any payment. */
const NO_CURRENCY = 'XXX';

type PaymentRecord = PaymentsDB['payments'];
/** An operation row as read (its `seq` assigned). */
type OperationRecord = Omit<PaymentsDB['payment_operations'], 'seq'> & { seq: number };

const toPayment = (r: PaymentRecord): PaymentRow => ({
  id: r.id,
  checkoutId: r.checkout_id,
  orderId: r.order_id,
  customerId: r.customer_id,
  amount: Number(r.amount),
  currency: r.currency,
  status: r.status as PaymentStatus,
  reason: r.reason,
  authorization: r.authorization_ref,
  unresolved: Number(r.unresolved) === 1,
  attempts: Number(r.attempts),
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const toOperation = (r: OperationRecord): OperationRow => ({
  seq: Number(r.seq),
  id: r.id,
  paymentId: r.payment_id,
  checkoutId: r.checkout_id,
  operation: r.operation as Operation,
  state: r.state as OperationRow['state'],
  attempts: Number(r.attempts),
  uncertain: Number(r.uncertain) === 1,
  nextAttemptAt: r.next_attempt_at,
  // Written by this repository from a PaymentReply (replyColumns): read back as one.
  reply: r.reply_type && r.reply_payload ? ({ type: r.reply_type, payload: JSON.parse(r.reply_payload) as unknown } as PaymentReply) : null,
  lastError: r.last_error,
  createdAt: r.created_at,
  doneAt: r.done_at,
});

/** The id of a checkout's operation of a kind: one each, so a second command of the kind is a duplicate. */
export const operationId = (checkoutId: string, operation: Operation): string => `${checkoutId}:${operation}`;

/** The only code that reads or writes payments' own tables. */
export class PaymentsRepository {
  private readonly db: Kysely<PaymentsDB>;

  constructor(
    store: Store<PaymentsDB>,
    private readonly events: EventSink,
  ) {
    this.db = store.db;
  }

  /** payments has no seed data: payments come from checkouts. */
  async seed(): Promise<number> {
    return 0;
  }

  // ---- reads for the graph ----------------------------------------------------------------

  /** One round trip for any number of ids; the result follows `ids`, null where missing. */
  async byIds(ids: readonly string[]): Promise<(PaymentRow | null)[]> {
    if (ids.length === 0) return [];
    const rows = await this.db
      .selectFrom('payments')
      .selectAll()
      .where('id', 'in', [...new Set(ids)])
      .execute();
    const found = new Map(rows.map((r) => [r.id, toPayment(r)]));
    return ids.map((id) => found.get(id) ?? null);
  }

  /** Each order's latest payment (its latest checkout's), in one round trip; null for an order with none. */
  async latestByOrderIds(orderIds: readonly string[]): Promise<(PaymentRow | null)[]> {
    if (orderIds.length === 0) return [];
    const rows = await this.db
      .selectFrom('payments')
      .selectAll()
      .where('order_id', 'in', [...new Set(orderIds)])
      .orderBy('created_at')
      .orderBy('id')
      .execute();
    // Ascending: the last row of an order wins.
    const latest = new Map(rows.map((r) => [r.order_id, toPayment(r)]));
    return orderIds.map((id) => latest.get(id) ?? null);
  }

  // ---- commands, inside the inbox transaction that records them ---------------------------

  /**
   * AuthorizePaymentRequested: the payment (PENDING) and its authorize operation, for the worker
   * to call the provider after this transaction commits. A duplicate finds both and, when the
   * outcome is recorded, sends the reply again.
   */
  async authorizeRequested(trx: Kysely<never>, command: CheckoutMessages['AuthorizePaymentRequested'], commandId: string): Promise<void> {
    const db = trx as unknown as Kysely<PaymentsDB>;
    const now = new Date().toISOString();
    const id = paymentIdFor(command.checkoutId);
    await db
      .insertInto('payments')
      .values({
        id,
        checkout_id: command.checkoutId,
        order_id: command.orderId,
        customer_id: command.customerId,
        amount: command.amount,
        currency: command.currency,
        status: 'PENDING',
        reason: null,
        authorization_ref: null,
        unresolved: 0,
        attempts: 0,
        client_key: command.idempotencyKey,
        created_at: now,
        updated_at: now,
      })
      .onConflict((oc) => oc.column('checkout_id').doNothing())
      .execute();
    await this.request(db, id, command.checkoutId, 'authorize', commandId, now);
  }

  /**
   * CapturePaymentRequested, VoidPaymentRequested, RefundPaymentRequested: the operation, queued
   * behind the payment's earlier ones. A capture or refund of a checkout payments has never
   * heard of can never succeed (dead letters); a void of one is answered PaymentVoided at once
   * (nothing is held), and the checkout's payment is recorded VOIDED so that an authorize arriving
   * later charges nothing.
   */
  async operationRequested(
    trx: Kysely<never>,
    operation: 'capture' | 'void' | 'refund',
    command: { checkoutId: string; orderId: string },
    commandId: string,
  ): Promise<void> {
    const db = trx as unknown as Kysely<PaymentsDB>;
    const now = new Date().toISOString();
    const payment = await db.selectFrom('payments').select('id').where('checkout_id', '=', command.checkoutId).executeTakeFirst();
    if (payment) return this.request(db, payment.id, command.checkoutId, operation, commandId, now);
    if (operation !== 'void') throw new PermanentError(`${operation} of checkout ${command.checkoutId}: payments has no payment for it`);
    const voided: PaymentRecord = {
      id: paymentIdFor(command.checkoutId),
      checkout_id: command.checkoutId,
      order_id: command.orderId,
      customer_id: null,
      amount: 0,
      currency: NO_CURRENCY,
      status: 'VOIDED',
      reason: null,
      authorization_ref: null,
      unresolved: 0,
      attempts: 0,
      client_key: null,
      created_at: now,
      updated_at: now,
    };
    await db.insertInto('payments').values(voided).execute();
    const reply = voidedReply(toPayment(voided));
    await db
      .insertInto('payment_operations')
      .values({
        ...this.newOperation(voided.id, command.checkoutId, 'void', commandId, now),
        state: 'DONE',
        done_at: now,
        ...replyColumns(reply),
      })
      .execute();
    await this.appendReply(db, reply);
  }

  private newOperation(paymentId: string, checkoutId: string, operation: Operation, commandId: string | null, now: string) {
    return {
      id: operationId(checkoutId, operation),
      payment_id: paymentId,
      checkout_id: checkoutId,
      operation,
      state: 'PENDING',
      attempts: 0,
      uncertain: 0,
      next_attempt_at: now,
      lease_owner: null,
      lease_until: null,
      reply_type: null,
      reply_payload: null,
      last_error: null,
      command_id: commandId,
      created_at: now,
      done_at: null,
    };
  }

  /** Queues the operation; a duplicate of a finished one sends its recorded reply again, of a pending one nothing (its reply is coming). */
  private async request(
    db: Kysely<PaymentsDB>,
    paymentId: string,
    checkoutId: string,
    operation: Operation,
    commandId: string,
    now: string,
  ): Promise<void> {
    const inserted = await db
      .insertInto('payment_operations')
      .values(this.newOperation(paymentId, checkoutId, operation, commandId, now))
      .onConflict((oc) => oc.column('id').doNothing())
      .returning('id')
      .executeTakeFirst();
    if (inserted) return;
    const existing = await db
      .selectFrom('payment_operations')
      .selectAll()
      .where('id', '=', operationId(checkoutId, operation))
      .executeTakeFirst();
    const reply = existing ? toOperation(existing).reply : null;
    if (existing?.state === 'DONE' && reply) await this.appendReply(db, reply);
  }

  private async appendReply(db: Kysely<PaymentsDB>, reply: PaymentReply): Promise<void> {
    // The union of reply types, named: its payload is then the union of their payloads.
    await appendEvents(db as unknown as Kysely<never>, this.events.source, [checkoutMessage<PaymentReplyType>(reply.type, reply.payload)]);
  }

  // ---- the worker -------------------------------------------------------------------------

  /**
   * Operations due at `now`, at most `limit`: pending, their time come, not leased (or the lease
   * ran out: its worker died), and each the first pending operation of its payment, so that a
   * payment's operations run one at a time in the order they were asked.
   */
  async due(now: string, limit: number): Promise<OperationRow[]> {
    const rows = await this.heads()
      .where('o.next_attempt_at', '<=', now)
      .where((eb) => eb.or([eb('o.lease_until', 'is', null), eb('o.lease_until', '<=', now)]))
      .orderBy('o.next_attempt_at')
      .orderBy('o.seq')
      .limit(limit)
      .execute();
    return rows.map(toOperation);
  }

  /** When the next operation falls due (its retry time or the end of its lease), or null when none is pending. */
  async nextDueAt(): Promise<string | null> {
    const rows = await this.heads().select(['o.next_attempt_at', 'o.lease_until']).orderBy('o.next_attempt_at').limit(200).execute();
    const times = rows.map((r) => (r.lease_until && r.lease_until > r.next_attempt_at ? r.lease_until : r.next_attempt_at));
    return times.length === 0 ? null : times.reduce((a, b) => (a < b ? a : b));
  }

  /** Each payment's first pending operation (reconciliations aside: they may run beside the next). */
  private heads() {
    return this.db
      .selectFrom('payment_operations as o')
      .selectAll('o')
      .where('o.state', '=', 'PENDING')
      .where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom('payment_operations as e')
              .select('e.seq')
              .whereRef('e.payment_id', '=', 'o.payment_id')
              .where('e.state', '=', 'PENDING')
              // A reconciliation (asking a down provider until it answers) holds nothing up: the
              // commands after it answer from the payment's state, or resolve it themselves.
              .where('e.operation', '<>', 'reconcile')
              .whereRef('e.seq', '<', 'o.seq'),
          ),
        ),
      );
  }

  /** Takes the operation for `owner` until `until`, unless another worker holds it: one statement, so two never both win. */
  async claim(id: string, owner: string, now: string, until: string): Promise<boolean> {
    const result = await this.db
      .updateTable('payment_operations')
      .set({ lease_owner: owner, lease_until: until })
      .where('id', '=', id)
      .where('state', '=', 'PENDING')
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<=', now)]))
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async payment(id: string): Promise<PaymentRow | null> {
    const row = await this.db.selectFrom('payments').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toPayment(row) : null;
  }

  async paymentOfCheckout(checkoutId: string): Promise<PaymentRow | null> {
    const row = await this.db.selectFrom('payments').selectAll().where('checkout_id', '=', checkoutId).executeTakeFirst();
    return row ? toPayment(row) : null;
  }

  /** A checkout's operations, in the order they were asked. */
  async operations(checkoutId: string): Promise<OperationRow[]> {
    const rows = await this.db.selectFrom('payment_operations').selectAll().where('checkout_id', '=', checkoutId).orderBy('seq').execute();
    return rows.map(toOperation);
  }

  /**
   * Records a finished operation in one transaction: the operation DONE with its reply, the
   * payment's new state and call count, the reply in the outbox. False when `owner` no longer
   * holds the operation (its lease ran out and another worker took it): nothing is written, and
   * the other worker, calling under the same idempotency keys, records the same outcome.
   */
  async complete(operation: OperationRow, owner: string, outcome: Outcome): Promise<boolean> {
    const now = new Date().toISOString();
    const done = await this.db.transaction().execute(async (trx) => {
      const updated = await trx
        .updateTable('payment_operations')
        .set((eb) => ({
          state: 'DONE',
          attempts: eb('attempts', '+', outcome.calls),
          lease_owner: null,
          lease_until: null,
          last_error: outcome.error ?? null,
          done_at: now,
          ...replyColumns(outcome.reply),
        }))
        .where('id', '=', operation.id)
        .where('lease_owner', '=', owner)
        .where('state', '=', 'PENDING')
        .executeTakeFirst();
      if (Number(updated.numUpdatedRows) !== 1) return false;
      const p = outcome.payment;
      await trx
        .updateTable('payments')
        .set((eb) => ({
          attempts: eb('attempts', '+', outcome.calls),
          updated_at: now,
          ...(p ? { status: p.status, reason: p.reason, authorization_ref: p.authorization, unresolved: p.unresolved ? 1 : 0 } : {}),
        }))
        .where('id', '=', operation.paymentId)
        .execute();
      if (outcome.reconcile) {
        await trx
          .insertInto('payment_operations')
          .values(this.newOperation(operation.paymentId, operation.checkoutId, 'reconcile', null, now))
          .onConflict((oc) => oc.column('id').doNothing())
          .execute();
      }
      if (outcome.reply) await this.appendReply(trx, outcome.reply);
      return true;
    });
    if (done && outcome.reply) this.events.committed();
    return done;
  }

  /** Records an attempt without an answer and when to try again; the lease is released. */
  async retryLater(
    operation: OperationRow,
    owner: string,
    attempt: { calls: number; uncertain: boolean; nextAttemptAt: string; error: string | null },
  ): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const updated = await trx
        .updateTable('payment_operations')
        .set((eb) => ({
          attempts: eb('attempts', '+', attempt.calls),
          uncertain: attempt.uncertain ? 1 : 0,
          next_attempt_at: attempt.nextAttemptAt,
          lease_owner: null,
          lease_until: null,
          last_error: attempt.error,
        }))
        .where('id', '=', operation.id)
        .where('lease_owner', '=', owner)
        .where('state', '=', 'PENDING')
        .executeTakeFirst();
      if (Number(updated.numUpdatedRows) !== 1) return false;
      if (attempt.calls > 0) {
        await trx
          .updateTable('payments')
          .set((eb) => ({ attempts: eb('attempts', '+', attempt.calls) }))
          .where('id', '=', operation.paymentId)
          .execute();
      }
      return true;
    });
  }
}

const replyColumns = (reply: PaymentReply | null) => ({
  reply_type: reply?.type ?? null,
  reply_payload: reply ? JSON.stringify(reply.payload) : null,
});
