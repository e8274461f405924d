import { type Kysely, type Store, inBackground, sql } from '@shop/store';
import type { Logger } from '@shop/telemetry';
import { type EventStore, type RecordedEvent, eventStoreTables } from './store';

/**
 * A read model fed from the event store's global position. The runner calls `apply` inside the
 * transaction that also moves the projection's checkpoint, so each event is applied exactly once
 * even across crashes; `apply` should still be idempotent (upserts, version guards) and
 * deterministic (times come from the event, never the clock), so a rebuild equals the live model.
 */
export interface Projection {
  /** Unique in the store: names the checkpoint row. */
  readonly name: string;
  apply(trx: Kysely<never>, event: RecordedEvent): Promise<void>;
  /** Deletes every row the projection wrote: a rebuild starts from here. */
  reset(trx: Kysely<never>): Promise<void>;
}

export interface ProjectionRunnerOptions {
  store: Store<unknown>;
  events: EventStore;
  projections: readonly Projection[];
  /** Events per transaction. @default 500 */
  batchSize?: number;
  logger?: Logger;
}

export interface RebuildReport {
  /** Events replayed from position zero. */
  events: number;
  /** The global position the projections stand at afterwards. */
  position: number;
  ms: number;
}

/**
 * Keeps projections in step with the event store. `catchUp()` applies every event after each
 * projection's stored checkpoint; `rebuild()` drops every projection and replays from zero.
 * Within a process passes run one at a time; across replicas on PostgreSQL an advisory lock
 * does the same, so two runners never apply one batch twice.
 */
export class ProjectionRunner {
  private readonly batchSize: number;
  /** The pass that runs last: new work queues behind it. */
  private tail: Promise<unknown> = Promise.resolve();
  /** A catch-up queued but not yet started: callers arriving now can share it. */
  private queued: Promise<number> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;

  constructor(private readonly options: ProjectionRunnerOptions) {
    this.batchSize = options.batchSize ?? 500;
    const names = options.projections.map((p) => p.name);
    if (new Set(names).size !== names.length) throw new Error(`projection names must be unique; received ${names.join(', ')}`);
  }

  private get db(): Kysely<unknown> {
    return this.options.store.db;
  }

  /** Runs `fn` after every pass queued before it. */
  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /**
   * Applies every event not yet applied. Resolves after a pass that started after this call, so
   * an event committed before the call is in the read models when it resolves (read your writes).
   * Returns how many events that pass applied.
   */
  catchUp(): Promise<number> {
    if (!this.queued) {
      const pass = this.enqueue(() => {
        this.queued = undefined;
        return this.pass();
      });
      this.queued = pass;
    }
    return this.queued;
  }

  /** Drops every projection and replays the whole store from position zero, in one transaction. */
  rebuild(): Promise<RebuildReport> {
    return this.enqueue(async () => {
      const started = Date.now();
      let events = 0;
      let position = 0;
      await this.db.transaction().execute(async (trx) => {
        await this.lock(trx);
        for (const p of this.options.projections) await p.reset(trx as unknown as Kysely<never>);
        await eventStoreTables(trx).deleteFrom('es_checkpoints').where('projection', 'in', this.names()).execute();
        for (;;) {
          const batch = await this.options.events.readAll(position, this.batchSize, trx);
          for (const event of batch) {
            for (const p of this.options.projections) await p.apply(trx as unknown as Kysely<never>, event);
          }
          events += batch.length;
          position = batch.at(-1)?.position ?? position;
          if (batch.length < this.batchSize) break;
        }
        await this.saveCheckpoints(trx, this.names(), position);
      });
      const report = { events, position, ms: Date.now() - started };
      this.options.logger?.info(report, 'projections rebuilt from position 0');
      return report;
    });
  }

  /** Each projection's checkpoint (0 for one that never ran). */
  async checkpoints(): Promise<Record<string, number>> {
    const rows = await eventStoreTables(this.db).selectFrom('es_checkpoints').selectAll().where('projection', 'in', this.names()).execute();
    const found = new Map(rows.map((r) => [r.projection, Number(r.position)]));
    return Object.fromEntries(this.names().map((n) => [n, found.get(n) ?? 0]));
  }

  /**
   * Catches up every `pollMs` in the background too, for events other replicas appended and
   * did not get to project (a crash between append and catch-up).
   */
  start(pollMs = 1000): void {
    this.stopped = false;
    const tick = () => {
      if (this.stopped) return;
      inBackground(() => this.catchUp())
        .catch((err: unknown) => this.options.logger?.warn({ err }, 'projection catch-up failed; will retry'))
        .finally(() => {
          if (!this.stopped) {
            this.timer = setTimeout(tick, pollMs);
            this.timer.unref();
          }
        });
    };
    this.timer = setTimeout(tick, pollMs);
    this.timer.unref();
  }

  /** Stops polling and waits for the pass in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.tail;
  }

  private names(): string[] {
    return this.options.projections.map((p) => p.name);
  }

  private async lock(trx: Kysely<unknown>): Promise<void> {
    if (this.options.store.dialect === 'postgres') await sql`select pg_advisory_xact_lock(hashtext('es_checkpoints:run'))`.execute(trx);
  }

  private async saveCheckpoints(trx: Kysely<unknown>, names: readonly string[], position: number): Promise<void> {
    if (names.length === 0) return;
    const now = new Date().toISOString();
    await eventStoreTables(trx)
      .insertInto('es_checkpoints')
      .values(names.map((projection) => ({ projection, position, updated_at: now })))
      .onConflict((oc) => oc.column('projection').doUpdateSet({ position, updated_at: now }))
      .execute();
  }

  /** One catch-up: batches of events, each batch and its checkpoints in one transaction. */
  private async pass(): Promise<number> {
    let applied = 0;
    for (;;) {
      const n = await this.db.transaction().execute(async (trx) => {
        await this.lock(trx);
        const rows = await eventStoreTables(trx).selectFrom('es_checkpoints').selectAll().where('projection', 'in', this.names()).execute();
        const at = new Map(rows.map((r) => [r.projection, Number(r.position)]));
        const from = Math.min(...this.options.projections.map((p) => at.get(p.name) ?? 0));
        const batch = await this.options.events.readAll(from, this.batchSize, trx);
        if (batch.length === 0) return 0;
        for (const event of batch) {
          for (const p of this.options.projections) {
            // A projection added later starts behind the others; each skips what it has seen.
            if (event.position > (at.get(p.name) ?? 0)) await p.apply(trx as unknown as Kysely<never>, event);
          }
        }
        await this.saveCheckpoints(trx, this.names(), batch.at(-1)!.position);
        return batch.length;
      });
      applied += n;
      if (n < this.batchSize) return applied;
    }
  }
}
