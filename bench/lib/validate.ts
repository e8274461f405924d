// A check that a results JSON has every field docs/benchmarks.md is made from, with the right
// types (the schemas in types.ts). run.ts applies it before writing and to a --report input; the
// smoke test applies it to a `--smoke` run's output.
import { BenchResults } from './types';

/** Every problem with a results document (`$.path: message`); empty when it matches the schema. */
export function validateResults(value: unknown): string[] {
  const parsed = BenchResults.safeParse(value);
  if (parsed.success) return [];
  return parsed.error.issues.map(
    (issue) => `$${issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')}: ${issue.message}`,
  );
}

/** Narrows after validation; throws listing the first problems. */
export function assertResults(value: unknown): asserts value is BenchResults {
  const problems = validateResults(value);
  if (problems.length > 0)
    throw new Error(`bench results are incomplete (${problems.length} problem(s)):\n  ${problems.slice(0, 20).join('\n  ')}`);
}
