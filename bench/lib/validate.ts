// A check that a results JSON has every field docs/benchmarks.md is made from, with the right
// types. run.ts applies it before writing; a smoke test can apply it to a `--smoke` run's output.
import type { BenchResults } from './types';

type Check = (value: unknown, path: string, problems: string[]) => void;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const num: Check = (v, path, problems) => {
  if (typeof v !== 'number' || Number.isNaN(v)) problems.push(`${path}: expected a number, received ${JSON.stringify(v)}`);
};
const str: Check = (v, path, problems) => {
  if (typeof v !== 'string') problems.push(`${path}: expected a string, received ${JSON.stringify(v)}`);
};
const bool: Check = (v, path, problems) => {
  if (typeof v !== 'boolean') problems.push(`${path}: expected a boolean, received ${JSON.stringify(v)}`);
};
const nullable =
  (check: Check): Check =>
  (v, path, problems) => {
    if (v !== null) check(v, path, problems);
  };
const oneOf =
  (...values: unknown[]): Check =>
  (v, path, problems) => {
    if (!values.includes(v)) problems.push(`${path}: expected one of ${values.map((x) => JSON.stringify(x)).join(', ')}, received ${JSON.stringify(v)}`);
  };
const shape =
  (fields: Record<string, Check>): Check =>
  (v, path, problems) => {
    if (!isObject(v)) {
      problems.push(`${path}: expected an object, received ${JSON.stringify(v)}`);
      return;
    }
    for (const [key, check] of Object.entries(fields)) {
      if (!(key in v)) problems.push(`${path}.${key}: missing`);
      else check(v[key], `${path}.${key}`, problems);
    }
  };
const list =
  (item: Check, { nonEmpty = false } = {}): Check =>
  (v, path, problems) => {
    if (!Array.isArray(v)) {
      problems.push(`${path}: expected an array, received ${JSON.stringify(v)}`);
      return;
    }
    if (nonEmpty && v.length === 0) problems.push(`${path}: empty`);
    v.forEach((x, i) => item(x, `${path}[${i}]`, problems));
  };
const record =
  (item: Check): Check =>
  (v, path, problems) => {
    if (!isObject(v)) {
      problems.push(`${path}: expected an object, received ${JSON.stringify(v)}`);
      return;
    }
    for (const [key, x] of Object.entries(v)) item(x, `${path}.${key}`, problems);
  };

const round = shape({ durationS: num, requests: num, sent: num, rps: num, p50: num, p95: num, p99: num, max: num, errors: num, non2xx: num, graphqlErrors: num });
const golden = shape({ pass: bool, reference: bool });
const gateway = shape({
  gateway: str,
  kind: oneOf('ours', 'plain', 'hive'),
  label: str,
  caches: str,
  rounds: list(round, { nonEmpty: true }),
  median: shape({ rps: num, p50: num, p95: num, p99: num }),
  requests: num,
  errors: num,
  non2xx: num,
  graphqlErrors: num,
  subgraphRequestsPerQuery: num,
  representationsPerQuery: num,
  reportedByGateway: nullable(shape({ subgraphRequestsPerQuery: num, representationsPerQuery: num, cacheErrorsPerQuery: num })),
  redisCommandsPerQuery: nullable(num),
  redisCommandsByName: nullable(record(num)),
  cpuMsPerRequest: nullable(num),
  cpuBusyPct: nullable(num),
  downstreamCpuMsPerQuery: nullable(num),
  loadGeneratorCpuMsPerQuery: num,
  peakRssMb: nullable(num),
  golden: shape({ before: golden, after: nullable(golden) }),
  stale: nullable(shape({ checks: num, stale: num })),
  coldFirst: nullable(shape({ latencyMs: num, subgraphRequests: num, representations: num, redisCommands: nullable(num) })),
});
const cell = shape({
  id: str,
  phase: oneOf('off', 'on', 'delay'),
  workload: oneOf('deep', 'small', 'varied', 'write'),
  state: oneOf('n/a', 'cold', 'warm'),
  delayMs: num,
  connections: num,
  gateways: list(gateway, { nonEmpty: true }),
});
const results = shape({
  schema: oneOf(1),
  mode: oneOf('smoke', 'quick', 'full'),
  startedAt: str,
  finishedAt: str,
  durationS: num,
  machine: shape({
    cpus: num,
    cpuModel: str,
    memoryGb: num,
    node: str,
    platform: str,
    pinning: nullable(shape({ gateway: str, rest: str })),
    loadAverage: shape({ start: num, end: num }),
  }),
  settings: shape({ warmupS: num, roundS: num, rounds: num, coldRoundS: num, delayMs: num, redis: str, seed: str, deepQuery: str }),
  gateways: record(shape({ kind: str, label: str, caches: str, version: str })),
  cells: list(cell, { nonEmpty: true }),
  ratios: list(shape({ cell: str, ours: str, peer: str, rps: num, p99: num })),
  goals: list(shape({ name: str, target: str, measured: str, met: nullable(bool) }), { nonEmpty: true }),
  nplus1: list(shape({ size: num, dataloader: bool, storeRoundTrips: num, byService: record(num), subgraphRequests: num, representations: num, products: num, errors: num, ms: num }), { nonEmpty: true }),
  notes: list(str),
});

/** Every problem with a results document; empty when it has every field with the right type. */
export function validateResults(value: unknown): string[] {
  const problems: string[] = [];
  results(value, '$', problems);
  return problems;
}

/** Narrows after validation; throws listing the first problems. */
export function assertResults(value: unknown): asserts value is BenchResults {
  const problems = validateResults(value);
  if (problems.length > 0) throw new Error(`bench results are incomplete (${problems.length} problem(s)):\n  ${problems.slice(0, 20).join('\n  ')}`);
}
