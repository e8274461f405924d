import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

// One error model (#12): resolvers throw DomainError bare; the lint rule keeps error mappers out.
const root = join(__dirname, '..');

interface LintResult {
  messages: Array<{ ruleId: string | null; message: string }>;
}

/** The project's ESLint in a child process (its config loader needs real ESM, not jest's VM). */
function lint(args: string[], stdin?: string): LintResult[] {
  const run = spawnSync(process.execPath, [join(root, 'node_modules/eslint/bin/eslint.js'), '--format', 'json', ...args], {
    cwd: root,
    input: stdin,
    encoding: 'utf8',
  });
  if (run.status !== 0 && run.status !== 1) throw new Error(`eslint failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as LintResult[];
}

describe('resolvers never wrap themselves in an error mapper', () => {
  it('the lint rule refuses coded(...) in a resolvers file', () => {
    const code = [
      'declare const coded: <T>(fn: () => Promise<T>) => Promise<T>;',
      'export const resolvers = { Query: { a: () => coded(async () => 1) } };',
    ].join('\n');
    const [result] = lint(['--stdin', '--stdin-filename', join(root, 'subgraphs/orders/src/resolvers.ts')], code);
    const messages = (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-syntax');
    expect(messages).toHaveLength(1);
    expect(messages[0]?.message).toContain('resolvers throw DomainError');
  });

  it('holds in the real resolvers', () => {
    const subgraphs = readdirSync(join(root, 'subgraphs'), { withFileTypes: true }).filter((d) => d.isDirectory());
    const results = lint(subgraphs.map((d) => `subgraphs/${d.name}/src`));
    expect(results.flatMap((r) => r.messages.filter((m) => m.ruleId === 'no-restricted-syntax'))).toEqual([]);
  });
});
