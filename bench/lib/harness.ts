// What the command-line benches (bench, bench:checkout, bench:orders, bench:events) share around their
// measurements: their options checked by zod (and the run's mode), the fields a results document
// starts with, writing it under bench/results/, `--report` (the docs section again from a results
// file alone), and running `main`. What they measure with is in sampling.ts.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, platform, release, totalmem } from 'node:os';
import { join, relative, resolve } from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import { z } from 'zod';
import { UsageError, parseCli, runCli } from '../../scripts/lib/cli';
import { type Machine, REPO_ROOT, type RunMode } from './common';
import { load1 } from './sampling';

/** The command line parsed (parseCli's conventions), then checked by `schema`: each problem named by its option, then the usage. */
export function parseOptionValues<S extends z.ZodType>(
  usage: string,
  argv: string[],
  options: ParseArgsConfig['options'],
  schema: S,
): z.output<S> {
  const { values } = parseCli(usage, { args: argv, options });
  const parsed = schema.safeParse(values);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `--${i.path[0] === undefined ? '' : String(i.path[0])}: ${i.message}`);
    throw new UsageError(`${problems.join('\n')}\n${usage}`);
  }
  return parsed.data;
}

/** The run's mode from `--quick` and `--smoke` (neither: a full run); both is a usage error. */
function modeOf(flags: { quick: boolean; smoke: boolean }, usage: string): RunMode {
  if (flags.quick && flags.smoke) throw new UsageError(`--quick and --smoke exclude each other\n${usage}`);
  return flags.smoke ? 'smoke' : flags.quick ? 'quick' : 'full';
}

/** The options of every bench that writes a docs section: its mode (--quick, --smoke), --out, --no-docs and --report. */
const runOptions = {
  quick: { type: 'boolean', default: false },
  smoke: { type: 'boolean', default: false },
  out: { type: 'string' },
  'no-docs': { type: 'boolean', default: false },
  report: { type: 'string' },
} as const;
const runArgs = {
  quick: z.boolean(),
  smoke: z.boolean(),
  out: z.string().optional(),
  'no-docs': z.boolean(),
  report: z.string().optional(),
};

/**
 * The command line of a bench that writes a docs section: its own `options`, checked by `args`
 * (zod, by option name), besides --quick, --smoke, --out, --no-docs and --report; with the mode.
 */
export function parseRunOptions<S extends z.ZodRawShape>(usage: string, argv: string[], options: ParseArgsConfig['options'], args: S) {
  const values = parseOptionValues(usage, argv, { ...runOptions, ...options }, z.object({ ...runArgs, ...args }));
  return { ...values, mode: modeOf(values as { quick: boolean; smoke: boolean }, usage) };
}

/** A path given on the command line, from where `npm run` was called. */
const fromCaller = (path: string) => resolve(process.env.INIT_CWD ?? process.cwd(), path);

/** The machine as a results document records it, with the load average at the run's start (`loadAtStart`) and now. */
function machineFacts(loadAtStart: number): Machine {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memoryGb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${platform()} ${release()}`,
    loadAverage: { start: loadAtStart, end: load1() },
  };
}

/** The fields a bench:checkout or bench:orders document has after its kind, for a run that started at `startedAt` and ends now. */
export function runRecord(mode: RunMode, args: string[], startedAt: Date, loadAtStart: number) {
  const finishedAt = new Date();
  return {
    schema: 1 as const,
    mode,
    args,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationS: Math.round((finishedAt.getTime() - startedAt.getTime()) / 1000),
    machine: machineFacts(loadAtStart),
  };
}

interface WriteResults {
  /** The file's name before the time: bench/results/<name>-<startedAt>.json. */
  name: string;
  /** --out, from the caller's folder, instead. */
  out: string | undefined;
  /** Throws on a problem with the document. */
  check: (value: unknown) => void;
  log: (line: string) => void;
  /** The docs section to regenerate from the file (a default run's), and where it is. */
  docs?: { path: string; write: (file: string) => void };
}

/** Checks `results` as its JSON will read, writes it, regenerates the docs section when asked, and returns the file. */
export function writeResults(results: { startedAt: string }, { name, out, check, log, docs }: WriteResults): string {
  check(JSON.parse(JSON.stringify(results)));
  const dir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = out ? fromCaller(out) : join(dir, `${name}-${results.startedAt.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  log(`wrote ${relative(REPO_ROOT, file)}`);
  if (docs) {
    docs.write(file);
    log(`regenerated the Measurements of ${relative(REPO_ROOT, docs.path)}`);
  }
  return file;
}

/** `--report <file>`: validates a results file (`check` throws on a problem) and regenerates the docs section at `docsPath` from it alone. */
export function regenerateFrom<T>(
  report: string,
  check: (value: unknown) => asserts value is T,
  write: (results: T, file: string) => void,
  docsPath: string,
): void {
  const file = fromCaller(report);
  const results: unknown = JSON.parse(readFileSync(file, 'utf8'));
  check(results);
  write(results, file);
  process.stderr.write(`regenerated the Measurements of ${relative(REPO_ROOT, docsPath)} from ${relative(REPO_ROOT, file)}\n`);
}

/** Runs a bench's `main` on the process's arguments (runCli's exit codes), ending the process when it settles. */
export function runBench(name: string, main: (argv: string[]) => Promise<void>): void {
  runCli(
    name,
    async (argv) => {
      await main(argv);
      return 0;
    },
    { exit: true },
  );
}
