// One cell of the bench: one workload, one cache state, several gateways driven in turn
// (A B C A B C ...) over the rounds; medians per gateway.
import { sumMetric } from './prometheus';
import { cpuSeconds, peakRssMb, resetPeakRss } from './procs';
import { type RunningGateway } from './gateways';
import { goldenDiff, ask } from './golden';
import { checkStaleness, drive } from './load';
import { type CellSpec, type Options, type PhaseSpec, cellId } from './options';
import { ownCpuSeconds } from './sampling';
import type { BenchRedis } from './redis';
import type { Proxy, SubgraphSetName } from './stack';
import type { CellResult, ColdFirst, GatewayResult, GoldenOutcome, RoundResult, StaleCheck } from './types';
import { type CheckTarget, connectionsFor, goldenRequests, loadRequests, type WorkloadData, writeSlice } from './workloads';

export interface CellContext {
  options: Options;
  proxy: Proxy;
  /** The processes on the other cores that serve a subgraph set, by name: its subgraphs, the proxy, Redis. */
  downstream: (set: SubgraphSetName) => Array<{ name: string; pid: number }>;
  redis: BenchRedis | undefined;
  data: WorkloadData;
  checks: CheckTarget[];
  log: (line: string) => void;
}

interface Snapshot {
  at: number;
  cpu: number | undefined;
  /** The gateway's CPU when the load stopped (before the trailing work): for its busy share. */
  cpuAtEnd: number | undefined;
  downstreamCpu: number | undefined;
  /** Each downstream process's CPU (seconds), by name; a process that could not be read is absent. */
  downstreamBy: Record<string, number>;
  driverCpu: number;
  subgraph: { requests: number; representations: number };
  redis: Record<string, number> | undefined;
  reported: { requests: number; representations: number; cacheErrors: number } | undefined;
}

async function reportedByOurs(gateway: RunningGateway): Promise<Snapshot['reported']> {
  if (!gateway.metricsUrl) return undefined;
  const text = await (await fetch(gateway.metricsUrl)).text();
  return {
    requests: sumMetric(text, 'gateway_subgraph_requests_total'),
    representations: sumMetric(text, 'gateway_entity_representations_total'),
    cacheErrors: sumMetric(text, 'cache_errors_total'),
  };
}

function downstreamCpu(set: SubgraphSetName, ctx: CellContext): { total: number | undefined; by: Record<string, number> } {
  let total: number | undefined = 0;
  const by: Record<string, number> = {};
  for (const { name, pid } of ctx.downstream(set)) {
    const cpu = cpuSeconds(pid);
    if (cpu === undefined) total = undefined;
    else {
      by[name] = cpu;
      if (total !== undefined) total += cpu;
    }
  }
  return { total, by };
}

/** Counters around a measured run; the gateway's CPU is read closest to the run itself. */
async function snapshotBefore(gateway: RunningGateway, set: SubgraphSetName, ctx: CellContext): Promise<Snapshot> {
  const reported = await reportedByOurs(gateway);
  const subgraph = await ctx.proxy.counts(set);
  const redis = await ctx.redis?.commands();
  const cpu = cpuSeconds(gateway.pid);
  const down = downstreamCpu(set, ctx);
  return {
    at: performance.now(),
    cpu,
    cpuAtEnd: cpu,
    downstreamCpu: down.total,
    downstreamBy: down.by,
    driverCpu: ownCpuSeconds(),
    subgraph,
    redis,
    reported,
  };
}

/** Taken once the gateway is quiet again, so the work of requests still in flight at the end is counted. */
async function snapshotAfter(
  gateway: RunningGateway,
  set: SubgraphSetName,
  ctx: CellContext,
  end: { at: number; cpu: number | undefined },
): Promise<Snapshot> {
  const cpu = cpuSeconds(gateway.pid);
  const down = downstreamCpu(set, ctx);
  const snapshot = { at: end.at, cpu, cpuAtEnd: end.cpu, downstreamCpu: down.total, downstreamBy: down.by, driverCpu: ownCpuSeconds() };
  const subgraph = await ctx.proxy.counts(set);
  const redis = await ctx.redis?.commands();
  const reported = await reportedByOurs(gateway);
  return { ...snapshot, subgraph, redis, reported };
}

