// `npm run schema:check`: composition and breaking-change checks, with no registry and no network.
//
//   npm run schema:check                          compose supergraph.yaml; compare with the committed
//                                                 supergraph.graphql at the merge base with main
//   npm run schema:check -- --base <file|ref>     compare with a supergraph file or a git revision
//   npm run schema:check -- --allow-breaking      report breaking changes without failing
//   npm run schema:check -- --json                machine-readable report on stdout
//   npm run schema:check -- --config <yaml> --operations <dir> --approvals <file>
//
// Exit code: 0 pass, 1 fail, 2 usage error. Breaking changes are accepted one by one in
// schema-approvals.yaml (coordinate + reason).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseCli, runCli } from './lib/cli';
import { type BaseSpec, formatReport, runSchemaCheck } from '@shop/schema-check';

const REPO_ROOT = path.resolve(__dirname, '..');
const USAGE =
  'usage: npm run schema:check -- [--config supergraph.yaml] [--base <file|git-ref>] [--operations <dir>] [--approvals <file>] [--allow-breaking] [--json]';

async function main(argv: string[]): Promise<number> {
  const { values } = parseCli(USAGE, {
    args: argv,
    options: {
      config: { type: 'string' },
      base: { type: 'string' },
      operations: { type: 'string' },
      approvals: { type: 'string' },
      'allow-breaking': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const cwd = process.env.INIT_CWD ?? process.cwd();
  const base: BaseSpec | undefined = values.base
    ? existsSync(path.resolve(cwd, values.base))
      ? { file: path.resolve(cwd, values.base) }
      : { ref: values.base }
    : undefined;
  const report = await runSchemaCheck({
    config: path.resolve(cwd, values.config ?? path.join(REPO_ROOT, 'supergraph.yaml')),
    ...(base ? { base } : {}),
    ...(values.operations ? { operationsDir: path.resolve(cwd, values.operations) } : {}),
    ...(values.approvals ? { approvalsFile: path.resolve(cwd, values.approvals) } : {}),
    allowBreaking: values['allow-breaking'],
  });
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return report.ok ? 0 : 1;
}

// A check that cannot run at all (an unreadable file) is a usage problem: exit 2, not a failed check.
runCli('schema:check', main, { failureCode: 2 });
