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

const showCpu = (o: GatewayResult, p: GatewayResult) =>
  `${o.cpuMsPerRequest ?? '?'} vs ${p.cpuMsPerRequest ?? '?'} ms of gateway CPU per request (${r2((o.cpuMsPerRequest ?? Infinity) / Math.max(p.cpuMsPerRequest ?? 0, 0.001))}x)`;
const cpuAtMost = (o: GatewayResult, p: GatewayResult) =>
  o.cpuMsPerRequest !== null && p.cpuMsPerRequest !== null && o.cpuMsPerRequest <= p.cpuMsPerRequest;
const noStale = {
  test: (o: GatewayResult) => o.stale !== null && o.stale.checks > 0 && o.stale.stale === 0,
  show: (o: GatewayResult) =>
    o.stale ? `${o.stale.stale} stale in ${o.stale.checks} reads after writes` : 'no reads after writes measured',
};

/**
 * The goals of issue #17, varied first: it is the cell nothing can share or cache, so it measures
 * the gateway and what it makes the subgraphs do.
 */
export const GOALS: GoalSpec[] = [
  {
    name: 'varied, caches off',
    target: '≥ 2x plain @apollo/gateway and ≥ 1.5x Hive Gateway (JS planner) req/s',
    cell: 'off/varied',
    ours: 'ours-off',
    checks: [
      { peer: 'plain', test: (o, p) => rpsRatio(o, p) >= 2, show: showRps('plain') },
      { peer: 'hive', test: (o, p) => rpsRatio(o, p) >= 1.5, show: showRps('Hive') },
    ],
  },
  {
    name: 'varied, caches on',
    target: 'ahead of Hive Gateway with its response cache, req/s',
    cell: 'on/varied/warm',
    ours: 'ours-all',
    checks: [{ peer: 'hive-rc', test: (o, p) => rpsRatio(o, p) > 1, show: showRps('Hive (response cache)') }],
  },
  {
    name: 'varied, caches off, gateway CPU',
    target: '≤ Hive Gateway with the Rust planner, CPU per request',
    cell: 'off/varied',
    ours: 'ours-off',
    checks: [{ peer: 'hive-rust', test: cpuAtMost, show: showCpu }],
  },
  {
    name: 'deep, caches off, gateway CPU',
    target: '≤ Hive Gateway with the Rust planner, CPU per request',
    cell: 'off/deep',
    ours: 'ours-off',
    checks: [{ peer: 'hive-rust', test: cpuAtMost, show: showCpu }],
  },
  {
    name: 'deep (warm), all caches',
    target: '≥ Hive Gateway with its response cache, req/s (stale reads: the write-mix goals)',
    cell: 'on/deep/warm',
    ours: 'ours-all',
    checks: [{ peer: 'hive-rc', test: (o, p) => rpsRatio(o, p) >= 1, show: showRps('Hive (response cache)') }],
  },
  {
    name: 'one deep query alone',
    target: 'subgraph requests and representations per query ≤ Hive Gateway with the Rust planner',
    cell: 'off/deep/1c',
    ours: 'ours-off',
    checks: [
      {
        peer: 'hive-rust',
        test: (o, p) => o.subgraphRequestsPerQuery <= p.subgraphRequestsPerQuery,
        show: (o, p) => `${r2(o.subgraphRequestsPerQuery)} vs ${r2(p.subgraphRequestsPerQuery)} subgraph requests`,
      },
      {
        peer: 'hive-rust',
        test: (o, p) => o.representationsPerQuery <= p.representationsPerQuery,
        show: (o, p) => `${r2(o.representationsPerQuery)} vs ${r2(p.representationsPerQuery)} representations`,
      },
    ],
  },
  {
    name: 'small, caches off',
    target: '≥ 1.5x plain @apollo/gateway req/s',
    cell: 'off/small',
    ours: 'ours-off',
    checks: [{ peer: 'plain', test: (o, p) => rpsRatio(o, p) >= 1.5, show: showRps('plain') }],
  },
  {
    name: 'write mix, caches off',
    target: '0 stale reads',
    cell: 'off/write',
    ours: 'ours-off',
    checks: [{ peer: 'ours-off', ...noStale }],
  },
  {
    name: 'write mix, all caches',
    target: '0 stale reads',
    cell: 'on/write/warm',
    ours: 'ours-all',
    checks: [{ peer: 'ours-all', ...noStale }],
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
