// The shape of bench/results/orders-<time>.json, as zod schemas: the "Measurements" section of
// docs/sharding.md is generated from one such file alone, so bench/orders.ts validates what it
// writes (and what --report reads) against them; the TypeScript types are inferred from the same
// schemas. Latency distributions are common.ts's (nearest-rank percentiles, ms), as checkout's are.
import { z } from 'zod';
import { Latency, LoadAverageDuring, assertMatches, problemsWith, runFields } from './common';

const num = z.number();

/** What the shards' event stores hold for the cell's orders after it: nothing lost, nothing twice. */
const Checks = z.object({
  /** Commands the writers saw succeed (each appends exactly one event). */
  commandsOk: num,
  /** The cell's events found over every shard. */
  events: num,
  /** Streams (orders) found on more than one shard. */
  streamsOnTwoShards: num,
  /** Streams whose versions are not 1..n without a gap. */
  gappedStreams: num,
  /** Outbox rows of every shard not yet published when the bench looked (a few seconds after the writers stopped). */
  unpublished: num,
  consistent: z.boolean(),
});

/** How a cell's (or the move's) writes went and what they cost, and what the event stores held after them. */
const afterWrites = {
  /** Successful commands by the shard that took them. */
  perShard: z.record(z.string(), num),
  /** The bench process's CPU (user + system) over the cell's wall time: 1 is one core busy all along. */
  benchCpuCores: num,
  /** The whole machine's busy share over the cell (from /proc/stat), 0 to 1; null where unreadable. */
  machineBusy: num.nullable(),
  /** From when the writers started to when they stopped. */
  loadAverage: LoadAverageDuring,
  checks: Checks,
};

export const CellResult = z.object({
  shards: num.int().positive(),
  seconds: num,
  /** Commands that succeeded, and those that failed, by error code. */
  commands: num,
  errors: z.record(z.string(), num),
  /** Successful commands per second over the cell (first start to last end). */
  commandsPerSecond: num,
  ordersPerSecond: num,
  /** One command through ShardedOrders.execute: routing, load, decide, append (ownership check), projection catch-up. */
  latencyMs: Latency,
  byCommand: z.record(z.string(), Latency),
  ...afterWrites,
});
export type CellResult = z.infer<typeof CellResult>;

const Phase = z.object({
  seconds: num,
  commands: num,
  commandsPerSecond: num,
  latencyMs: Latency,
});
export type Phase = z.infer<typeof Phase>;

export const MoveResult = z.object({
  shards: num.int().positive(),
  /** The slots moved, as `orders:reshard` writes them (e.g. 64-127), their source and target. */
  slots: z.string(),
  source: z.string(),
  target: z.string(),
  /** The target's server (host:port), another than the source's. */
  targetServer: z.string(),
  /** Writes before the move started, while it ran (moveSlots' call to its return), and after. */
  before: Phase,
  during: Phase,
  after: Phase,
  /** moveSlots' own report. */
  moveMs: num,
  /** When moveSlots first reported each step (copying, fenced, draining, cleaning, done), ms after it was called. */
  steps: z.record(z.string(), num).optional(),
  fenceMs: num,
  /** Where the (longest) fence's time went, as moveSlots reports it: taking it, draining the outbox, the tail, projecting, the flip. */
  fenceSteps: z.record(z.string(), num).optional(),
  eventsCopied: num,
  mapVersion: num,
  /** Commands on orders in the moving slots that were in flight at some point of the move. */
  movingSlots: z.object({ commands: num, latencyMs: Latency }),
  /** Commands on orders in other slots, in flight at some point of the move. */
  otherSlots: z.object({ commands: num, latencyMs: Latency }),
  /** Successful commands per whole second from the writers' start (a last, partial second left out); the move's span in seconds from the same start. */
  perSecond: z.array(num),
  moveSpan: z.object({ from: num, to: num }),
  errors: z.record(z.string(), num),
  ...afterWrites,
});
export type MoveResult = z.infer<typeof MoveResult>;

export const OrdersBenchResults = z.object({
  kind: z.literal('orders'),
  // schema, mode, args (the command line's after `npm run bench:orders --`), startedAt, finishedAt, durationS, machine.
  ...runFields,
  settings: z.object({
    writers: num,
    seconds: num,
    warmupSeconds: num,
    users: num,
    products: num,
    linesPerOrder: num,
    /** The servers' versions and fsync setting: `PostgreSQL 15.x (fsync on)`. */
    postgres: z.string(),
    secondPostgres: z.string(),
    /** Whether both servers' data directories are on one device; null when the bench could not tell. */
    sameDevice: z.boolean().nullable(),
    mapRefreshMs: num,
    fenceWaitMs: num,
    graceMs: num,
    /** Each shard's connection pool, as createOrders sizes it for the cell's shard count. */
    poolSizes: z.record(z.string(), num),
  }),
  cells: z.array(CellResult).nonempty(),
  move: MoveResult.nullable(),
  notes: z.array(z.string()),
});
export type OrdersBenchResults = z.infer<typeof OrdersBenchResults>;

/** Every problem with a results document (`$.path: message`); empty when it matches the schema. */
export function validateOrdersResults(value: unknown): string[] {
  return problemsWith(OrdersBenchResults, value);
}

/** Narrows after validation; throws listing the first problems. */
export function assertOrdersResults(value: unknown): asserts value is OrdersBenchResults {
  assertMatches(OrdersBenchResults, value, 'orders bench results');
}
