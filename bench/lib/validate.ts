// A check that a results JSON has every field docs/benchmarks.md is made from, with the right
// types (the schemas in types.ts). run.ts applies it before writing and to a --report input; the
// smoke test applies it to a `--smoke` run's output.
import { assertMatches, problemsWith } from './common';
import { BenchResults } from './types';

/** Every problem with a results document (`$.path: message`); empty when it matches the schema. */
export function validateResults(value: unknown): string[] {
  return problemsWith(BenchResults, value);
}

/** Narrows after validation; throws listing the first problems. */
export function assertResults(value: unknown): asserts value is BenchResults {
  assertMatches(BenchResults, value, 'bench results');
}
