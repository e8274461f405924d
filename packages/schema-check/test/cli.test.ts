import { spawnSync } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..', '..');

function run(...args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts', 'schema-check.ts'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, INIT_CWD: ROOT },
  });
}

// The command CI runs: the repository's own schema must pass, and --json must be machine-readable.
describe('npm run schema:check', () => {
  it('passes on the repository and reports JSON with --json', () => {
    const res = run('--json');
    expect(res.status).toBe(0);
    const report = JSON.parse(res.stdout) as { ok: boolean; subgraphs: string[]; operations: { checked: number } };
    expect(report.ok).toBe(true);
    expect(report.subgraphs).toEqual(['accounts', 'products', 'inventory', 'reviews', 'orders', 'payments']);
    expect(report.operations.checked).toBeGreaterThanOrEqual(4);
  });

  it('exits 2 with usage on an unknown flag', () => {
    const res = run('--frobnicate');
    expect(res.status).toBe(2);
    expect(res.stderr).toContain('usage: npm run schema:check');
  });
});