/**
 * Waits until the gateway has finished what the load generator left in flight: no subgraph
 * request, no Redis command and (almost) no gateway CPU for 200 ms. Without it, one gateway's
 * trailing work would be counted in the next one's round.
 */
async function waitQuiet(gateway: RunningGateway, set: SubgraphSetName, ctx: CellContext): Promise<void> {
  const deadline = Date.now() + 30_000;
  const state = async () => {
    const counts = await ctx.proxy.counts(set);
    const redis = await ctx.redis?.commands();
    return { key: `${counts.requests}:${redis ? sum(Object.values(redis)) : 0}`, cpu: cpuSeconds(gateway.pid) ?? 0 };
  };
  let last = await state();
  let stable = 0;
  while (stable < 2 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const now = await state();
    stable = now.key === last.key && now.cpu - last.cpu <= 0.011 ? stable + 1 : 0;
    last = now;
  }
  if (stable < 2) ctx.log(`  ${gateway.spec.id} still busy 30 s after the load stopped; counting anyway`);
}

function redisDelta(
  before: Record<string, number> | undefined,
  after: Record<string, number> | undefined,
): Record<string, number> | undefined {
  if (!before || !after) return undefined;
  const out: Record<string, number> = {};
  for (const [name, calls] of Object.entries(after)) {
    const d = calls - (before[name] ?? 0);
    if (d > 0) out[name] = d;
  }
  return out;
}

const sum = (values: Iterable<number>) => {
  let total = 0;
  for (const v of values) total += v;
  return total;
};

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return 0;
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

const r2 = (n: number) => Math.round(n * 100) / 100;

/** Per gateway, what the rounds added up to. */
class Tally {
  rounds: RoundResult[] = [];
  clientRequests = 0;
  subgraphRequests = 0;
  representations = 0;
  reported: { requests: number; representations: number; cacheErrors: number } | undefined;
  redis: Record<string, number> | undefined;
  cpu: number | undefined = 0;
  cpuInRounds: number | undefined = 0;
  downstreamCpu: number | undefined = 0;
  downstreamBy: Record<string, number> = {};
  driverCpu = 0;
  wall = 0;
  stale: StaleCheck | undefined;
  coldFirst: ColdFirst | undefined;

  add(round: RoundResult, before: Snapshot, after: Snapshot, extraRequests: number) {
    this.rounds.push(round);
    this.clientRequests += round.sent + extraRequests;
    this.subgraphRequests += after.subgraph.requests - before.subgraph.requests;
    this.representations += after.subgraph.representations - before.subgraph.representations;
    if (before.reported && after.reported) {
      this.reported ??= { requests: 0, representations: 0, cacheErrors: 0 };
      this.reported.requests += after.reported.requests - before.reported.requests;
      this.reported.representations += after.reported.representations - before.reported.representations;
      this.reported.cacheErrors += after.reported.cacheErrors - before.reported.cacheErrors;
    }
    const redis = redisDelta(before.redis, after.redis);
    if (redis) {
      this.redis ??= {};
      for (const [name, calls] of Object.entries(redis)) this.redis[name] = (this.redis[name] ?? 0) + calls;
    }
    this.cpu =
      this.cpu !== undefined && before.cpu !== undefined && after.cpu !== undefined ? this.cpu + (after.cpu - before.cpu) : undefined;
    this.cpuInRounds =
      this.cpuInRounds !== undefined && before.cpu !== undefined && after.cpuAtEnd !== undefined
        ? this.cpuInRounds + (after.cpuAtEnd - before.cpu)
        : undefined;
    this.downstreamCpu =
      this.downstreamCpu !== undefined && before.downstreamCpu !== undefined && after.downstreamCpu !== undefined
        ? this.downstreamCpu + (after.downstreamCpu - before.downstreamCpu)
        : undefined;
    for (const [name, cpu] of Object.entries(after.downstreamBy)) {
      const start = before.downstreamBy[name];
      if (start !== undefined) this.downstreamBy[name] = (this.downstreamBy[name] ?? 0) + (cpu - start);
    }
    this.driverCpu += after.driverCpu - before.driverCpu;
    this.wall += (after.at - before.at) / 1000;
  }
}

