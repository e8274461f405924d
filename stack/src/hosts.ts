// Test hosts on one machine: network namespaces on a bridge, each with its own address, so the
// services mode runs as it would across machines (nothing reaches another process through
// 127.0.0.1), and HAProxy (Debian's package) as the load balancer and as the forwards that make
// the machine's PostgreSQL, Redis and RabbitMQ reachable from the hosts without changing their
// configuration. Root only (iproute2). Everything made here is named after the run, recorded
// under /run/shop-hosts, and removed by `close()`, by the exit of this process, or by the next
// run when this one died without either.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stopChild } from './services';
import { REPO_ROOT } from './subgraphs';

const RECORDS = '/run/shop-hosts';

/** One test host: a network namespace with an address on the run's bridge. */
export interface Host {
  name: string;
  /** Its address on the bridge. */
  ip: string;
  /** Starts `command` inside the host (its environment is exactly `env`, over PATH and HOME). */
  spawn(command: string, args: readonly string[], env: Record<string, string>, stdio: 'inherit' | 'ignore'): ChildProcess;
}

export interface HostNetwork {
  /** The bridge's own address: the machine as the hosts see it (forwards listen there). */
  gatewayIp: string;
  hosts: Map<string, Host>;
  addHost(name: string): Host;
  /** A TCP forward from the bridge address's `port` to `target` (host:port) on the machine. */
  forward(port: number, target: string): void;
  /** Starts the forwards (one HAProxy in TCP mode on the machine), after every `forward`. */
  startForwards(): Promise<void>;
  /** Stops every process started on a host, the forwards, and removes the namespaces and the bridge. */
  close(): Promise<void>;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

/** Whether this machine can make hosts: root, iproute2 and HAProxy. The reason when it cannot. */
export function hostsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'test hosts need root (network namespaces)';
  for (const tool of ['ip', 'haproxy']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `test hosts need ${tool} (apt-get install ${tool === 'ip' ? 'iproute2' : 'haproxy'})`;
    }
  }
  return undefined;
}

interface RunRecord {
  pid: number;
  bridge: string;
  namespaces: string[];
  pids: number[];
}

/** Removes what a record names: its processes, namespaces and bridge. Errors mean it was gone already. */
function removeRecorded(record: RunRecord): void {
  for (const pid of record.pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited already
    }
  }
  for (const ns of record.namespaces) {
    try {
      ip('netns', 'delete', ns);
    } catch {
      // gone already
    }
  }
  try {
    ip('link', 'delete', record.bridge);
  } catch {
    // gone already
  }
}

/** Cleans up after earlier runs whose process died without cleaning up. */
function removeStale(): void {
  if (!existsSync(RECORDS)) return;
  for (const file of readdirSync(RECORDS)) {
    // A live run's HAProxy configurations sit beside the records: only records are read here.
    if (!file.endsWith('.json')) continue;
    const at = path.join(RECORDS, file);
    let record: RunRecord;
    try {
      record = JSON.parse(readFileSync(at, 'utf8')) as RunRecord;
    } catch {
      rmSync(at, { force: true });
      continue;
    }
    let alive = true;
    try {
      process.kill(record.pid, 0);
    } catch {
      alive = false;
    }
    if (alive) continue;
    removeRecorded(record);
    rmSync(at, { force: true });
  }
}

/** A /24 in 10.0.0.0/8 that no interface of this machine uses. */
function freeSubnet(): string {
  const used = execFileSync('ip', ['-o', '-4', 'addr', 'show'], { encoding: 'utf8' });
  for (let tries = 0; tries < 50; tries++) {
    const [a, b] = randomBytes(2);
    const prefix = `10.${100 + ((a ?? 0) % 150)}.${b ?? 0}`;
    if (!used.includes(` ${prefix}.`)) return prefix;
  }
  throw new Error('no free 10.x.y.0/24 subnet for the test hosts');
}

