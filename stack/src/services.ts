import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { loadAccountsAuthConfig } from '@shop/config';
import { loadGatewayConfig } from '@shop/gateway';
import { freePort } from '@shop/server';
import { REPO_ROOT, SUBGRAPHS, type SubgraphName, jwksUrlOf, loadSubgraphConfigs, portFor } from './subgraphs';

/** The broker `npm run start:services` uses when `AMQP_URL` is not set. */
export const DEFAULT_AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';

/**
 * How the services are configured: the children inherit this process's environment with `env`
 * over it, and the launcher reads the same variables through the processes' own config modules
 * (`<SERVICE>_PORT`, `GATEWAY_PORT`, `<SERVICE>_DATABASE_URL`, `SUBGRAPH_<NAME>_URL`, `AMQP_URL`),
 * so it never overwrites what the environment set. The other options are explicit overrides.
 */
export interface ServicesOptions {
  /** PostgreSQL URL per subgraph. @default `<SERVICE>_DATABASE_URL`, else postgres://postgres@127.0.0.1:5432/shop_<name> */
  databaseUrl?: (name: SubgraphName) => string;
  /** Port per process; 0 picks a free one. @default `<SERVICE>_PORT` and `GATEWAY_PORT`, else the contract ports */
  ports?: Partial<Record<SubgraphName | 'gateway', number>>;
  /** Environment for every process, over this process's (SEED_*, LOG_LEVEL, REDIS_URL, ports...). @default {} */
  env?: Record<string, string>;
  /** Where the children's stdout/stderr go. @default 'inherit' */
  stdio?: 'inherit' | 'ignore';
  /** How long each process may take to become ready. @default 120_000 */
  readyTimeoutMs?: number;
  /** Start only these subgraphs (tests of one event flow need two, not four). @default every subgraph */
  only?: readonly SubgraphName[];
  /** Start the gateway after the subgraphs. @default true */
  gateway?: boolean;
  /**
   * Gateway processes, each on its own port with the same environment (`gateway`, `gateway-2`,
   * ...): replicas that share the broker and the cache, as behind a load balancer. @default 1
   */
  gatewayReplicas?: number;
}

/** A process of the services mode: a subgraph, the gateway, or another gateway replica. */
export type ProcessName = SubgraphName | 'gateway' | `gateway-${number}`;

