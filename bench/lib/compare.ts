// Two runs of the gateway bench side by side, cell by cell and gateway by gateway: what a change
// did to each process's CPU per client query (each subgraph, the proxy, Redis), to req/s and to
// the gateway's own CPU per request. Meant for two runs made back to back on one machine
// (`--only` a few cells, before and after a change): figures from different machines, or hours
// apart on a shared VM, differ by more than most changes do, and the page says when the
// machines differ.
import { relative } from 'node:path';
import { REPO_ROOT } from './common';
import type { BenchResults, GatewayResult } from './types';

/** `1.24 → 0.64 (-48%)`; `n/a` where a side has no figure. */
function change(before: number | null | undefined, after: number | null | undefined): string {
  if (before === null || before === undefined || after === null || after === undefined) return 'n/a';
  const pct = before === 0 ? '' : ` (${after >= before ? '+' : ''}${Math.round(((after - before) / before) * 100)}%)`;
  return `${before.toFixed(2)} → ${after.toFixed(2)}${pct}`;
}

/** The Markdown comparison of `before` and `after` (their files' paths name them on the page). */
export function renderComparison(before: BenchResults, after: BenchResults, paths: { before: string; after: string }): string {
  const name = (p: string) => `\`${relative(REPO_ROOT, p)}\``;
  const lines: string[] = [];
  const mb = before.machine;
  const ma = after.machine;
  const sameMachine = mb.cpuModel === ma.cpuModel && mb.cpus === ma.cpus && mb.memoryGb === ma.memoryGb && mb.node === ma.node;
  lines.push(
    `Before: ${name(paths.before)} (${before.startedAt.slice(0, 16).replace('T', ' ')} UTC). ` +
      `After: ${name(paths.after)} (${after.startedAt.slice(0, 16).replace('T', ' ')} UTC). ` +
      (sameMachine
        ? `Same machine description (${ma.cpus} cores, ${ma.cpuModel}, Node ${ma.node}).`
        : `**The machines differ** (${mb.cpus} cores ${mb.cpuModel} vs ${ma.cpus} cores ${ma.cpuModel}): compare with care.`),
  );
  for (const cellAfter of after.cells) {
    const cellBefore = before.cells.find((c) => c.id === cellAfter.id);
    if (!cellBefore) continue;
    const pairs = cellAfter.gateways
      .map((g) => [cellBefore.gateways.find((b) => b.gateway === g.gateway), g] as const)
      .filter((pair): pair is readonly [GatewayResult, GatewayResult] => pair[0] !== undefined);
    if (pairs.length === 0) continue;
    const processes = [
      ...new Set(
        pairs.flatMap(([b, a]) => [...Object.keys(b.downstreamCpuMsPerQueryBy ?? {}), ...Object.keys(a.downstreamCpuMsPerQueryBy ?? {})]),
      ),
    ];
    const header = ['gateway', 'req/s', 'gateway CPU ms/request', ...processes.map((p) => `${p} ms/query`), 'all downstream ms/query'];
    lines.push('');
    lines.push(`**${cellAfter.id}**`);
    lines.push('');
    lines.push(`| ${header.join(' | ')} |`);
    lines.push(`|${header.map(() => '---').join('|')}|`);
    for (const [b, a] of pairs) {
      lines.push(
        `| ${a.label} | ${change(b.median.rps, a.median.rps)} | ${change(b.cpuMsPerRequest, a.cpuMsPerRequest)} | ` +
          `${processes.map((p) => change(b.downstreamCpuMsPerQueryBy?.[p], a.downstreamCpuMsPerQueryBy?.[p])).join(' | ')} | ` +
          `${change(b.downstreamCpuMsPerQuery, a.downstreamCpuMsPerQuery)} |`,
      );
    }
  }
  return lines.join('\n');
}
