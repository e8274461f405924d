// Command-line options and the run profiles (which cells, how long).
import { resolve } from 'node:path';
import { z } from 'zod';
import { UsageError, parseCli } from '../../scripts/lib/cli';
import { GATEWAYS, type GatewaySpec } from './gateways';
import type { CacheState, PhaseName } from './types';
import type { WorkloadName } from './workloads';

export type Mode = 'smoke' | 'quick' | 'full';

export interface CellSpec {
  workload: WorkloadName;
  state: CacheState;
  /** The first is the golden reference: always one of ours. */
  gateways: GatewaySpec[];
  /** Concurrent connections, when not the workload's own (connectionsFor): 1 is the one-client latency cell. */
  connections?: number;
}

export interface PhaseSpec {
  name: PhaseName;
  title: string;
  /** A: subgraphs with their hot caches off; B: with them on. */
  subgraphSet: 'A' | 'B';
  delayMs: number;
  gateways: GatewaySpec[];
  cells: CellSpec[];
}

export interface Timing {
  warmupS: number;
  roundS: number;
  rounds: number;
  coldRoundS: number;
  profileS: number;
}

export interface Options {
  mode: Mode;
  timing: Timing;
  phases: PhaseSpec[];
  delayMs: number;
  /** Profile our gateway under the workload of each missed goal, of every goal, or not at all. */
  profile: 'none' | 'missed' | 'all';
  /** Where every subgraph process writes its CPU profile (node --cpu-prof) when it stops, if set. */
  profileSubgraphs: string | undefined;
  writeDocs: boolean;
  out: string | undefined;
  /** Regenerate docs/benchmarks.md from this results file and exit. */
  report: string | undefined;
}

const USAGE = `usage: npm run bench -- [--quick | --smoke | --full] [--profile | --profile-all] [--delay <ms> | --no-delay] [--no-docs] [--out <file>] [--report <results.json>]
  (default)      the full run, under 20 minutes: every workload, caches off / cold / warm, and a
                 simulated subgraph latency phase (SUBGRAPH_DELAY_MS, default 20)
  --quick        a smoke run under 3 minutes: fewer cells, shorter rounds
  --smoke        the harness end to end in about a minute (numbers are noise): for a test
  --profile      for every goal missed, profile our gateway under that workload (node --cpu-prof)
  --profile-all  the same for every goal, met or not
  --profile-subgraphs <dir>  run every subgraph under node --cpu-prof, writing its profile into <dir> when it stops
  --delay <ms>   the latency phase's delay per subgraph request (also SUBGRAPH_DELAY_MS); --quick runs it only when set
  --no-delay     no latency phase
  --no-docs      write the results JSON only, not docs/benchmarks.md and its chart
  --out <file>   where to write the results JSON (default bench/results/<timestamp>.json)
  --only <ids>   only these cells, comma-separated (e.g. off/deep,on/deep/warm); implies --no-docs
  --report <f>   regenerate docs/benchmarks.md from an existing results JSON and exit`;

const TIMING: Record<Mode, Timing> = {
  smoke: { warmupS: 0.5, roundS: 1, rounds: 1, coldRoundS: 1, profileS: 3 },
  quick: { warmupS: 1, roundS: 1.5, rounds: 2, coldRoundS: 1.5, profileS: 5 },
  full: { warmupS: 3, roundS: 5, rounds: 3, coldRoundS: 3, profileS: 10 },
};

const { oursOff, oursTraced, oursEntity, oursAll, plain, hive, hiveRust, hiveCached } = GATEWAYS;

