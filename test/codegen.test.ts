import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '..');
const subgraphs = readdirSync(join(root, 'subgraphs'));

// Resolver types are generated from each subgraph's SDL and committed; a schema change without
// `npm run codegen` would let resolvers drift from the schema unnoticed.
describe('generated resolver types', () => {
  it.each(subgraphs)('%s: src/generated/graphql.ts matches its schema.graphql', (name) => {
    const run = spawnSync(
      process.execPath,
      [join(root, 'node_modules/@graphql-codegen/cli/cjs/bin.js'), '--config', 'codegen.js', '--check'],
      {
        cwd: join(root, 'subgraphs', name),
        encoding: 'utf8',
      },
    );
    expect({ status: run.status, output: run.status === 0 ? '' : run.stdout + run.stderr }).toEqual({ status: 0, output: '' });
  });
});
