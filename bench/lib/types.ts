// The shape of bench/results/<timestamp>.json. docs/benchmarks.md is generated from it alone.
import type { WorkloadName } from './workloads';

export type PhaseName = 'off' | 'on' | 'delay';
export type CacheState = 'n/a' | 'cold' | 'warm';

/** One autocannon run against one gateway. */
export interface RoundResult {
  durationS: number;
  /** Responses received within the round. */
  requests: number;
  /** Requests sent (a few are still in flight when the round ends; the gateway finishes them). */
  sent: number;
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  /** Connection errors and timeouts. */
  errors: number;
  non2xx: number;
  /** 2xx responses whose body carries GraphQL `errors`. */
  graphqlErrors: number;
}

export interface StaleCheck {
  /** Reads made right after a write through the same gateway. */
  checks: number;
  stale: number;
  example?: string;
}

/** The first query after a flush: what a cold cache costs. */
export interface ColdFirst {
  latencyMs: number;
  subgraphRequests: number;
  representations: number;
  redisCommands: number | null;
}

export interface GatewayResult {
  gateway: string;
  kind: 'ours' | 'plain' | 'hive';
  label: string;
  caches: string;
  rounds: RoundResult[];
  /** Medians over the rounds. */
  median: { rps: number; p50: number; p95: number; p99: number };
  /** Client requests sent over the rounds (load generator and staleness checker): the "per query" denominator. */
  requests: number;
  errors: number;
  non2xx: number;
  graphqlErrors: number;
  /** Counted at the bench proxy in front of every subgraph: the same method for all gateways. */
  subgraphRequestsPerQuery: number;
  representationsPerQuery: number;
  /**
   * Ours only, from its own /metrics: the same two numbers as a cross-check, and its cache calls
   * that gave up (CACHE_TIMEOUT_MS) and were answered without the cache, per query.
   */
  reportedByGateway: { subgraphRequestsPerQuery: number; representationsPerQuery: number; cacheErrorsPerQuery: number } | null;
  /** Commands the bench's Redis executed per client query (null without Redis, or for a gateway without caches). */
  redisCommandsPerQuery: number | null;
  redisCommandsByName: Record<string, number> | null;
  /**
   * Gateway process CPU (user + system) per request sent, the work left in flight at the end of a
   * round included; and its share of one core during the rounds (below ~90%: something else limits).
   */
  cpuMsPerRequest: number | null;
  cpuBusyPct: number | null;
  /**
   * CPU per query of everything on the other cores: the subgraphs of the phase's set, the proxy
   * and Redis; and the load generator (this process). Shows when the gateway is not the bottleneck.
   */
  downstreamCpuMsPerQuery: number | null;
  loadGeneratorCpuMsPerQuery: number;
  /** Peak resident set size during the cell (warm-up included), MB. */
  peakRssMb: number | null;
  golden: { before: GoldenOutcome; after: GoldenOutcome | null };
  stale: StaleCheck | null;
  coldFirst: ColdFirst | null;
}

export type GoldenOutcome = { pass: boolean; reference: boolean; difference?: string };

export interface CellResult {
  id: string;
  phase: PhaseName;
  workload: WorkloadName;
  state: CacheState;
  delayMs: number;
  connections: number;
  gateways: GatewayResult[];
}

export interface Ratio {
  cell: string;
  ours: string;
  peer: string;
  rps: number;
  p99: number;
}

export interface Goal {
  name: string;
  target: string;
  measured: string;
  met: boolean | null;
  /** Present when the goal was missed and the run was asked to profile (--profile), or always with --profile-all. */
  profile?: ProfileSummary;
}

export interface ProfileFrame {
  function: string;
  location: string;
  selfPct: number;
}

export interface ProfileSummary {
  cell: string;
  gateway: string;
  durationS: number;
  /** Requests/s the profiled process reached under the profiler. */
  rps: number;
  /** True when only samples of the measured load were counted (start-up and warm-up excluded). */
  windowed: boolean;
  topFrames: ProfileFrame[];
  byPackage: Array<{ package: string; selfPct: number }>;
  file: string;
}

export interface NPlusOneRow {
  size: number;
  dataloader: boolean;
  storeRoundTrips: number;
  byService: Record<string, number>;
  subgraphRequests: number;
  representations: number;
  products: number;
  errors: number;
  ms: number;
}

export interface BenchResults {
  schema: 1;
  mode: 'smoke' | 'quick' | 'full';
  startedAt: string;
  finishedAt: string;
  durationS: number;
  machine: {
    cpus: number;
    cpuModel: string;
    memoryGb: number;
    node: string;
    platform: string;
    pinning: { gateway: string; rest: string } | null;
    /** 1-minute load average when the run started and ended: other work on the machine shows here. */
    loadAverage: { start: number; end: number };
  };
  settings: {
    warmupS: number;
    roundS: number;
    rounds: number;
    coldRoundS: number;
    delayMs: number;
    redis: string;
    seed: string;
    deepQuery: string;
  };
  gateways: Record<string, { kind: string; label: string; caches: string; version: string }>;
  cells: CellResult[];
  ratios: Ratio[];
  goals: Goal[];
  nplus1: NPlusOneRow[];
  notes: string[];
}
