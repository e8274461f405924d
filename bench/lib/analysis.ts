// Ratios ours/peer per cell, and the goals checked against them.
import type { BenchResults, CellResult, Goal, GatewayResult, Ratio } from './types';

const r2 = (n: number) => Math.round(n * 100) / 100;

export function ratios(cells: CellResult[]): Ratio[] {
  const out: Ratio[] = [];
  for (const cell of cells) {
    const ours = cell.gateways.filter((g) => g.kind === 'ours');
    const peers = cell.gateways.filter((g) => g.kind !== 'ours');
    for (const o of ours) {
      for (const p of peers) {
        if (p.median.rps === 0 || p.median.p99 === 0) continue;
        out.push({
          cell: cell.id,
          ours: o.gateway,
          peer: p.gateway,
          rps: r2(o.median.rps / p.median.rps),
          p99: r2(o.median.p99 / p.median.p99),
        });
      }
    }
  }
  return out;
}

function find(cells: CellResult[], id: string, gateway: string): GatewayResult | undefined {
  return cells.find((c) => c.id === id)?.gateways.find((g) => g.gateway === gateway);
}

/** One goal: where it is measured, and its test on the two gateways' medians. */
export interface GoalSpec {
  name: string;
  target: string;
  cell: string;
  ours: string;
  /** The peers and, for each, the test. */
  checks: Array<{
    peer: string;
    test: (ours: GatewayResult, peer: GatewayResult) => boolean;
    show: (ours: GatewayResult, peer: GatewayResult) => string;
  }>;
}

const rpsRatio = (o: GatewayResult, p: GatewayResult) => (p.median.rps > 0 ? o.median.rps / p.median.rps : Infinity);
const showRps = (label: string) => (o: GatewayResult, p: GatewayResult) =>
  `${r2(rpsRatio(o, p))}x ${label} (${o.median.rps} vs ${p.median.rps} req/s)`;

export const GOALS: GoalSpec[] = [
  {
    name: 'deep, caches off',
    target: '≥ 2x plain @apollo/gateway req/s and ≥ Hive Gateway',
    cell: 'off/deep',
    ours: 'ours-off',
    checks: [
      { peer: 'plain', test: (o, p) => rpsRatio(o, p) >= 2, show: showRps('plain') },
      { peer: 'hive', test: (o, p) => rpsRatio(o, p) >= 1, show: showRps('Hive') },
    ],
  },
  {
    name: 'deep, entity cache warm',
    target: '≥ 5x plain req/s, p99 ≤ 1/3 of plain',
    cell: 'on/deep/warm',
    ours: 'ours-entity',
    checks: [
      { peer: 'plain', test: (o, p) => rpsRatio(o, p) >= 5, show: showRps('plain') },
      {
        peer: 'plain',
        test: (o, p) => o.median.p99 <= p.median.p99 / 3,
        show: (o, p) => `p99 ${o.median.p99} ms vs ${p.median.p99} ms (${r2(o.median.p99 / Math.max(p.median.p99, 0.001))}x)`,
      },
    ],
  },
  {
    name: 'varied, caches on',
    target: 'ahead of Hive Gateway (with its response cache)',
    cell: 'on/varied/warm',
    ours: 'ours-all',
    checks: [{ peer: 'hive-rc', test: (o, p) => rpsRatio(o, p) > 1, show: showRps('Hive') }],
  },
  {
    name: 'small, caches off',
    target: 'within 10% of plain req/s',
    cell: 'off/small',
    ours: 'ours-off',
    checks: [{ peer: 'plain', test: (o, p) => rpsRatio(o, p) >= 0.9, show: showRps('plain') }],
  },
];

export function checkGoal(spec: GoalSpec, cells: CellResult[]): Goal {
  const ours = find(cells, spec.cell, spec.ours);
  const parts: string[] = [];
  let met: boolean | null = ours ? true : null;
  for (const check of spec.checks) {
    const peer = find(cells, spec.cell, check.peer);
    if (!ours || !peer) {
      met = null;
      parts.push(`not measured (${spec.cell}: ${spec.ours} vs ${check.peer})`);
      continue;
    }
    const ok = check.test(ours, peer);
    if (!ok && met !== null) met = false;
    parts.push(`${check.show(ours, peer)} ${ok ? '✓' : '✗'}`);
  }
  return { name: spec.name, target: spec.target, measured: parts.join('; '), met };
}

export function checkGoals(cells: CellResult[], profiles: Map<string, Goal['profile']> = new Map()): Goal[] {
  return GOALS.map((spec) => {
    const goal = checkGoal(spec, cells);
    const profile = profiles.get(spec.name);
    return profile ? { ...goal, profile } : goal;
  });
}

/** True when every gateway of every cell matched ours before (and after) the load. */
export function goldenClean(results: BenchResults): boolean {
  return results.cells.every((c) => c.gateways.every((g) => g.golden.before.pass && (g.golden.after?.pass ?? true)));
}
