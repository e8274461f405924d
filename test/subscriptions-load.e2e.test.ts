// Issue #20's load acceptance: 1,000 concurrent subscribers on one gateway, each on its own
// WebSocket following its own order, each receive every change of their order (two each: 2,000
// changes), once, in order, and nobody else's. Runs `npm run bench:subscriptions -- --json` (the
// bench that writes docs/subscriptions.md' table) in a child process under --expose-gc; the
// numbers it reports (memory per subscription, latency) are printed, and memory is bounded.
import { spawn } from 'node:child_process';
import { REPO_ROOT } from '@shop/stack';
import type { SubscriptionLoadReport } from '../bench/subscriptions';

jest.setTimeout(600_000);

function bench(args: string[]): Promise<SubscriptionLoadReport> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', 'bench/subscriptions.ts', ...args], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      const line = stdout.trim().split('\n').at(-1) ?? '';
      if (code !== 0) reject(new Error(`bench:subscriptions exited ${code}: ${stdout}`));
      else resolve(JSON.parse(line) as SubscriptionLoadReport);
    });
  });
}

it('1,000 subscribers on one gateway each receive every change of their own order, once, in order', async () => {
  const report = await bench(['--subscribers', '1000', '--changes', '2', '--users', '100', '--json']);
  console.log(JSON.stringify(report));
  expect(report.expected).toBe(2000);
  expect(report.delivered).toBe(2000);
  expect({ duplicates: report.duplicates, strangers: report.strangers, outOfOrder: report.outOfOrder }).toEqual({
    duplicates: 0,
    strangers: 0,
    outOfOrder: 0,
  });
  expect({ errors: report.errors, closedEarly: report.closedEarly }).toEqual({ errors: 0, closedEarly: 0 });
  // A bound, not a timing: a subscription (its socket, protocol state and hub entry) costs well under 200 KB of heap.
  expect(report.heapPerSubscriptionKb).toBeLessThan(200);
});
