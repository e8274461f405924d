// bench:compare (bench/lib/compare.ts): two runs side by side, on the committed before/after pair
// of bench/results/ab, and docs/before-after.md holds what the command writes from them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderComparison } from '../bench/lib/compare';
import { REPO_ROOT } from '../bench/lib/common';
import type { BenchResults } from '../bench/lib/types';
import { assertResults } from '../bench/lib/validate';

const paths = {
  before: join(REPO_ROOT, 'bench/results/ab/subgraph-lists-before-6fe6842.json'),
  after: join(REPO_ROOT, 'bench/results/ab/subgraph-lists-after.json'),
};
const load = (path: string): BenchResults => {
  const value: unknown = JSON.parse(readFileSync(path, 'utf8'));
  assertResults(value);
  return value;
};

describe('bench:compare', () => {
  const before = load(paths.before);
  const after = load(paths.after);
  const page = renderComparison(before, after, paths);

  it('puts each gateway beside itself, per cell and process, with the change in percent', () => {
    for (const cell of after.cells) {
      expect(page).toContain(`**${cell.id}**`);
      const ours = cell.gateways.find((g) => g.gateway === 'ours-off');
      const was = before.cells.find((c) => c.id === cell.id)?.gateways.find((g) => g.gateway === 'ours-off');
      const from = was?.downstreamCpuMsPerQueryBy?.reviews;
      const to = ours?.downstreamCpuMsPerQueryBy?.reviews;
      if (from === undefined || to === undefined) throw new Error(`no reviews figure in ${cell.id}`);
      const pct = Math.round(((to - from) / from) * 100);
      expect(page).toContain(`${from.toFixed(2)} → ${to.toFixed(2)} (${pct >= 0 ? '+' : ''}${pct}%)`);
    }
    expect(page).toContain('Same machine description');
  });

  it('says when the machines differ', () => {
    const elsewhere = { ...after, machine: { ...after.machine, cpus: after.machine.cpus + 2 } };
    expect(renderComparison(before, elsewhere, paths)).toContain('**The machines differ**');
  });

  it('is what docs/before-after.md shows', () => {
    expect(readFileSync(join(REPO_ROOT, 'docs/before-after.md'), 'utf8')).toContain(page);
  });
});
