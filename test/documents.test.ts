// `npm run documents` (scripts/documents.ts) and the committed operations/trusted-documents.json.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type PersistedQueryManifest, buildManifest, manifestText } from '@shop/composition';

const REPO_ROOT = path.resolve(__dirname, '..');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the script as `npm run documents` does, from the repository root. */
function documents(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'scripts/documents.ts', ...args],
      { cwd: REPO_ROOT, env: { ...process.env, INIT_CWD: REPO_ROOT } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(tmpdir(), 'documents-test-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("the repository's manifest", () => {
  it('operations/trusted-documents.json is byte for byte what operations/ builds', async () => {
    const operationsDir = path.join(REPO_ROOT, 'operations');
    const fresh = manifestText(await buildManifest(operationsDir));
    // On failure: run `npm run documents` and commit operations/trusted-documents.json.
    const committed = await readFile(path.join(operationsDir, 'trusted-documents.json'), 'utf8').catch((err: Error) => {
      throw new Error(`operations/trusted-documents.json is missing; run \`npm run documents\` and commit it (${err.message})`);
    });
    expect(committed).toBe(fresh);
    // Every operation file is in it, subfolders included.
    const names = (JSON.parse(committed) as PersistedQueryManifest).operations.map((o) => o.name);
    expect(names).toEqual(expect.arrayContaining(['HomePage', 'ProductPage', 'WriteReview', 'AddToOrder', 'OrderHistory']));
  });
});

describe('scripts/documents.ts', () => {
  it('writes the manifest to --out deterministically, and --check fails once it is stale', async () => {
    const ops = path.join(tmp, 'ops');
    await mkdir(path.join(ops, 'sub'), { recursive: true });
    await writeFile(path.join(ops, 'A.graphql'), '# a comment\nquery A { books { title } }\n');
    await writeFile(path.join(ops, 'sub', 'B.graphql'), 'mutation B { rename(id: "1") }\n');
    const out = path.join(tmp, 'manifest.json');

    const first = await documents('--operations', ops, '--out', out);
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(first.stdout).toContain('2 operation(s)');
    const text = await readFile(out, 'utf8');
    expect(text).toBe(manifestText(await buildManifest(ops)));
    expect((JSON.parse(text) as PersistedQueryManifest).operations.map((o) => [o.name, o.type])).toEqual([
      ['A', 'query'],
      ['B', 'mutation'],
    ]);

    expect((await documents('--operations', ops, '--out', out)).stdout).toMatch(/^unchanged /m);
    expect((await documents('--operations', ops, '--out', out, '--check')).code).toBe(0);

    await writeFile(path.join(ops, 'C.graphql'), 'query C { books { id } }\n');
    const stale = await documents('--operations', ops, '--out', out, '--check');
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain('is out of date; run `npm run documents`');
    expect(await readFile(out, 'utf8')).toBe(text);

    const missing = await documents('--operations', ops, '--out', path.join(tmp, 'none.json'), '--check');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('does not exist');
  });

  it('fails naming the file when an operation cannot be listed, and 2 on a usage error', async () => {
    const ops = path.join(tmp, 'anonymous');
    await mkdir(ops, { recursive: true });
    await writeFile(path.join(ops, 'Anon.graphql'), '{ books { title } }\n');
    const run = await documents('--operations', ops, '--out', path.join(tmp, 'anon.json'));
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/documents failed: anonymous\/Anon\.graphql: every operation needs a name/);
    expect((await documents('--frobnicate')).code).toBe(2);
  });
});
