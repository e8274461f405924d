import { testTelemetry } from '@shop/testing';
import type { StockRepository } from '../src/data/repository';
import type { Decision } from '../src/domain';
import { ReservationSweeper } from '../src/sweeper';

const expiry: Decision = { to: 'EXPIRED', effect: 'release', replies: [{ type: 'StockReleased', expired: true }], outcome: 'expired' };

/** A stand-in for the repository's sweep: each call takes the next scripted answer (an Error throws). */
function scripted(answers: Array<{ expired: number; more: boolean } | Error>) {
  const calls: number[] = [];
  const stock = {
    sweepExpired: async (now: number) => {
      calls.push(now);
      const next = answers.shift() ?? { expired: 0, more: false };
      if (next instanceof Error) throw next;
      return { expired: Array.from({ length: next.expired }, () => expiry), more: next.more };
    },
  } as unknown as StockRepository;
  return { stock, calls };
}

const until = async (condition: () => boolean) => {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('ReservationSweeper', () => {
  it('sweeps on its interval, keeps going after a failed pass, reports what expired, and stops', async () => {
    const { stock, calls } = scripted([{ expired: 2, more: false }, new Error('store down'), { expired: 1, more: false }]);
    const swept: number[] = [];
    const sweeper = new ReservationSweeper(stock, {
      telemetry: testTelemetry('inventory'),
      intervalMs: 5,
      swept: (d) => swept.push(d.length),
    });
    sweeper.start();
    await until(() => calls.length >= 4);
    await sweeper.stop();
    const after = calls.length;
    expect(swept).toEqual([2, 1]);
    await new Promise((r) => setTimeout(r, 30));
    expect(calls.length).toBe(after);
  });

  it('runs the next pass at once while a pass finds a full page', async () => {
    const { stock, calls } = scripted([
      { expired: 100, more: true },
      { expired: 100, more: true },
      { expired: 5, more: false },
    ]);
    const sweeper = new ReservationSweeper(stock, { telemetry: testTelemetry('inventory'), intervalMs: 60_000 });
    // The first pass waits for the interval: call it by hand, then the backlog drains without waiting.
    expect(await sweeper.sweepOnce()).toBe(100);
    sweeper.start();
    await until(() => calls.length >= 3);
    await sweeper.stop();
    expect(calls).toHaveLength(3);
  });

  it('shares one pass between callers: passes never overlap', async () => {
    const { stock, calls } = scripted([{ expired: 1, more: false }]);
    const sweeper = new ReservationSweeper(stock, { telemetry: testTelemetry('inventory'), intervalMs: 60_000 });
    expect(await Promise.all([sweeper.sweepOnce(), sweeper.sweepOnce()])).toEqual([1, 1]);
    expect(calls).toHaveLength(1);
  });
});