/** The services mode: each subgraph and the gateway in its own process. */
export interface Services {
  /** Empty when started with `gateway: false`. */
  gatewayUrl: string;
  /** Every gateway replica's URL, `gatewayUrl` first. */
  gatewayUrls: string[];
  /** `SUBGRAPH_SECRET` of every process: the environment's, or generated for this run. Direct calls to a subgraph sign with it. */
  subgraphSecret: string;
  subgraphUrls: Record<SubgraphName, string>;
  /** The running processes: every one started (see `only` and `gateway`), the current one after a restart. */
  processes: Partial<Record<ProcessName, ChildProcess>>;
  /** SIGTERM to every process (each drains, then exits), then waits for them. */
  stop(): Promise<void>;
  /**
   * Sends `signal` to one process and waits for it to exit: SIGKILL is a crash (no drain, no
   * clean-up), SIGTERM a graceful stop. @default 'SIGKILL'
   */
  kill(name: ProcessName, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a stopped (or killed) process again with the same port, database and environment, and waits for `/ready`. */
  restart(name: ProcessName): Promise<void>;
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

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** SIGTERM (a drain), then SIGKILL after `graceMs`; resolves when the child has exited. */
export function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** The gateway's token settings for these services' own accounts: its JWKS, and the `iss` and `aud` it stamps. */
function ownIssuer(accountsUrl: string, env: NodeJS.ProcessEnv): Record<string, string> {
  const { issuer, audience } = loadAccountsAuthConfig(env);
  return { JWKS_URL: jwksUrlOf(accountsUrl), JWT_ISSUER: issuer, JWT_AUDIENCE: audience };
}

/** Starts every subgraph as its own process on its own PostgreSQL database, then the gateway. */
export async function startServices(options: ServicesOptions = {}): Promise<Services> {
  const stdio = options.stdio ?? 'inherit';
  const timeout = options.readyTimeoutMs ?? 120_000;
  // What the children will see, read once; the launcher reads it through their config modules, so
  // a bad variable fails here, naming it, before any process starts.
  const inherited: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  // Services talk through RabbitMQ: without a broker their events would wait in the outboxes.
  // Every subgraph requires SUBGRAPH_SECRET and the gateway signs with it: without one in the
  // environment, one is made for this run. Only these children get it, and they all do.
  const subgraphSecret = inherited.SUBGRAPH_SECRET || randomBytes(32).toString('hex');
  const env: Record<string, string> = {
    ...options.env,
    AMQP_URL: inherited.AMQP_URL || DEFAULT_AMQP_URL,
    SUBGRAPH_SECRET: subgraphSecret,
  };
  const subgraphConfigs = loadSubgraphConfigs(inherited);
  const gatewayConfig = options.gateway === false ? undefined : loadGatewayConfig(inherited);
  const processes: Partial<Record<ProcessName, ChildProcess>> = {};
  /** How each process was started, to start it again the same way. */
  const specs: Partial<Record<ProcessName, { entry: string; env: Record<string, string>; readyUrl: string }>> = {};
  const subgraphUrls = {} as Record<SubgraphName, string>;
  const stop = async () => {
    await Promise.all(
      Object.values(processes)
        .filter((child): child is ChildProcess => child !== undefined)
        .map((child) => stopChild(child, 15_000)),
    );
  };
  const launch = (name: ProcessName): Promise<void> => {
    const spec = specs[name];
    if (!spec) throw new Error(`${name} was not started by this services instance`);
    const child = startProcess(spec.entry, spec.env, stdio);
    processes[name] = child;
    return waitForReady(spec.readyUrl, child, timeout);
  };
  const kill = async (name: ProcessName, signal: NodeJS.Signals = 'SIGKILL') => {
    const child = processes[name];
    if (!child) throw new Error(`${name} was not started by this services instance`);
    const done = exited(child);
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await done;
  };
  const restart = async (name: ProcessName) => {
    const child = processes[name];
    if (child && child.exitCode === null && child.signalCode === null)
      throw new Error(`${name} is still running (pid ${child.pid}): kill it first`);
    await launch(name);
  };
  try {
    const ready: Promise<void>[] = [];
    const chosen = SUBGRAPHS.filter((def) => options.only === undefined || options.only.includes(def.name));
    for (const def of SUBGRAPHS) {
      const config = subgraphConfigs[def.name];
      const requested = portFor(options.ports, def.name, config.port);
      const port = requested === 0 ? await freePort() : requested;
      subgraphUrls[def.name] = `http://127.0.0.1:${port}/graphql`;
      if (!chosen.includes(def)) continue;
      const prefix = def.name.toUpperCase();
      const databaseUrl = options.databaseUrl?.(def.name) ?? config.databaseUrl ?? `postgres://postgres@127.0.0.1:5432/shop_${def.name}`;
      specs[def.name] = {
        entry: join('subgraphs', def.name, 'src', 'index.ts'),
        env: { ...env, [`${prefix}_PORT`]: String(port), [`${prefix}_DATABASE_URL`]: databaseUrl },
        readyUrl: `http://127.0.0.1:${port}/ready`,
      };
      ready.push(launch(def.name));
    }
    await Promise.all(ready);
    const gatewayUrls: string[] = [];
    for (let replica = 1; gatewayConfig && replica <= (options.gatewayReplicas ?? 1); replica++) {
      const name: ProcessName = replica === 1 ? 'gateway' : `gateway-${replica}`;
      const requested = replica === 1 ? portFor(options.ports, 'gateway', gatewayConfig.port) : 0;
      const gatewayPort = requested === 0 ? await freePort() : requested;
      // The gateway routes to the services started here, except where SUBGRAPH_<NAME>_URL says otherwise.
      const overrides = Object.fromEntries(
        SUBGRAPHS.filter((s) => !gatewayConfig.subgraphUrlOverrides[s.name.toUpperCase()]).map((s) => [
          `SUBGRAPH_${s.name.toUpperCase()}_URL`,
          subgraphUrls[s.name],
        ]),
      );
      specs[name] = {
        entry: join('gateway', 'src', 'index.ts'),
        // Tokens are verified against these services' accounts, with the issuer and audience it
        // stamps, unless JWKS_URL names another issuer.
        env: {
          ...(inherited.JWKS_URL ? {} : ownIssuer(gatewayConfig.subgraphUrlOverrides.ACCOUNTS ?? subgraphUrls.accounts, inherited)),
          ...env,
          ...overrides,
          GATEWAY_PORT: String(gatewayPort),
        },
        readyUrl: `http://127.0.0.1:${gatewayPort}/ready`,
      };
      await launch(name);
      gatewayUrls.push(`http://localhost:${gatewayPort}/graphql`);
    }
    return { gatewayUrl: gatewayUrls[0] ?? '', gatewayUrls, subgraphUrls, subgraphSecret, processes, stop, kill, restart };
  } catch (err) {
    await stop();
    throw err;
  }
}
