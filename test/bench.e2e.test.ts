// The benchmark is not a test: no timing threshold here. This checks that the harness runs end to
// end (`npm run bench -- --smoke`): every gateway starts, every cell is driven, the golden diff and
// the N+1 counts are taken, and the results JSON has every field docs/benchmarks.md is made from.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { BenchResults } from '../bench/lib/types';
import { validateResults } from '../bench/lib/validate';

const root = join(__dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
const out = join(dir, 'results.json');
let results: BenchResults;
let output = '';

beforeAll(async () => {
  try {
    const run = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--smoke', '--no-docs', '--out', out], {
      cwd: root,
      env: { ...process.env, NODE_ENV: 'production' },
      maxBuffer: 16 * 1024 * 1024,
    });
    output = run.stdout + run.stderr;
  } catch (err) {
    const { stdout = '', stderr = '' } = err as { stdout?: string; stderr?: string };
    throw new Error(`npm run bench -- --smoke failed:\n${stdout}\n${stderr}`, { cause: err });
  }
  results = JSON.parse(readFileSync(out, 'utf8')) as BenchResults;
}, 300_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('npm run bench -- --smoke', () => {
  it('writes a results JSON with every field the report needs', () => {
    expect(validateResults(results)).toEqual([]);
    expect(results.mode).toBe('smoke');
    expect(output).toContain(`wrote`);
  });

  it('installs the peers in bench/peers, not in the platform, and drives Hive with its Rust planner beside its JS one with caches off', () => {
    // The platform's own install (the repository's node_modules) does not carry a peer gateway.
    expect(existsSync(join(root, 'node_modules', '@graphql-hive', 'gateway'))).toBe(false);
    expect(existsSync(join(root, 'bench', 'peers', 'node_modules', '@graphql-hive', 'router-runtime', 'package.json'))).toBe(true);
    for (const cell of results.cells.filter((c) => c.phase === 'off' && c.workload !== 'write'))
      expect({ cell: cell.id, gateways: cell.gateways.map((g) => g.gateway) }).toEqual({
        cell: cell.id,
        gateways: expect.arrayContaining(['hive', 'hive-rust']),
      });
  });

  it('measures one client alone (one connection) on the deep query, every gateway of the caches-off phase', () => {
    const alone = results.cells.find((c) => c.id === 'off/deep/1c');
    expect(alone?.connections).toBe(1);
    expect(alone?.gateways.map((g) => g.gateway)).toEqual(['ours-off', 'plain', 'hive', 'hive-rust']);
    for (const g of alone?.gateways ?? []) expect(g.median.p99).toBeGreaterThan(0);
  });

  it('measures the small query beside ours with tracing on, which exported its spans', () => {
    const small = results.cells.find((c) => c.id === 'off/small');
    expect(small?.gateways.map((g) => g.gateway)).toEqual(['ours-off', 'ours-traced', 'plain', 'hive', 'hive-rust']);
    // The run fails when the traced gateway exported nothing; the note says how much it did.
    const note = results.notes.find((n) => n.startsWith('ours-traced exported'));
    expect(Number(/exported (\d+) OTLP/.exec(note ?? '')?.[1])).toBeGreaterThan(0);
  });

  it('drives all three kinds of gateway in every phase (the write mix, which needs verified callers, ours alone), and each answered with the same data as ours', () => {
    expect(new Set(results.cells.map((c) => c.phase))).toEqual(new Set(['off', 'on']));
    for (const cell of results.cells) {
      expect(new Set(cell.gateways.map((g) => g.kind))).toEqual(new Set(cell.workload === 'write' ? ['ours'] : ['ours', 'plain', 'hive']));
      for (const g of cell.gateways) {
        expect({ cell: cell.id, gateway: g.gateway, golden: g.golden.before.pass }).toEqual({
          cell: cell.id,
          gateway: g.gateway,
          golden: true,
        });
        expect(g.requests).toBeGreaterThan(0);
        expect(g.median.rps).toBeGreaterThan(0);
      }
    }
  });

  it("counts subgraph requests at the proxy, and ours' own /metrics agree", () => {
    const deep = results.cells.find((c) => c.id === 'off/deep');
    const ours = deep?.gateways.find((g) => g.kind === 'ours');
    const plain = deep?.gateways.find((g) => g.kind === 'plain');
    expect(ours?.subgraphRequestsPerQuery).toBeGreaterThan(0);
    // Without batching across fetches, plain @apollo/gateway makes more subgraph requests per deep query.
    expect(plain!.subgraphRequestsPerQuery).toBeGreaterThan(ours!.subgraphRequestsPerQuery);
    expect(ours!.reportedByGateway!.subgraphRequestsPerQuery).toBeCloseTo(ours!.subgraphRequestsPerQuery, 0);
  });

  it('the write mix read its own writes through our gateway: no stale read, and its signed-in writes answered without errors', () => {
    const write = results.cells.find((c) => c.workload === 'write');
    const ours = write?.gateways.find((g) => g.kind === 'ours');
    expect(ours?.stale?.checks).toBeGreaterThan(0);
    expect(ours?.stale?.stale).toBe(0);
    expect(ours?.stale?.example).toBeUndefined();
    expect({ errors: ours?.errors, non2xx: ours?.non2xx, graphqlErrors: ours?.graphqlErrors }).toEqual({
      errors: 0,
      non2xx: 0,
      graphqlErrors: 0,
    });
  });

  it('N+1 table: with DataLoader the store round trips stay flat from 5 to 500 products; without, they grow with the list', () => {
    const trips = (size: number, dataloader: boolean) =>
      results.nplus1.find((r) => r.size === size && r.dataloader === dataloader)?.storeRoundTrips;
    for (const row of results.nplus1)
      expect({ size: row.size, errors: row.errors, products: row.products }).toEqual({ size: row.size, errors: 0, products: row.size });
    expect(trips(500, true)).toBe(trips(5, true));
    expect(trips(500, false)!).toBeGreaterThan(10 * trips(5, false)!);
  });
});
