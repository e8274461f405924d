// What the benches measure a span's cost with, besides their own counters: the machine's 1-minute
// load average (now, or sampled every second over the span) and this process's own CPU time.
import { loadavg } from 'node:os';
import type { LoadAverageDuring } from './common';

export const round2 = (x: number) => Math.round(x * 100) / 100;

/** The machine's 1-minute load average now, to 0.01. */
export const load1 = () => round2(loadavg()[0] ?? 0);

/** This process's CPU time (user + system) so far, in seconds. */
export function ownCpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

/**
 * Starts sampling the 1-minute load average every second; the function it returns stops the
 * sampling and gives the average at the start, at the end and the samples' mean (the end's value
 * when the span was too short for a sample).
 */
export function sampleLoadAverage(): () => LoadAverageDuring {
  const start = load1();
  const samples: number[] = [];
  const sampler = setInterval(() => samples.push(load1()), 1000);
  return () => {
    clearInterval(sampler);
    const end = load1();
    return { start, end, mean: round2(samples.length ? samples.reduce((s, x) => s + x, 0) / samples.length : end) };
  };
}
