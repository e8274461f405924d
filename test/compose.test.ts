// `npm run compose` (scripts/compose.ts) and the committed supergraph.graphql it produces.
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { composeFromConfig, describeCompositionError, formatCompositionError, supergraphFileText } from '@shop/composition';

const REPO_ROOT = path.resolve(__dirname, '..');
const FIXTURES = path.join(__dirname, 'fixtures', 'compose');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the script as `npm run compose` does, from the repository root. */
function compose(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'scripts/compose.ts', ...args], { cwd: REPO_ROOT }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'compose-test-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("the repository's supergraph", () => {
  it('supergraph.graphql is byte for byte what supergraph.yaml composes to', async () => {
    const result = await composeFromConfig(path.join(REPO_ROOT, 'supergraph.yaml'));
    expect(result.errors?.map((e) => formatCompositionError(e))).toBeUndefined();
    // On failure: run `npm run compose` and commit supergraph.graphql.
    const committed = await readFile(path.join(REPO_ROOT, 'supergraph.graphql'), 'utf8').catch((err: Error) => {
      throw new Error(`supergraph.graphql is missing; run \`npm run compose\` and commit it (${err.message})`);
    });
    expect(supergraphFileText(result.supergraphSdl ?? '')).toBe(committed);
  });
});

describe('scripts/compose.ts', () => {
  const valid = path.join(FIXTURES, 'valid', 'supergraph.yaml');
  const broken = path.join(FIXTURES, 'broken', 'supergraph.yaml');

  it('writes the composed supergraph to --out, deterministically', async () => {
    const out = path.join(tmp, 'out.graphql');
    const first = await compose(valid, '--out', out);
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(first.stdout).toContain('2 subgraphs (shelves, loans)');
    const text = await readFile(out, 'utf8');
    expect(text).toContain('@join__graph(name: "loans", url: "http://localhost:5102/graphql")');
    expect(text.endsWith('}\n')).toBe(true);

    const inProcess = await composeFromConfig(valid);
    expect(supergraphFileText(inProcess.supergraphSdl ?? '')).toBe(text);

    const second = await compose(valid, '--out', out);
    expect(second.stdout).toMatch(/^unchanged /m);
    expect(await readFile(out, 'utf8')).toBe(text);
  });

  it('writes supergraph.graphql next to the yaml by default', async () => {
    const dir = path.join(tmp, 'beside');
    await mkdir(dir);
    for (const name of ['supergraph.yaml', 'shelves.graphql', 'loans.graphql']) {
      await copyFile(path.join(FIXTURES, 'valid', name), path.join(dir, name));
    }
    const run = await compose(path.join(dir, 'supergraph.yaml'));
    expect(run.code).toBe(0);
    expect(await readFile(path.join(dir, 'supergraph.graphql'), 'utf8')).toContain('type Loan');
  });

  it('--check fails when the file is stale', async () => {
    const out = path.join(tmp, 'check.graphql');
    expect((await compose(valid, '--out', out)).code).toBe(0);
    expect((await compose(valid, '--out', out, '--check')).code).toBe(0);
    await writeFile(out, `${await readFile(out, 'utf8')}# edited by hand\n`);
    const stale = await compose(valid, '--out', out, '--check');
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('out of date');
  });

  it('fails on a broken fixture, naming the subgraph, the coordinate and the place', async () => {
    const out = path.join(tmp, 'broken.graphql');
    const run = await compose(broken, '--out', out);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('does not compose');
    expect(run.stderr).toContain('KEY_INVALID_FIELDS');
    expect(run.stderr).toContain('at subgraph "loans" Loan (test/fixtures/compose/broken/loans.graphql:3:11)');
    await expect(readFile(out, 'utf8')).rejects.toThrow();

    const result = await composeFromConfig(broken);
    expect(result.supergraphSdl).toBeUndefined();
    const [first] = result.errors ?? [];
    expect(first).toBeDefined();
    expect(describeCompositionError(first!)).toMatchObject({
      code: 'KEY_INVALID_FIELDS',
      locations: [{ subgraph: 'loans', coordinate: 'Loan', file: path.join(FIXTURES, 'broken', 'loans.graphql'), line: 3 }],
    });
  });

  it('fails with a message when the yaml or a schema file is missing', async () => {
    const run = await compose(path.join(tmp, 'nope.yaml'));
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/compose failed: Cannot read supergraph config .*nope\.yaml/);
  });
});
