// What a child process costs, read from Linux's /proc: CPU time and resident memory. Tests that
// bound the work a request may cause run the server as a child, so these numbers are its own.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let clockTicks: number | undefined;

/** `sysconf(_SC_CLK_TCK)`: the unit of /proc/<pid>/stat's CPU times (100 on Linux, so 10 ms steps). */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    const answer = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    clockTicks = Number.isInteger(answer) && answer > 0 ? answer : 100;
  }
  return clockTicks;
}

/**
 * CPU time the process has used, user plus system, summed over all its threads (GC and libuv
 * workers included), in milliseconds. The kernel counts it in clock ticks: 10 ms granularity.
 */
export function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Field 2 (the command) is in parentheses and may hold spaces: count fields after its last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the command: state (field 3) is index 0, so utime (field 14) is 11 and stime (15) is 12.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`cannot read CPU times of ${pid} from: ${stat}`);
  return ((utime + stime) * 1000) / ticksPerSecond();
}

/**
 * CPU time of the process's main thread (where JavaScript runs), in nanoseconds, from
 * /proc/<pid>/schedstat: precise enough to time one small request, unlike {@link processCpuMs}.
 */
export function mainThreadCpuNs(pid: number): number {
  const value = Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
  if (!Number.isFinite(value)) throw new Error(`cannot read /proc/${pid}/schedstat`);
  return value;
}

/** Resident set size (VmRSS), in bytes. */
export function processRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/** One poll that did not get a 200 in time. */
export interface HealthFailure {
  url: string;
  /** What the test was doing: the poller's `label` when the poll started. */
  during: string;
  /** `HTTP 503`, `timed out after 1000 ms`, or the connection error. */
  reason: string;
  ms: number;
}

export interface HealthPoller {
  /** Names what the test is doing; failures carry it. */
  label: string;
  readonly failures: HealthFailure[];
  /** Polls that completed, answered or failed. */
  readonly polls: number;
  /** Waits for the polls in flight, whose results count. */
  settle(): Promise<void>;
  /** Stops polling (during a deliberate restart); polls in flight are not counted. */
  pause(): Promise<void>;
  resume(): void;
  stop(): Promise<void>;
}

/**
 * Polls each of `urls` every `intervalMs` for as long as it runs; a poll that gets no 200 within
 * `timeoutMs` is a failure. At most one poll per URL is in flight: a slow one is not stacked on.
 */
export function pollHealth(urls: readonly string[], options: { intervalMs?: number; timeoutMs?: number } = {}): HealthPoller {
  const intervalMs = options.intervalMs ?? 200;
  const timeoutMs = options.timeoutMs ?? 1000;
  const failures: HealthFailure[] = [];
  const inFlight = new Map<string, Promise<void>>();
  let polls = 0;
  let paused = false;
  let generation = 0;
  const poller: HealthPoller = {
    label: 'start',
    failures,
    get polls() {
      return polls;
    },
    async settle() {
      await Promise.all(inFlight.values());
    },
    async pause() {
      paused = true;
      generation++;
      await Promise.all(inFlight.values());
    },
    resume() {
      paused = false;
    },
    async stop() {
      clearInterval(timer);
      await poller.pause();
    },
  };
  const pollOnce = async (url: string) => {
    const during = poller.label;
    const mine = generation;
    const started = performance.now();
    let reason: string | undefined;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
      await res.arrayBuffer();
      if (res.status !== 200) reason = `HTTP ${res.status}`;
    } catch (err) {
      const name = (err as Error).name;
      reason = name === 'TimeoutError' || name === 'AbortError' ? `timed out after ${timeoutMs} ms` : String((err as Error).cause ?? err);
    }
    if (mine !== generation) return;
    polls++;
    if (reason) failures.push({ url, during, reason, ms: Math.round(performance.now() - started) });
  };
  const timer = setInterval(() => {
    if (paused) return;
    for (const url of urls) {
      if (inFlight.has(url)) continue;
      const p = pollOnce(url).finally(() => inFlight.delete(url));
      inFlight.set(url, p);
    }
  }, intervalMs);
  return poller;
}