async function goldenFor(reference: RunningGateway, gateway: RunningGateway, cell: CellSpec, ctx: CellContext): Promise<GoldenOutcome> {
  const requests = goldenRequests(cell.workload, ctx.data);
  if (gateway === reference) {
    for (const request of requests) {
      const answer = await ask(reference.url, request);
      if (answer.errors) return { pass: false, reference: true, difference: `the reference answered with errors (HTTP ${answer.status})` };
    }
    return { pass: true, reference: true };
  }
  const result = await goldenDiff(reference.url, gateway.url, requests);
  return { pass: result.pass, reference: false, ...(result.difference ? { difference: result.difference } : {}) };
}

/** The first query after a flush, alone: its latency and what it cost downstream. */
async function coldFirst(gateway: RunningGateway, cell: CellSpec, phase: PhaseSpec, ctx: CellContext): Promise<ColdFirst> {
  const request = goldenRequests(cell.workload, ctx.data)[0];
  if (!request) throw new Error(`no golden request for ${cell.workload}`);
  await ctx.redis?.flush();
  const before = await snapshotBefore(gateway, phase.subgraphSet, ctx);
  const started = performance.now();
  await ask(gateway.url, request);
  const latencyMs = performance.now() - started;
  const after = await snapshotAfter(gateway, phase.subgraphSet, ctx, { at: performance.now(), cpu: cpuSeconds(gateway.pid) });
  const redis = redisDelta(before.redis, after.redis);
  return {
    latencyMs: Math.round(latencyMs * 10) / 10,
    subgraphRequests: after.subgraph.requests - before.subgraph.requests,
    representations: after.subgraph.representations - before.subgraph.representations,
    redisCommands: redis ? sum(Object.values(redis)) : null,
  };
}

