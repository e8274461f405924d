// The orders benchmark is not a test: no timing threshold here. This checks that its harness runs
// end to end (`npm run bench:orders -- --smoke`: temp databases on both PostgreSQL servers, orders
// sharded in-process, a move to the second server under writes), that the shards' event stores
// hold exactly one event per successful command, and that the results JSON has every field
// docs/sharding.md's Measurements section is generated from.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { requireSecondPostgres, requireService, secondPostgresUrl } from '@shop/testing';
import { renderMeasurements } from '../bench/lib/orders-report';
import { type OrdersBenchResults, validateOrdersResults } from '../bench/lib/orders-results';

const root = join(__dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'bench-orders-smoke-'));
const out = join(dir, 'orders.json');
let results: OrdersBenchResults;
let output = '';

beforeAll(async () => {
  await requireService('postgres');
  await requireSecondPostgres();
  try {
    const run = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'bench/orders.ts', '--smoke', '--shards', '1,4', '--out', out],
      { cwd: root, env: process.env, maxBuffer: 16 * 1024 * 1024 },
    );
    output = run.stdout + run.stderr;
  } catch (err) {
    const { stdout = '', stderr = '' } = err as { stdout?: string; stderr?: string };
    throw new Error(`npm run bench:orders -- --smoke failed:\n${stdout}\n${stderr}`, { cause: err });
  }
  results = JSON.parse(readFileSync(out, 'utf8')) as OrdersBenchResults;
}, 58_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('npm run bench:orders -- --smoke', () => {
  it('writes a results JSON with every field the report needs, and leaves the docs alone', () => {
    expect(validateOrdersResults(results)).toEqual([]);
    expect(results.mode).toBe('smoke');
    expect(output).toContain('wrote');
    expect(output).not.toContain('regenerated');
  });

  it('measures each shard count; every shard takes writes and the event stores agree with the writers', () => {
    expect(results.cells.map((c) => c.shards)).toEqual([1, 4]);
    for (const c of results.cells) {
      expect(c.commands).toBeGreaterThan(0);
      expect(c.errors).toEqual({});
      expect(Object.keys(c.perShard)).toHaveLength(c.shards);
      expect(c.checks).toMatchObject({ consistent: true, events: c.commands, streamsOnTwoShards: 0, gappedStreams: 0 });
    }
  });

  it('moves slots 64-127 to a shard on the second server under writes: nothing lost or doubled, writes go on after', () => {
    const move = results.move!;
    expect(move).toMatchObject({ slots: '64-127', source: 's1', target: 's4' });
    expect(move.targetServer).toBe(new URL(secondPostgresUrl()).host);
    expect(move.eventsCopied).toBeGreaterThan(0);
    expect(move.checks).toMatchObject({ consistent: true, streamsOnTwoShards: 0, gappedStreams: 0 });
    // After the flip the new shard takes the moved slots' writes.
    expect(move.perShard.s4).toBeGreaterThan(0);
    expect(move.after.commands).toBeGreaterThan(0);
  });

  it("renders the docs section from the JSON alone, with the run's figures", () => {
    const section = renderMeasurements(results, out);
    for (const c of results.cells) expect(section).toContain(`**${c.commandsPerSecond}**`);
    expect(section).toContain(`fenced ${results.move!.fenceMs} ms`);
    expect(section).toContain(`load average was ${results.machine.loadAverage.start}`);
  });
});
