// The checkout benchmark is not a test: no timing threshold here. This checks that its harness runs
// end to end in the services mode (`npm run bench:checkout -- --smoke`: real processes, PostgreSQL,
// RabbitMQ), that every checkout it sent ended and the stores agree, and that the results JSON has
// every field docs/checkout.md's Measurements section is generated from.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { requireService } from '@shop/testing';
import { renderMeasurements } from '../bench/lib/checkout-report';
import { type CheckoutBenchResults, validateCheckoutResults } from '../bench/lib/checkout-results';

const root = join(__dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'bench-checkout-smoke-'));
const out = join(dir, 'checkout.json');
let results: CheckoutBenchResults;
let output = '';

beforeAll(async () => {
  await requireService('postgres');
  await requireService('amqp');
  try {
    const run = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'bench/checkout.ts', '--smoke', '--out', out], {
      cwd: root,
      env: process.env,
      maxBuffer: 16 * 1024 * 1024,
    });
    output = run.stdout + run.stderr;
  } catch (err) {
    const { stdout = '', stderr = '' } = err as { stdout?: string; stderr?: string };
    throw new Error(`npm run bench:checkout -- --smoke failed:\n${stdout}\n${stderr}`, { cause: err });
  }
  results = JSON.parse(readFileSync(out, 'utf8')) as CheckoutBenchResults;
}, 120_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('npm run bench:checkout -- --smoke', () => {
  it('writes a results JSON with every field the report needs, and leaves the docs alone', () => {
    expect(validateCheckoutResults(results)).toEqual([]);
    expect(results.mode).toBe('smoke');
    expect(output).toContain('wrote');
    expect(output).not.toContain('regenerated');
  });

  it('runs each load with and without declines; every checkout ends, and the stores agree on each', () => {
    // Each load at both decline rates in turn, forth then back (one restart of payments fewer).
    expect(results.stages.map((s) => `${s.declineRate}/${s.load.kind}`)).toEqual([
      '0/rate',
      '0.3/rate',
      '0.3/concurrency',
      '0/concurrency',
    ]);
    for (const s of results.stages) {
      const ended = Object.values(s.outcomes).reduce((a, b) => a + b, 0);
      expect({ stage: `${s.declineRate}/${s.load.kind}`, sent: s.sent, ended, errors: s.mutationErrors, unfinished: s.unfinished }).toEqual(
        {
          stage: `${s.declineRate}/${s.load.kind}`,
          sent: s.sent,
          ended: s.sent,
          errors: 0,
          unfinished: 0,
        },
      );
      expect(s.sent).toBeGreaterThan(0);
      expect(s.checks).toMatchObject({ consistent: true, heldReservations: 0, gatewayMismatches: 0 });
      expect(s.checks.gatewaySample).toBeGreaterThan(0);
      expect(s.latencyMs.count).toBe(s.sent);
      expect(
        Object.keys(s.outcomes).every((o) => (s.declineRate === 0 ? ['CONFIRMED'] : ['CONFIRMED', 'PAYMENT_DECLINED']).includes(o)),
      ).toBe(true);
    }
  });

  it("renders the docs section from the JSON alone, with the run's figures", () => {
    const section = renderMeasurements(results, out);
    for (const s of results.stages) expect(section).toContain(`${s.sent} (${s.mutationErrors})`);
    expect(section).toContain('start to terminal');
    expect(section).toContain(`load average was ${results.machine.loadAverage.start}`);
  });
});
