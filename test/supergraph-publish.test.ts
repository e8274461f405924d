// `npm run supergraph -- publish` writes a supergraph only when the schema check against the one
// published passes, and `-- serve` answers it with an ETag and 304s: the registry side of the
// rollout (the gateway's side is gateway/test/supergraph-url.test.ts, both together the rig).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REPO_ROOT, supergraphConfigWithout } from '@shop/stack';

jest.setTimeout(120_000);

const SCRIPT = path.join(REPO_ROOT, 'scripts', 'supergraph.ts');
const REPO_ARGS = ['--operations', path.join(REPO_ROOT, 'operations'), '--approvals', path.join(REPO_ROOT, 'schema-approvals.yaml')];

function publish(dir: string, config: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', SCRIPT, 'publish', '--to', dir, '--config', config, ...REPO_ARGS],
      { cwd: REPO_ROOT },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

let dir: string;
const older = supergraphConfigWithout('products', 'reviewCount');
const current = path.join(REPO_ROOT, 'supergraph.yaml');
const file = () => path.join(dir, 'supergraph.graphql');

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'publish-test-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  older.remove();
});

describe('npm run supergraph -- publish', () => {
  it('publishes the first supergraph, then one with a field added; the same one again changes nothing', async () => {
    const first = await publish(dir, older.file);
    expect(first).toMatchObject({ code: 0 });
    expect(first.stdout).toMatch(/^published: /);
    expect(readFileSync(file(), 'utf8')).not.toContain('reviewCount');

    const added = await publish(dir, current);
    expect(added).toMatchObject({ code: 0 });
    expect(readFileSync(file(), 'utf8')).toContain('reviewCount');

    const mtime = statSync(file()).mtimeMs;
    const again = await publish(dir, current);
    expect(again.stdout).toMatch(/^unchanged: /);
    expect(statSync(file()).mtimeMs).toBe(mtime);
  });

  it('refuses a supergraph that breaks the published one, and leaves the file as it was', async () => {
    const before = readFileSync(file(), 'utf8');
    // The field the gateways serve now would be gone: a breaking change without an approval.
    const refused = await publish(dir, older.file);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('breaking change: Product.reviewCount');
    expect(refused.stderr).toContain('not published');
    expect(readFileSync(file(), 'utf8')).toBe(before);
  });
});

describe('npm run supergraph -- serve', () => {
  let server: ChildProcess | undefined;
  afterAll(() => server?.kill('SIGTERM'));

  it('serves the published file with its SHA-256 as ETag, and a 304 to a client that has it', async () => {
    server = spawn(process.execPath, ['--import', 'tsx', SCRIPT, 'serve', '--dir', dir, '--port', '0', '--host', '127.0.0.1'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      server?.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const m = / at (http:\S+)/.exec(out);
        if (m?.[1]) resolve(m[1]);
      });
      server?.once('exit', (code) => reject(new Error(`serve exited with ${code}`)));
    });
    const text = readFileSync(file(), 'utf8');
    const etag = `"${createHash('sha256').update(text).digest('hex')}"`;
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe(etag);
    expect(await res.text()).toBe(text);
    const again = await fetch(url, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    expect((await fetch(url, { headers: { 'if-none-match': '"something else"' } })).status).toBe(200);
    expect((await fetch(url.replace('supergraph.graphql', 'other'))).status).toBe(404);
  });
});