/** Makes the bridge; hosts are added with `addHost`. */
export function createHostNetwork(): HostNetwork {
  const reason = hostsUnavailable();
  if (reason) throw new Error(reason);
  mkdirSync(RECORDS, { recursive: true, mode: 0o700 });
  removeStale();
  const id = randomBytes(3).toString('hex');
  const subnet = freeSubnet();
  const record: RunRecord = { pid: process.pid, bridge: `shbr${id}`, namespaces: [], pids: [] };
  const recordFile = path.join(RECORDS, `${id}.json`);
  const save = () => writeFileSync(recordFile, JSON.stringify(record));
  save();
  const gatewayIp = `${subnet}.1`;
  const children = new Set<ChildProcess>();
  const track = (child: ChildProcess) => {
    children.add(child);
    if (child.pid) record.pids.push(child.pid);
    save();
    child.once('exit', () => {
      children.delete(child);
      record.pids = record.pids.filter((p) => p !== child.pid);
      save();
    });
    return child;
  };
  let closed = false;
  const removeAll = () => {
    if (closed) return;
    closed = true;
    removeRecorded(record);
    rmSync(recordFile, { force: true });
  };
  // Also when the test process ends without close() (a failed beforeAll, a timeout).
  process.once('exit', removeAll);

  ip('link', 'add', record.bridge, 'type', 'bridge');
  ip('addr', 'add', `${gatewayIp}/24`, 'dev', record.bridge);
  ip('link', 'set', record.bridge, 'up');

  const hosts = new Map<string, Host>();
  const forwards: Array<{ port: number; target: string }> = [];
  let next = 10;
  const addHost = (name: string): Host => {
    const n = next++;
    const ns = `sh${id}-${name}`;
    const outside = `sh${id}o${n}`;
    const inside = `sh${id}i${n}`;
    ip('netns', 'add', ns);
    record.namespaces.push(ns);
    save();
    ip('link', 'add', outside, 'type', 'veth', 'peer', 'name', inside);
    ip('link', 'set', inside, 'netns', ns);
    ip('link', 'set', outside, 'master', record.bridge, 'up');
    ip('-n', ns, 'addr', 'add', `${subnet}.${n}/24`, 'dev', inside);
    ip('-n', ns, 'link', 'set', inside, 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    const host: Host = {
      name,
      ip: `${subnet}.${n}`,
      spawn: (command, args, env, stdio) =>
        track(
          spawn('ip', ['netns', 'exec', ns, command, ...args], {
            cwd: REPO_ROOT,
            env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...env },
            stdio: ['ignore', stdio, stdio],
          }),
        ),
    };
    hosts.set(name, host);
    return host;
  };

  return {
    gatewayIp,
    hosts,
    addHost,
    forward: (port, target) => void forwards.push({ port, target }),
    async startForwards() {
      const config = [
        'global',
        '  maxconn 4000',
        'defaults',
        '  mode tcp',
        '  timeout connect 2s',
        '  timeout client 1h',
        '  timeout server 1h',
        ...forwards.flatMap((f) => [`listen fwd_${f.port}`, `  bind ${gatewayIp}:${f.port}`, `  server target ${f.target}`]),
      ].join('\n');
      const child = track(runHaproxy(config, `forwards-${id}`, 'ignore'));
      await waitForListening(
        gatewayIp,
        forwards.map((f) => f.port),
        child,
      );
    },
    async close() {
      await Promise.all([...children].map((c) => stopChild(c, 5000)));
      removeAll();
    },
  };
}

/** Starts HAProxy in the foreground on `config` (written to a file under /run). */
export function runHaproxy(config: string, name: string, stdio: 'inherit' | 'ignore', host?: Host): ChildProcess {
  // Root's alone: the configurations name the addresses of the run's services.
  mkdirSync(RECORDS, { recursive: true, mode: 0o700 });
  const file = path.join(RECORDS, `${name}.cfg`);
  writeFileSync(file, `${config}\n`, { mode: 0o600 });
  const child = host
    ? host.spawn('haproxy', ['-db', '-f', file], {}, stdio)
    : spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', stdio, stdio] });
  child.once('exit', () => rmSync(file, { force: true }));
  return child;
}

/** Waits until every port accepts a connection at `address`, or the child exits. */
async function waitForListening(address: string, ports: readonly number[], child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  for (const port of ports) {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`haproxy exited with code ${child.exitCode}`);
      const ok = await new Promise<boolean>((resolve) => {
        const socket = connect(port, address);
        socket.once('connect', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => resolve(false));
      });
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`nothing listens on ${address}:${port} after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

export { waitForListening };
