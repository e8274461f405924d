// Child processes for the bench: spawn with their output in a log file, pin to a core with
// taskset, wait for readiness by polling (never by sleeping a fixed time), read CPU time and
// peak RSS from /proc, stop by pid.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { stopChild } from '@shop/stack';

/** SIGTERM, then SIGKILL after a grace (10 s by default): the launchers' own helper. */
export { stopChild };

// The bench's children are told their ports up front: the one free-port finder (get-port).
export { freePort } from '@shop/server';

/** Which cores the gateway and everything else run on, when the machine allows pinning. */
export interface Pinning {
  gateway: string;
  rest: string;
}

function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Core 0 for the gateway under test, the other cores for subgraphs, proxy, Redis and the load generator. */
export function detectPinning(): Pinning | undefined {
  const n = cpus().length;
  if (n < 2 || process.platform !== 'linux' || !hasTaskset()) return undefined;
  return { gateway: '0', rest: n === 2 ? '1' : `1-${n - 1}` };
}

/** Moves a running process, every thread of it, to `cpuList`. Threads it starts later inherit it. */
export function pin(pid: number, cpuList: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpuList, String(pid)], { stdio: 'ignore' });
}

export interface SpawnOptions {
  env: Record<string, string | undefined>;
  /** Where stdout and stderr go. */
  logFile: string;
  /** Keep stdout as a pipe (for a child that reports its ports there). @default false */
  pipeStdout?: boolean;
}

/** Every process the bench started and that has not exited: what an interrupted run must stop. */
const live = new Set<ChildProcess>();

function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** SIGTERM to every process the bench started that is still running, then SIGKILL after `graceMs`. */
export async function stopAllChildren(graceMs = 5_000): Promise<void> {
  await Promise.all([...live].map((child) => stopChild(child, graceMs)));
}

let everyCpu: string | undefined;
/**
 * Children start on every core even when the bench itself is pinned (a child inherits its
 * parent's affinity): start-up is not measured, and each is pinned once it is up.
 */
export function startChildrenOnEveryCore(): void {
  everyCpu = `0-${cpus().length - 1}`;
}

function command(program: string, args: string[]): [string, string[]] {
  return everyCpu ? ['taskset', ['-c', everyCpu, program, ...args]] : [program, args];
}

/** Starts `node <args>` from the repository root. */
export function spawnNode(args: string[], cwd: string, options: SpawnOptions): ChildProcess {
  const log = createWriteStream(options.logFile, { flags: 'a' });
  const [program, programArgs] = command(process.execPath, args);
  const child = spawn(program, programArgs, {
    cwd,
    env: options.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (!options.pipeStdout) child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  return track(child);
}

/** Starts a non-Node program (redis-server) with its output in a log file. */
export function spawnNodeless(name: string, args: string[], logFile: string): ChildProcess {
  const log = createWriteStream(logFile, { flags: 'a' });
  const [program, programArgs] = command(name, args);
  const child = spawn(program, programArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  return track(child);
}

/** The first line a child writes on stdout (the proxy reports its ports this way). */
export function firstLine(child: ChildProcess, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => reject(new Error(`no output from pid ${child.pid} within ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`pid ${child.pid} exited with code ${code} before reporting`));
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const newline = buffered.indexOf('\n');
      if (newline >= 0) {
        clearTimeout(timer);
        resolve(buffered.slice(0, newline));
      }
    });
  });
}

/** Polls until `probe` resolves true; fails early when the child exits. */
export async function waitUntil(
  what: string,
  child: ChildProcess | undefined,
  probe: () => Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`${what} exited with code ${child.exitCode} before it was ready`);
    try {
      if (await probe()) return;
    } catch {
      // not up yet
    }
    await delay(100);
  }
  throw new Error(`${what} not ready after ${timeoutMs} ms`);
}

/** True when a GraphQL endpoint answers `{ __typename }` with data. */
export async function graphqlAnswers(url: string): Promise<boolean> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":"{ __typename }"}' });
  if (!res.ok) return false;
  const body = (await res.json()) as { data?: unknown };
  return body.data !== undefined;
}

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** User plus system CPU seconds the process has used so far (from /proc/<pid>/stat). */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces; fields are counted after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return (utime + stime) / ticksPerSecond();
  } catch {
    return undefined;
  }
}

/** Resets the peak RSS (VmHWM) of a process, so the next reading covers only what follows. */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** Peak resident set size in MB (VmHWM), or undefined off Linux. */
export function peakRssMb(pid: number): number | undefined {
  const path = `/proc/${pid}/status`;
  if (!existsSync(path)) return undefined;
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(path, 'utf8'));
  return match ? Number(match[1]) / 1024 : undefined;
}
