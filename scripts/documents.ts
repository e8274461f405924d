// `npm run documents`: operations/**/*.graphql -> operations/trusted-documents.json, the trusted
// documents manifest in Apollo's persisted query list format (one entry per operation: id =
// SHA-256 of the body, the operation printed with the fragments it uses). The gateway reads it
// with TRUSTED_DOCUMENTS=log|enforce; the schema check validates it against the new schema.
//
//   npm run documents                              write operations/trusted-documents.json
//   npm run documents -- --check                   exit 1 if the committed file is stale
//   npm run documents -- --operations <dir> --out <file>
//
// Exit code: 0 done (or up to date), 1 stale or the operations cannot be listed, 2 usage error.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseCli, readIfExists, runCli } from './lib/cli';
import { MANIFEST_FILE_NAME, buildManifest, manifestText } from '@shop/composition';

const REPO_ROOT = path.resolve(__dirname, '..');
const USAGE = 'usage: npm run documents -- [--operations <dir>] [--out <file>] [--check]';

async function main(argv: string[]): Promise<number> {
  const { values } = parseCli(USAGE, {
    args: argv,
    options: {
      operations: { type: 'string' },
      out: { type: 'string', short: 'o' },
      check: { type: 'boolean', default: false },
    },
  });
  // npm runs scripts from the root; INIT_CWD is where `npm run` was typed.
  const cwd = process.env.INIT_CWD ?? process.cwd();
  const operationsDir = path.resolve(cwd, values.operations ?? path.join(REPO_ROOT, 'operations'));
  const out = path.resolve(cwd, values.out ?? path.join(operationsDir, MANIFEST_FILE_NAME));
  const shown = (file: string) => path.relative(cwd, file) || file;

  const manifest = await buildManifest(operationsDir);
  const text = manifestText(manifest);
  const existing = await readIfExists(out);
  const count = `${manifest.operations.length} operation(s)`;
  if (values.check) {
    if (existing === text) {
      process.stdout.write(`${shown(out)} is up to date (${count})\n`);
      return 0;
    }
    process.stderr.write(
      `${shown(out)} ${existing === undefined ? 'does not exist' : 'is out of date'}; run \`npm run documents\` and commit it\n`,
    );
    return 1;
  }
  if (existing !== text) await writeFile(out, text);
  process.stdout.write(`${existing === text ? 'unchanged' : 'wrote'} ${shown(out)}: ${count}\n`);
  return 0;
}

runCli('documents', main);
