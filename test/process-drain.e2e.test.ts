// A subgraph process drains on SIGTERM as the gateway does: /ready says `draining` for
// DRAIN_DELAY_MS while it still answers, then it exits 0. Run with NODE_ENV=development, where
// Apollo Server would otherwise install its own signal handlers (it skips them under `test`): they
// stopped Apollo at once and raised the signal again, and the process exited 130 without a drain
// (found by the multi-host rig: a drained products replica lost requests a drained gateway did not).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '@shop/server';
import { REPO_ROOT, waitForReady } from '@shop/stack';

jest.setTimeout(120_000);

it('a subgraph process says draining on /ready, still answers, then exits 0', async () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'drain-'));
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', path.join('subgraphs', 'products', 'src', 'index.ts')], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'development',
      DRAIN_DELAY_MS: '1500',
      SUBGRAPH_SECRET: randomBytes(32).toString('hex'),
      PRODUCTS_PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      SEED_USERS: '3',
      SEED_PRODUCTS: '3',
      SEED_REVIEWS: '3',
      LOG_LEVEL: 'error',
    },
    stdio: 'ignore',
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  try {
    const base = `http://127.0.0.1:${port}`;
    await waitForReady(`${base}/ready`, child, 60_000);
    const signalled = performance.now();
    child.kill('SIGTERM');
    const seen: string[] = [];
    let health = 0;
    while (child.exitCode === null && child.signalCode === null && performance.now() - signalled < 1200) {
      const res = await fetch(`${base}/ready`).catch(() => undefined);
      seen.push(res ? `${res.status} ${((await res.json()) as { status: string }).status}` : 'refused');
      health = (await fetch(`${base}/health`).catch(() => undefined))?.status ?? 0;
    }
    // The signal reaches the child's event loop a moment after kill(): a /ready answered before
    // that says ready (a clean-clone CI run on a loaded machine saw one). From the first
    // `draining` on, every answer says draining, and the process still answers for the delay.
    const first = seen.indexOf('503 draining');
    expect(first).toBeGreaterThanOrEqual(0);
    expect(new Set(seen.slice(0, first))).toEqual(new Set(first > 0 ? ['200 ready'] : []));
    expect(new Set(seen.slice(first))).toEqual(new Set(['503 draining']));
    expect(health).toBe(200);
    expect(await exited).toEqual({ code: 0, signal: null });
    expect(performance.now() - signalled).toBeGreaterThanOrEqual(1400);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
});
