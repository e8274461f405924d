import type { BackgroundWorker } from '@shop/server';
import type { Telemetry } from '@shop/telemetry';
import type { StockRepository } from './data/repository';
import type { Decision } from './domain';

export interface SweeperOptions {
  telemetry: Telemetry;
  /** The pause between two passes (`RESERVATION_SWEEP_INTERVAL_MS`). */
  intervalMs: number;
  /** Called after a pass's reservations committed, with what each one did (the metrics). */
  swept?: (decisions: Decision[]) => void;
}

/**
 * Gives back the units of HELD reservations whose expiry has passed (EXPIRED, StockReleased
 * { expired: true } to orders), every `intervalMs`, so that a checkout that never commits or
 * releases (its orchestrator down, its payment slow) does not hold stock for ever. Every replica
 * runs one: a reservation moves only while it is still HELD, so two sweepers (or a sweeper and a
 * commit) never both release it. Passes never overlap; a failed one (the store down) is logged
 * and the next one tries again.
 */
export class ReservationSweeper implements BackgroundWorker {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  /** The last pass found a full page of due reservations: the next one runs at once. */
  private behind = false;
  private stopped = true;
  private failures = 0;

  constructor(
    private readonly stock: StockRepository,
    private readonly options: SweeperOptions,
  ) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule();
  }

  /** Expiry is a matter of time, not of what was consumed: nothing to do sooner. */
  kick(): void {}

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /** One pass now (also while stopped: tests sweep by hand); resolves with how many reservations expired. */
  sweepOnce(now = Date.now()): Promise<number> {
    if (!this.running) {
      this.running = this.stock
        .sweepExpired(now)
        .then(({ expired, more }) => {
          this.behind = more;
          if (expired.length > 0) this.options.swept?.(expired);
          return expired.length;
        })
        .finally(() => {
          this.running = undefined;
        });
    }
    return this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick().finally(() => this.schedule()), this.behind ? 0 : this.options.intervalMs);
    // A pending sweep does not keep the process alive on its own.
    this.timer.unref();
  }

  /** A scheduled pass: a failure (the store down) is logged, once and then every 50th time, and the next pass tries again. */
  private async tick(): Promise<void> {
    const { logger } = this.options.telemetry;
    try {
      const n = await this.sweepOnce();
      if (this.failures > 0) logger.info({ failures: this.failures }, 'reservation sweeper recovered');
      this.failures = 0;
      if (n > 0) logger.debug({ expired: n }, 'expired stock reservations released');
    } catch (err) {
      this.failures++;
      if (this.failures === 1 || this.failures % 50 === 0)
        logger.warn({ err, failures: this.failures }, 'reservation sweep failed; will retry');
    }
  }
}
