// What the benches' results documents share, as zod schemas and helpers: the machine a run ran on,
// the fields a bench:checkout or bench:orders document starts with, a latency distribution and how
// one is made, a load average over a measured span, and the check of a document against its
// schema. Only zod and node:path here: the reports and the smoke tests import it without the stack.
import { resolve } from 'node:path';
import { z } from 'zod';

// Not @shop/stack's REPO_ROOT: importing a report (the smoke tests do) should not load the stack.
export const REPO_ROOT = resolve(__dirname, '..', '..');

const num = z.number();

export const RunMode = z.enum(['smoke', 'quick', 'full']);
export type RunMode = z.infer<typeof RunMode>;

/** The machine a run ran on. */
export const machineSchema = z.object({
  cpus: num,
  cpuModel: z.string(),
  memoryGb: num,
  node: z.string(),
  platform: z.string(),
  /** 1-minute load average when the run started and ended: other work on the machine shows here. */
  loadAverage: z.object({ start: num, end: num }),
});
export type Machine = z.infer<typeof machineSchema>;

/**
 * The fields of a bench:checkout or bench:orders results document after its `kind`: the run's
 * mode, its command line's arguments after `npm run bench:<name> --`, when it ran and on what.
 */
export const runFields = {
  schema: z.literal(1),
  mode: RunMode,
  args: z.array(z.string()),
  startedAt: z.string(),
  finishedAt: z.string(),
  durationS: num,
  machine: machineSchema,
};

/** The 1-minute load average over a measured span: at its start and its end, and its mean sampled every second meanwhile. */
export const LoadAverageDuring = z.object({ start: num, end: num, mean: num });
export type LoadAverageDuring = z.infer<typeof LoadAverageDuring>;

/** A latency distribution in milliseconds (nearest-rank percentiles); NaN-free: empty is count 0 with nulls. */
export const Latency = z.object({
  count: num,
  p50: num.nullable(),
  p95: num.nullable(),
  p99: num.nullable(),
  max: num.nullable(),
  mean: num.nullable(),
});
export type Latency = z.infer<typeof Latency>;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

/** Nearest-rank percentiles of `values` (ms), rounded to 0.1 ms. */
export function summarise(values: number[]): Latency {
  if (values.length === 0) return { count: 0, p50: null, p95: null, p99: null, max: null, mean: null };
  const sorted = [...values].sort((a, b) => a - b);
  const round = (x: number) => Math.round(x * 10) / 10;
  return {
    count: sorted.length,
    p50: round(percentile(sorted, 50)),
    p95: round(percentile(sorted, 95)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.at(-1) as number),
    mean: round(sorted.reduce((s, x) => s + x, 0) / sorted.length),
  };
}

/** Every problem with `value` as `schema` sees it (`$.path: message`); empty when it matches. */
export function problemsWith(schema: z.ZodType, value: unknown): string[] {
  const parsed = schema.safeParse(value);
  if (parsed.success) return [];
  return parsed.error.issues.map(
    (issue) => `$${issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')}: ${issue.message}`,
  );
}

/** Throws when `value` does not match `schema`, listing the first problems under `<what> are incomplete`. */
export function assertMatches<S extends z.ZodType>(schema: S, value: unknown, what: string): asserts value is z.output<S> {
  const problems = problemsWith(schema, value);
  if (problems.length > 0)
    throw new Error(`${what} are incomplete (${problems.length} problem(s)):\n  ${problems.slice(0, 20).join('\n  ')}`);
}