function phasesFor(mode: Mode, delayMs: number): PhaseSpec[] {
  const offWorkloads: WorkloadName[] = mode === 'full' ? ['deep', 'small', 'varied', 'write'] : ['deep', 'small'];
  const off: PhaseSpec = {
    name: 'off',
    title: 'caches off',
    subgraphSet: 'A',
    delayMs: 0,
    gateways: [oursOff, oursTraced, plain, hive, hiveRust],
    // The write mix's writes need a verified caller (#14): only ours verifies tokens and signs them
    // through to the subgraphs, so it is measured alone there.
    cells: [
      ...offWorkloads.map((workload) => ({
        workload,
        state: 'n/a' as const,
        // The small query beside ours with tracing on: what OpenTelemetry costs where a request
        // is cheapest and the per-request spans weigh most.
        gateways:
          workload === 'write'
            ? [oursOff]
            : workload === 'small'
              ? [oursOff, oursTraced, plain, hive, hiveRust]
              : [oursOff, plain, hive, hiveRust],
      })),
      // One client alone, one deep query at a time: the latency a frontend feels, no queueing.
      { workload: 'deep', state: 'n/a', connections: 1, gateways: [oursOff, plain, hive, hiveRust] },
    ],
  };
  // The deep query's root lists carry no cache hint, so no whole-response cache may keep it: its
  // warm numbers are the entity cache's. ours-all (entity + response cache) is measured beside
  // ours-entity in the full run; the other workloads use ours-all.
  const onCells: CellSpec[] =
    mode === 'full'
      ? [
          { workload: 'deep', state: 'warm', gateways: [oursEntity, oursAll, plain, hiveCached] },
          { workload: 'deep', state: 'cold', gateways: [oursEntity, oursAll, hiveCached] },
          { workload: 'small', state: 'warm', gateways: [oursAll, plain, hiveCached] },
          { workload: 'varied', state: 'warm', gateways: [oursAll, plain, hiveCached] },
          { workload: 'varied', state: 'cold', gateways: [oursAll, hiveCached] },
          { workload: 'write', state: 'warm', gateways: [oursAll] },
        ]
      : mode === 'quick'
        ? [
            { workload: 'deep', state: 'warm', gateways: [oursEntity, plain, hiveCached] },
            { workload: 'deep', state: 'cold', gateways: [oursEntity, hiveCached] },
            { workload: 'varied', state: 'warm', gateways: [oursAll, plain, hiveCached] },
            { workload: 'write', state: 'warm', gateways: [oursAll] },
          ]
        : [
            { workload: 'deep', state: 'warm', gateways: [oursEntity, plain, hiveCached] },
            { workload: 'write', state: 'warm', gateways: [oursAll] },
          ];
  const used = new Set(onCells.flatMap((c) => c.gateways.map((g) => g.id)));
  const on: PhaseSpec = {
    name: 'on',
    title: 'caches on',
    subgraphSet: 'B',
    delayMs: 0,
    gateways: [oursEntity, oursAll, plain, hiveCached].filter((g) => used.has(g.id)),
    cells: onCells,
  };
  const phases = [off, on];
  if (delayMs > 0) {
    phases.push({
      name: 'delay',
      title: `subgraph latency ${delayMs} ms`,
      subgraphSet: 'A',
      delayMs,
      gateways: [oursOff, oursEntity, plain, hive],
      cells: [{ workload: 'deep', state: 'warm', gateways: [oursOff, oursEntity, plain, hive] }],
    });
  }
  return phases;
}

const delayMs = z.string().regex(/^\d+$/, 'must be a whole number of milliseconds').transform(Number);

/** A whole number of milliseconds from the command line or the environment, or a UsageError naming where it came from. */
function parseDelay(value: string, source: string): number {
  const parsed = delayMs.safeParse(value);
  if (!parsed.success) throw new UsageError(`${source} must be a whole number of milliseconds; received ${JSON.stringify(value)}`);
  return parsed.data;
}

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv): Options {
  const { values } = parseCli(USAGE, {
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      smoke: { type: 'boolean', default: false },
      full: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      'profile-all': { type: 'boolean', default: false },
      'profile-subgraphs': { type: 'string' },
      'no-docs': { type: 'boolean', default: false },
      'no-delay': { type: 'boolean', default: false },
      delay: { type: 'string' },
      out: { type: 'string' },
      report: { type: 'string' },
      only: { type: 'string' },
    },
  });
  const modes = (['quick', 'smoke', 'full'] as const).filter((m) => values[m]);
  if (modes.length > 1) throw new UsageError(`choose one of --${modes.join(', --')}\n${USAGE}`);
  const mode: Mode = modes[0] ?? 'full';
  const profile: Options['profile'] = values['profile-all'] ? 'all' : values.profile ? 'missed' : 'none';
  const only = values.only?.split(',').map((id) => id.trim());
  const envDelay = env.SUBGRAPH_DELAY_MS;
  const delay =
    values.delay !== undefined
      ? parseDelay(values.delay, '--delay')
      : envDelay !== undefined && envDelay !== ''
        ? parseDelay(envDelay, 'SUBGRAPH_DELAY_MS')
        : undefined;
  const delayMs = values['no-delay'] ? 0 : (delay ?? (mode === 'full' || only?.some((id) => id.startsWith('delay/')) ? 20 : 0));
  let phases = phasesFor(mode, delayMs);
  if (only) {
    const wanted = new Set(only);
    phases = phases
      .map((phase) => ({ ...phase, cells: phase.cells.filter((c) => wanted.has(cellId(phase, c))) }))
      .filter((phase) => phase.cells.length > 0);
    if (phases.length === 0)
      throw new UsageError(
        `--only matched no cell of the ${mode} run; cells: ${phasesFor(mode, delayMs)
          .flatMap((p) => p.cells.map((c) => cellId(p, c)))
          .join(', ')}`,
      );
  }
  return {
    mode,
    timing: TIMING[mode],
    phases,
    delayMs,
    profile,
    profileSubgraphs: values['profile-subgraphs'] ? resolve(values['profile-subgraphs']) : undefined,
    writeDocs: !values['no-docs'] && !only,
    out: values.out,
    report: values.report,
  };
}

/** A cell's id in results and on the command line: phase/workload[/state]. */
export function cellId(phase: Pick<PhaseSpec, 'name'>, cell: Pick<CellSpec, 'workload' | 'state' | 'connections'>): string {
  return `${phase.name}/${cell.workload}${cell.state === 'n/a' ? '' : `/${cell.state}`}${cell.connections === undefined ? '' : `/${cell.connections}c`}`;
}
