import { type Kysely, type Migration, type Store } from '@shop/store';
import type { ProviderCall } from '../domain';

// The payment provider simulator's own ledger. It is NOT payments' data: it stands for what a
// real provider keeps on its side (every idempotency key it has seen and what it did under it).
// It lives in payments' store only so that it survives a SIGKILL of the payments process, as a
// real provider's records would; payments' own code never reads or writes this table (only the
// simulator does, and tests, to count charges).

/** The simulator's table, as the query builder sees it. */
export interface PspLedgerDB {
  psp_simulator_ledger: {
    idempotency_key: string;
    /** The call first made with the key; null while only status was asked. */
    call: string | null;
    /** The authorization a capture, void or refund acts on. */
    authorization_ref: string | null;
    amount: number | null;
    currency: string | null;
    /** Calls received with this key (status queries not included). */
    calls: number;
    /** Status queries received for this key. */
    status_calls: number;
    /** What the provider did, set once: approved or declined; null while it did nothing. */
    outcome: string | null;
    reason: string | null;
    /** The provider's id of what it did (an authorization's id is what capture, void and refund name). */
    reference: string | null;
    created_at: string;
    performed_at: string | null;
  };
}

/** The ledger's migration: merged into payments' own, under a name of its own. */
export const pspLedgerMigrations: Record<string, Migration> = {
  '0900_psp_simulator_ledger': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('psp_simulator_ledger')
        .addColumn('idempotency_key', 'text', (c) => c.primaryKey())
        .addColumn('call', 'text')
        .addColumn('authorization_ref', 'text')
        .addColumn('amount', 'integer')
        .addColumn('currency', 'text')
        .addColumn('calls', 'integer', (c) => c.notNull())
        .addColumn('status_calls', 'integer', (c) => c.notNull())
        .addColumn('outcome', 'text')
        .addColumn('reason', 'text')
        .addColumn('reference', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('performed_at', 'text')
        .execute();
      await db.schema.createIndex('psp_simulator_ledger_authorization').on('psp_simulator_ledger').column('authorization_ref').execute();
      await db.schema.createIndex('psp_simulator_ledger_reference').on('psp_simulator_ledger').column('reference').execute();
    },
  },
};

/** One key's record. */
export interface LedgerEntry {
  idempotencyKey: string;
  call: ProviderCall | null;
  authorization: string | null;
  amount: number | null;
  currency: string | null;
  calls: number;
  statusCalls: number;
  outcome: 'approved' | 'declined' | null;
  reason: string | null;
  reference: string | null;
  performedAt: string | null;
}

type Row = PspLedgerDB['psp_simulator_ledger'];
const toEntry = (r: Row): LedgerEntry => ({
  idempotencyKey: r.idempotency_key,
  call: r.call as ProviderCall | null,
  authorization: r.authorization_ref,
  amount: r.amount === null ? null : Number(r.amount),
  currency: r.currency,
  calls: Number(r.calls),
  statusCalls: Number(r.status_calls),
  outcome: r.outcome as LedgerEntry['outcome'],
  reason: r.reason,
  reference: r.reference,
  performedAt: r.performed_at,
});

/** The simulator's records; one row per idempotency key, so one key can never do the work twice. */
export class PspLedger {
  private readonly db: Kysely<PspLedgerDB>;

  constructor(store: Store<unknown>) {
    this.db = store.db as unknown as Kysely<PspLedgerDB>;
  }

