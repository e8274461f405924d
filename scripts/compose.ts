// `npm run compose`: supergraph.yaml -> supergraph.graphql, with @apollo/composition (rover cannot
// compose on this machine: it downloads its composition plugin at run time).
//
//   npm run compose                               the repo's supergraph.yaml -> supergraph.graphql
//   npm run compose -- path/to/supergraph.yaml    -> supergraph.graphql next to that yaml
//   npm run compose -- --out <file>               write somewhere else
//   npm run compose -- --check                    exit 1 if the file differs from a fresh compose
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { UsageError, parseCli, readIfExists, runCli } from './lib/cli';
import { composeFromConfig, formatCompositionError, formatCompositionHint, supergraphFileText } from '@shop/composition';

const REPO_ROOT = path.resolve(__dirname, '..');
const USAGE = 'usage: npm run compose -- [supergraph.yaml] [--out <file>] [--check] [--quiet]';

async function main(argv: string[]): Promise<number> {
  const args = parseCli(USAGE, {
    args: argv,
    allowPositionals: true,
    options: {
      out: { type: 'string', short: 'o' },
      check: { type: 'boolean', default: false },
      quiet: { type: 'boolean', short: 'q', default: false },
    },
  });
  if (args.positionals.length > 1)
    throw new UsageError(`expected at most one supergraph.yaml, received ${args.positionals.length}\n${USAGE}`);
  const cwd = process.cwd();
  const yamlPath = path.resolve(cwd, args.positionals[0] ?? path.join(REPO_ROOT, 'supergraph.yaml'));
  const out = path.resolve(cwd, args.values.out ?? path.join(path.dirname(yamlPath), 'supergraph.graphql'));
  const shown = (file: string) => path.relative(cwd, file) || file;
  const format = { relativeTo: cwd };

  const result = await composeFromConfig(yamlPath);
  for (const warning of result.warnings) process.stderr.write(`warning: ${warning}\n`);
  if (result.errors) {
    process.stderr.write(`${shown(yamlPath)} does not compose: ${result.errors.length} error(s)\n\n`);
    for (const error of result.errors) process.stderr.write(`${formatCompositionError(error, format)}\n\n`);
    return 1;
  }
  if (!args.values.quiet) {
    for (const hint of result.hints) process.stdout.write(`hint: ${formatCompositionHint(hint, format)}\n`);
  }

  const text = supergraphFileText(result.supergraphSdl);
  const existing = await readIfExists(out);
  const names = result.subgraphs.map((s) => s.name).join(', ');
  if (args.values.check) {
    if (existing === text) {
      process.stdout.write(`${shown(out)} is up to date (${names})\n`);
      return 0;
    }
    process.stderr.write(`${shown(out)} ${existing === undefined ? 'does not exist' : 'is out of date'}; run \`npm run compose\`\n`);
    return 1;
  }
  // Leave the file (and its mtime, which the gateway's watcher sees) alone when nothing changed.
  if (existing !== text) await writeFile(out, text);
  process.stdout.write(
    `${existing === text ? 'unchanged' : 'wrote'} ${shown(out)}: ${result.subgraphs.length} subgraphs (${names}), ${result.hints.length} hint(s)\n`,
  );
  return 0;
}

runCli('compose', main);