export async function runCell(
  phase: PhaseSpec,
  cell: CellSpec,
  running: Map<string, RunningGateway>,
  ctx: CellContext,
): Promise<CellResult> {
  const { timing } = ctx.options;
  const id = cellId(phase, cell);
  const gateways = cell.gateways.map((spec) => {
    const g = running.get(spec.id);
    if (!g) throw new Error(`cell ${id}: gateway ${spec.id} is not running in phase ${phase.name}`);
    return g;
  });
  const reference = gateways[0] as RunningGateway;
  const connections = cell.connections ?? connectionsFor(cell.workload, phase.delayMs);
  const requestsOf = new Map(
    gateways.map((g, i) => [g, loadRequests(cell.workload, ctx.data, writeSlice(i, ctx.checks[i] as CheckTarget))]),
  );
  const origin = (g: RunningGateway) => g.url.replace(/\/graphql$/, '');
  ctx.log(`cell ${id}: ${gateways.map((g) => g.spec.id).join(', ')} (${connections} connections)`);

  const goldenBefore = new Map<RunningGateway, GoldenOutcome>();
  for (const g of gateways) goldenBefore.set(g, await goldenFor(reference, g, cell, ctx));
  for (const g of gateways) resetPeakRss(g.pid);

  if (cell.state !== 'cold' && timing.warmupS > 0) {
    for (const g of gateways) await drive({ origin: origin(g), requests: requestsOf.get(g) ?? [], connections, durationS: timing.warmupS });
    // Warm-ups may overlap one another's tail; the measured rounds may not.
    for (const g of gateways) await waitQuiet(g, phase.subgraphSet, ctx);
  }

  const tallies = new Map(gateways.map((g) => [g, new Tally()]));
  for (let round = 0; round < timing.rounds; round++) {
    for (const [i, g] of gateways.entries()) {
      const tally = tallies.get(g) as Tally;
      if (cell.state === 'cold') {
        if (round === 0) tally.coldFirst = await coldFirst(g, cell, phase, ctx);
        await ctx.redis?.flush();
      }
      const before = await snapshotBefore(g, phase.subgraphSet, ctx);
      const stop = new AbortController();
      const checker =
        cell.workload === 'write'
          ? checkStaleness(g.url, writeSlice(i, ctx.checks[i] as CheckTarget), ctx.data.tokens, stop.signal)
          : undefined;
      const result = await drive({
        origin: origin(g),
        requests: requestsOf.get(g) ?? [],
        connections,
        durationS: cell.state === 'cold' ? timing.coldRoundS : timing.roundS,
      });
      const end = { at: performance.now(), cpu: cpuSeconds(g.pid) };
      stop.abort();
      const checked = await checker;
      await waitQuiet(g, phase.subgraphSet, ctx);
      const after = await snapshotAfter(g, phase.subgraphSet, ctx, end);
      tally.add(result, before, after, checked?.requests ?? 0);
      if (checked) {
        tally.stale ??= { checks: 0, stale: 0 };
        tally.stale.checks += checked.checks;
        tally.stale.stale += checked.stale;
        if (checked.example && checked.stale > 0) tally.stale.example ??= checked.example;
      }
      ctx.log(
        `  ${g.spec.id.padEnd(12)} round ${round + 1}: ${result.rps} req/s, p99 ${result.p99} ms${result.errors + result.non2xx + result.graphqlErrors > 0 ? `, errors ${result.errors}/${result.non2xx}/${result.graphqlErrors}` : ''}`,
      );
    }
  }

  // After the load, warm caches must still answer as ours does. (Not in the write mix: each
  // gateway wrote its own slice, and the checker already read back every write.)
  const checkAfter = cell.state !== 'cold' && cell.workload !== 'write';
  const results: GatewayResult[] = [];
  for (const g of gateways) {
    const tally = tallies.get(g) as Tally;
    const perQuery = (n: number) => (tally.clientRequests > 0 ? r2(n / tally.clientRequests) : 0);
    const redisTotal = tally.redis ? sum(Object.values(tally.redis)) : undefined;
    results.push({
      gateway: g.spec.id,
      kind: g.spec.kind,
      label: g.spec.label,
      caches: g.spec.caches,
      rounds: tally.rounds,
      median: {
        rps: r2(median(tally.rounds.map((r) => r.rps))),
        p50: r2(median(tally.rounds.map((r) => r.p50))),
        p95: r2(median(tally.rounds.map((r) => r.p95))),
        p99: r2(median(tally.rounds.map((r) => r.p99))),
      },
      requests: tally.clientRequests,
      errors: sum(tally.rounds.map((r) => r.errors)),
      non2xx: sum(tally.rounds.map((r) => r.non2xx)),
      graphqlErrors: sum(tally.rounds.map((r) => r.graphqlErrors)),
      subgraphRequestsPerQuery: perQuery(tally.subgraphRequests),
      representationsPerQuery: perQuery(tally.representations),
      reportedByGateway: tally.reported
        ? {
            subgraphRequestsPerQuery: perQuery(tally.reported.requests),
            representationsPerQuery: perQuery(tally.reported.representations),
            cacheErrorsPerQuery: perQuery(tally.reported.cacheErrors),
          }
        : null,
      redisCommandsPerQuery: redisTotal === undefined ? null : perQuery(redisTotal),
      redisCommandsByName: tally.redis ?? null,
      cpuMsPerRequest: tally.cpu === undefined ? null : r2((tally.cpu * 1000) / Math.max(1, tally.clientRequests)),
      cpuBusyPct: tally.cpuInRounds === undefined || tally.wall === 0 ? null : Math.round((tally.cpuInRounds / tally.wall) * 100),
      downstreamCpuMsPerQuery:
        tally.downstreamCpu === undefined ? null : r2((tally.downstreamCpu * 1000) / Math.max(1, tally.clientRequests)),
      downstreamCpuMsPerQueryBy: Object.fromEntries(
        Object.entries(tally.downstreamBy).map(([name, cpu]) => [name, r2((cpu * 1000) / Math.max(1, tally.clientRequests))]),
      ),
      loadGeneratorCpuMsPerQuery: r2((tally.driverCpu * 1000) / Math.max(1, tally.clientRequests)),
      peakRssMb: ((mb) => (mb === undefined ? null : Math.round(mb)))(peakRssMb(g.pid)),
      golden: { before: goldenBefore.get(g) as GoldenOutcome, after: checkAfter ? await goldenFor(reference, g, cell, ctx) : null },
      stale: tally.stale ?? null,
      coldFirst: tally.coldFirst ?? null,
    });
  }
  return { id, phase: phase.name, workload: cell.workload, state: cell.state, delayMs: phase.delayMs, connections, gateways: results };
}
