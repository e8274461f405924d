// Two gateway bench runs side by side (bench/lib/compare.ts says what and why):
//   npm run bench:compare -- <before.json> <after.json>            print the comparison
//   npm run bench:compare -- <before.json> <after.json> --write    and write it into docs/before-after.md
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError, parseCli, runCli } from '../scripts/lib/cli';
import { REPO_ROOT } from './lib/common';
import { renderComparison } from './lib/compare';
import { writeSection } from './lib/doc-section';
import { assertResults } from './lib/validate';

const USAGE = 'usage: npm run bench:compare -- <before.json> <after.json> [--write]';
export const COMPARE_DOCS = join(REPO_ROOT, 'docs', 'before-after.md');

function load(path: string) {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UsageError(`cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  assertResults(value);
  return value;
}

runCli('bench:compare', async (argv) => {
  const { values, positionals } = parseCli(USAGE, {
    args: argv,
    allowPositionals: true,
    options: { write: { type: 'boolean', default: false } },
  });
  if (positionals.length !== 2) throw new UsageError(USAGE);
  const [beforePath, afterPath] = positionals.map((p) => resolve(p)) as [string, string];
  const body = renderComparison(load(beforePath), load(afterPath), { before: beforePath, after: afterPath });
  process.stdout.write(`${body}\n`);
  if (values.write) writeSection(COMPARE_DOCS, 'bench:compare', body, ' (with `-- <before.json> <after.json> --write`)');
  return 0;
});
