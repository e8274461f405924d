import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

export const repoRoot = join(__dirname, '..', '..');

export interface LintResult {
  filePath: string;
  messages: Array<{ ruleId: string | null; message: string; line: number }>;
}

/**
 * Runs the project's ESLint in a child process (its config loader needs real ESM, not jest's VM).
 * `import-x/no-cycle` is off unless `cycles` is set: following every import for cycles took 4 of
 * each probe's 5 s, and `npm test`'s own `eslint .` checks cycles.
 */
export function lint(args: string[], stdin?: string, { cycles = false }: { cycles?: boolean } = {}): LintResult[] {
  const run = spawnSync(
    process.execPath,
    [
      join(repoRoot, 'node_modules/eslint/bin/eslint.js'),
      '--format',
      'json',
      ...(cycles ? [] : ['--rule', '{"import-x/no-cycle":"off"}']),
      ...args,
    ],
    { cwd: repoRoot, input: stdin, encoding: 'utf8' },
  );
  if (run.status !== 0 && run.status !== 1) throw new Error(`eslint failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as LintResult[];
}