  /** Counts a call received under `key` (creating its record) and returns the record. */
  async received(
    key: string,
    call: ProviderCall,
    details: { authorization?: string | undefined; amount?: number | undefined; currency?: string | undefined },
  ): Promise<LedgerEntry> {
    const row = await this.db
      .insertInto('psp_simulator_ledger')
      .values({
        idempotency_key: key,
        call,
        authorization_ref: details.authorization ?? null,
        amount: details.amount ?? null,
        currency: details.currency ?? null,
        calls: 1,
        status_calls: 0,
        outcome: null,
        reason: null,
        reference: null,
        created_at: new Date().toISOString(),
        performed_at: null,
      })
      .onConflict((oc) =>
        oc.column('idempotency_key').doUpdateSet((eb) => ({
          calls: eb('psp_simulator_ledger.calls', '+', 1),
          // A key asked about before it was used: the first real call names it.
          call: eb.fn.coalesce('psp_simulator_ledger.call', 'excluded.call'),
          authorization_ref: eb.fn.coalesce('psp_simulator_ledger.authorization_ref', 'excluded.authorization_ref'),
          amount: eb.fn.coalesce('psp_simulator_ledger.amount', 'excluded.amount'),
          currency: eb.fn.coalesce('psp_simulator_ledger.currency', 'excluded.currency'),
        })),
      )
      .returningAll()
      .executeTakeFirstOrThrow();
    return toEntry(row);
  }

  /** Counts a status query for `key` and returns the record. */
  async asked(key: string): Promise<LedgerEntry> {
    const row = await this.db
      .insertInto('psp_simulator_ledger')
      .values({
        idempotency_key: key,
        call: null,
        authorization_ref: null,
        amount: null,
        currency: null,
        calls: 0,
        status_calls: 1,
        outcome: null,
        reason: null,
        reference: null,
        created_at: new Date().toISOString(),
        performed_at: null,
      })
      .onConflict((oc) =>
        oc.column('idempotency_key').doUpdateSet((eb) => ({ status_calls: eb('psp_simulator_ledger.status_calls', '+', 1) })),
      )
      .returningAll()
      .executeTakeFirstOrThrow();
    return toEntry(row);
  }

  /** Records what was done under `key`, unless something already was; returns what is recorded (the first outcome wins). */
  async perform(
    key: string,
    outcome: { outcome: 'approved'; reference: string } | { outcome: 'declined'; reason: string },
  ): Promise<LedgerEntry> {
    await this.db
      .updateTable('psp_simulator_ledger')
      .set({
        outcome: outcome.outcome,
        reference: outcome.outcome === 'approved' ? outcome.reference : null,
        reason: outcome.outcome === 'declined' ? outcome.reason : null,
        performed_at: new Date().toISOString(),
      })
      .where('idempotency_key', '=', key)
      .where('outcome', 'is', null)
      .execute();
    const entry = await this.entry(key);
    if (!entry) throw new Error(`psp simulator: no record of ${key}`);
    return entry;
  }

  async entry(key: string): Promise<LedgerEntry | null> {
    const row = await this.db.selectFrom('psp_simulator_ledger').selectAll().where('idempotency_key', '=', key).executeTakeFirst();
    return row ? toEntry(row) : null;
  }

  /** The approved authorization with this id, if any. */
  async authorization(reference: string): Promise<LedgerEntry | null> {
    const row = await this.db
      .selectFrom('psp_simulator_ledger')
      .selectAll()
      .where('reference', '=', reference)
      .where('call', '=', 'authorize')
      .where('outcome', '=', 'approved')
      .executeTakeFirst();
    return row ? toEntry(row) : null;
  }

  /** What was done to an authorization: its approved captures, voids and refunds. */
  async actionsOn(authorization: string): Promise<LedgerEntry[]> {
    const rows = await this.db
      .selectFrom('psp_simulator_ledger')
      .selectAll()
      .where('authorization_ref', '=', authorization)
      .where('outcome', '=', 'approved')
      .execute();
    return rows.map(toEntry);
  }

  /** Every record whose key starts with `prefix` (a checkout id and ':'), oldest first: what tests count. */
  async entries(prefix = ''): Promise<LedgerEntry[]> {
    const rows = await this.db.selectFrom('psp_simulator_ledger').selectAll().orderBy('created_at').orderBy('idempotency_key').execute();
    return rows.filter((r) => r.idempotency_key.startsWith(prefix)).map(toEntry);
  }
}
