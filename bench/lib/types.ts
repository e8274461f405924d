// The shape of bench/results/<timestamp>.json, as zod schemas: docs/benchmarks.md is generated from
// a results file alone, so run.ts validates what it writes (and --report what it reads) against
// them; the TypeScript types are inferred from the same schemas.
import { z } from 'zod';
import { RunMode, machineSchema } from './common';

const num = z.number();
export const WorkloadName = z.enum(['deep', 'small', 'varied', 'write']);
export type WorkloadName = z.infer<typeof WorkloadName>;
export const PhaseName = z.enum(['off', 'on', 'delay']);
export type PhaseName = z.infer<typeof PhaseName>;
export const CacheState = z.enum(['n/a', 'cold', 'warm']);
export type CacheState = z.infer<typeof CacheState>;

/** One autocannon run against one gateway. */
const RoundResult = z.object({
  durationS: num,
  /** Responses received within the round. */
  requests: num,
  /** Requests sent (a few are still in flight when the round ends; the gateway finishes them). */
  sent: num,
  rps: num,
  p50: num,
  p95: num,
  p99: num,
  max: num,
  /** Connection errors and timeouts. */
  errors: num,
  non2xx: num,
  /** 2xx responses whose body carries GraphQL `errors`. */
  graphqlErrors: num,
});
export type RoundResult = z.infer<typeof RoundResult>;

const StaleCheck = z.object({
  /** Reads made right after a write through the same gateway. */
  checks: num,
  stale: num,
  example: z.string().optional(),
});
export type StaleCheck = z.infer<typeof StaleCheck>;

/** The first query after a flush: what a cold cache costs. */
const ColdFirst = z.object({
  latencyMs: num,
  subgraphRequests: num,
  representations: num,
  redisCommands: num.nullable(),
});
export type ColdFirst = z.infer<typeof ColdFirst>;

const GoldenOutcome = z.object({ pass: z.boolean(), reference: z.boolean(), difference: z.string().optional() });
export type GoldenOutcome = z.infer<typeof GoldenOutcome>;

const GatewayResult = z.object({
  gateway: z.string(),
  kind: z.enum(['ours', 'plain', 'hive']),
  label: z.string(),
  caches: z.string(),
  rounds: z.array(RoundResult).nonempty(),
  /** Medians over the rounds. */
  median: z.object({ rps: num, p50: num, p95: num, p99: num }),
  /** Client requests sent over the rounds (load generator and staleness checker): the "per query" denominator. */
  requests: num,
  errors: num,
  non2xx: num,
  graphqlErrors: num,
  /** Counted at the bench proxy in front of every subgraph: the same method for all gateways. */
  subgraphRequestsPerQuery: num,
  representationsPerQuery: num,
  /**
   * Ours only, from its own /metrics: the same two numbers as a cross-check, and its cache calls
   * that gave up (CACHE_TIMEOUT_MS) and were answered without the cache, per query.
   */
  reportedByGateway: z.object({ subgraphRequestsPerQuery: num, representationsPerQuery: num, cacheErrorsPerQuery: num }).nullable(),
  /** Commands the bench's Redis executed per client query (null without Redis, or for a gateway without caches). */
  redisCommandsPerQuery: num.nullable(),
  redisCommandsByName: z.record(z.string(), num).nullable(),
  /**
   * Gateway process CPU (user + system) per request sent, the work left in flight at the end of a
   * round included; and its share of one core during the rounds (below ~90%: something else limits).
   */
  cpuMsPerRequest: num.nullable(),
  cpuBusyPct: num.nullable(),
  /**
   * CPU per query of everything on the other cores: the subgraphs of the phase's set, the proxy
   * and Redis; and the load generator (this process). Shows when the gateway is not the bottleneck.
   */
  downstreamCpuMsPerQuery: num.nullable(),
  /** The same per process: each subgraph by name, `proxy` and `redis`. Absent from runs before it was measured. */
  downstreamCpuMsPerQueryBy: z.record(z.string(), num).nullable().optional(),
  loadGeneratorCpuMsPerQuery: num,
  /** Peak resident set size during the cell (warm-up included), MB. */
  peakRssMb: num.nullable(),
  golden: z.object({ before: GoldenOutcome, after: GoldenOutcome.nullable() }),
  stale: StaleCheck.nullable(),
  coldFirst: ColdFirst.nullable(),
});
export type GatewayResult = z.infer<typeof GatewayResult>;

const CellResult = z.object({
  id: z.string(),
  phase: PhaseName,
  workload: WorkloadName,
  state: CacheState,
  delayMs: num,
  connections: num,
  gateways: z.array(GatewayResult).nonempty(),
});
export type CellResult = z.infer<typeof CellResult>;

const Ratio = z.object({ cell: z.string(), ours: z.string(), peer: z.string(), rps: num, p99: num });
export type Ratio = z.infer<typeof Ratio>;

const ProfileFrame = z.object({ function: z.string(), location: z.string(), selfPct: num });
export type ProfileFrame = z.infer<typeof ProfileFrame>;

const ProfileSummary = z.object({
  cell: z.string(),
  gateway: z.string(),
  durationS: num,
  /** Requests/s the profiled process reached under the profiler. */
  rps: num,
  /** True when only samples of the measured load were counted (start-up and warm-up excluded). */
  windowed: z.boolean(),
  topFrames: z.array(ProfileFrame),
  byPackage: z.array(z.object({ package: z.string(), selfPct: num })),
  file: z.string(),
});
export type ProfileSummary = z.infer<typeof ProfileSummary>;

const Goal = z.object({
  name: z.string(),
  target: z.string(),
  measured: z.string(),
  met: z.boolean().nullable(),
  /** Present when the goal was missed and the run was asked to profile (--profile), or always with --profile-all. */
  profile: ProfileSummary.optional(),
});
export type Goal = z.infer<typeof Goal>;

const NPlusOneRow = z.object({
  size: num,
  dataloader: z.boolean(),
  storeRoundTrips: num,
  byService: z.record(z.string(), num),
  subgraphRequests: num,
  representations: num,
  products: num,
  errors: num,
  ms: num,
});
export type NPlusOneRow = z.infer<typeof NPlusOneRow>;

export const BenchResults = z.object({
  schema: z.literal(1),
  mode: RunMode,
  startedAt: z.string(),
  finishedAt: z.string(),
  durationS: num,
  machine: machineSchema.extend({ pinning: z.object({ gateway: z.string(), rest: z.string() }).nullable() }),
  settings: z.object({
    warmupS: num,
    roundS: num,
    rounds: num,
    coldRoundS: num,
    delayMs: num,
    redis: z.string(),
    seed: z.string(),
    deepQuery: z.string(),
  }),
  gateways: z.record(z.string(), z.object({ kind: z.string(), label: z.string(), caches: z.string(), version: z.string() })),
  cells: z.array(CellResult).nonempty(),
  ratios: z.array(Ratio),
  goals: z.array(Goal).nonempty(),
  nplus1: z.array(NPlusOneRow).nonempty(),
  notes: z.array(z.string()),
});
export type BenchResults = z.infer<typeof BenchResults>;
