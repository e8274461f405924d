// The Redis the bench's caches use. When redis-server is installed, the bench runs its OWN
// instance on a free loopback port (no persistence), so FLUSHALL and INFO commandstats concern
// the bench alone and no other Redis user is disturbed. Without it, caches fall back to the
// gateways' in-memory stores and Redis commands are not reported.
import { execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createClient } from '@keyv/redis';
import { freePort, spawnNodeless, stopChild, waitUntil } from './procs';

export interface BenchRedis {
  url: string;
  child: ChildProcess;
  /** Empties the bench's Redis: every gateway cache goes cold. */
  flush(): Promise<void>;
  /** Commands executed so far, by command, excluding the bench's own INFO and FLUSHALL. */
  commands(): Promise<Record<string, number>>;
  stop(): Promise<void>;
}

function installed(): boolean {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Starts a private redis-server, or returns undefined when it is not installed. */
export async function startRedis(logFile: string): Promise<BenchRedis | undefined> {
  if (!installed()) return undefined;
  const port = await freePort();
  const child = spawnNodeless(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'],
    logFile,
  );
  const url = `redis://127.0.0.1:${port}`;
  const client = createClient({ url });
  client.on('error', () => undefined);
  await waitUntil(
    'redis-server',
    child,
    async () => {
      if (!client.isOpen) await client.connect();
      return (await client.ping()) === 'PONG';
    },
    15_000,
  );
  const ignored = new Set(['info', 'flushall', 'ping', 'client|setinfo', 'client', 'hello']);
  return {
    url,
    child,
    async flush() {
      await client.flushAll();
    },
    async commands() {
      const text = await client.info('commandstats');
      const out: Record<string, number> = {};
      for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
        const name = match[1] as string;
        if (!ignored.has(name)) out[name] = Number(match[2]);
      }
      return out;
    },
    async stop() {
      await client.close().catch(() => undefined);
      await stopChild(child);
    },
  };
}
