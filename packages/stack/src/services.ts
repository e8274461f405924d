import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { freePort } from '@shop/server';
import { REPO_ROOT, SUBGRAPHS, type SubgraphName } from './index';

export interface ServicesOptions {
  /** PostgreSQL URL per subgraph. @default postgres://postgres@127.0.0.1:5432/shop_<name> */
  databaseUrl?: (name: SubgraphName) => string;
  /** Port per process; 0 picks a free one. @default the contract ports */
  ports?: Partial<Record<SubgraphName | 'gateway', number>>;
  /** Extra environment for every process (SEED_*, LOG_LEVEL, REDIS_URL...). @default {} */
  env?: Record<string, string>;
  /** Where the children's stdout/stderr go. @default 'inherit' */
  stdio?: 'inherit' | 'ignore';
  /** How long each process may take to become ready. @default 120_000 */
  readyTimeoutMs?: number;
}

/** The services mode: each subgraph and the gateway in its own process. */
export interface Services {
  gatewayUrl: string;
  subgraphUrls: Record<SubgraphName, string>;
  processes: Record<SubgraphName | 'gateway', ChildProcess>;
  /** SIGTERM to every process (each drains, then exits), then waits for them. */
  stop(): Promise<void>;
}

export { freePort };

/** Polls `url` until it answers 200, the process exits, or the timeout passes. */
export async function waitForReady(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`process exited with code ${child.exitCode} before ${url} was ready`);
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await delay(100);
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms`);
}

function startProcess(entry: string, env: Record<string, string>, stdio: 'inherit' | 'ignore'): ChildProcess {
  // `node --import tsx`, not `npx tsx`: killing npx would leave its node child running.
  return spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', stdio, stdio],
  });
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Starts every subgraph as its own process on its own PostgreSQL database, then the gateway. */
export async function startServices(options: ServicesOptions = {}): Promise<Services> {
  const stdio = options.stdio ?? 'inherit';
  const timeout = options.readyTimeoutMs ?? 120_000;
  // Services talk through RabbitMQ: without a broker their events would wait in the outboxes.
  const env = { AMQP_URL: process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672', ...options.env };
  const processes = {} as Record<SubgraphName | 'gateway', ChildProcess>;
  const subgraphUrls = {} as Record<SubgraphName, string>;
  const stop = async () => {
    await Promise.all(Object.values(processes).map(stopProcess));
  };
  try {
    const ready: Promise<void>[] = [];
    for (const def of SUBGRAPHS) {
      const requested = options.ports?.[def.name] ?? def.port;
      const port = requested === 0 ? await freePort() : requested;
      const prefix = def.name.toUpperCase();
      const databaseUrl =
        options.databaseUrl?.(def.name) ?? process.env[`${prefix}_DATABASE_URL`] ?? `postgres://postgres@127.0.0.1:5432/shop_${def.name}`;
      const child = startProcess(join('subgraphs', def.name, 'src', 'index.ts'), { ...env, [`${prefix}_PORT`]: String(port), [`${prefix}_DATABASE_URL`]: databaseUrl }, stdio);
      processes[def.name] = child;
      subgraphUrls[def.name] = `http://127.0.0.1:${port}/graphql`;
      ready.push(waitForReady(`http://127.0.0.1:${port}/ready`, child, timeout));
    }
    await Promise.all(ready);
    const requested = options.ports?.gateway ?? 4000;
    const gatewayPort = requested === 0 ? await freePort() : requested;
    const overrides = Object.fromEntries(SUBGRAPHS.map((s) => [`SUBGRAPH_${s.name.toUpperCase()}_URL`, subgraphUrls[s.name]]));
    const gateway = startProcess(join('gateway', 'src', 'index.ts'), { ...env, ...overrides, GATEWAY_PORT: String(gatewayPort) }, stdio);
    processes.gateway = gateway;
    await waitForReady(`http://127.0.0.1:${gatewayPort}/ready`, gateway, timeout);
    return { gatewayUrl: `http://localhost:${gatewayPort}/graphql`, subgraphUrls, processes, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
