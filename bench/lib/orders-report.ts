// The "Measurements" section of docs/sharding.md, generated from one orders results JSON (nothing
// else): `npm run bench:orders` rewrites it after a default run, `-- --report <json>` from a
// results file. Only the text between the two markers is replaced; the rest of the page is prose.
import { join } from 'node:path';
import { REPO_ROOT } from './common';
import { columns, dist, pairs, runSentence, writeSection } from './doc-section';
import type { CellResult, OrdersBenchResults, Phase } from './orders-results';

export const DOCS_PATH = join(REPO_ROOT, 'docs', 'sharding.md');

const pct = (x: number | null) => (x === null ? '-' : `${Math.round(x * 100)}%`);
const codes = (errors: Record<string, number>) => (Object.keys(errors).length === 0 ? 'none' : pairs(Object.entries(errors)));
const checked = (c: CellResult['checks']) =>
  `${c.consistent ? 'yes' : '**NO**'}: ${c.events} events / ${c.commandsOk} commands, ${c.streamsOnTwoShards} on two shards, ` +
  `${c.gappedStreams} with a gap, ${c.unpublished} unpublished`;

/** The section's Markdown, for a results file at `jsonFile`. */
/** moveSlots' names for where the fence's time went, as the report writes them. */
const FENCE_STEP: Record<string, string> = {
  fence: 'taking it',
  drain: 'draining the outbox',
  tail: 'copying the tail',
  project: 'projecting it',
  flip: 'the flip',
};

export function renderMeasurements(results: OrdersBenchResults, jsonFile: string): string {
  const m = results.machine;
  const st = results.settings;
  const out: string[] = [];
  out.push(
    `${runSentence(results, 'bench:orders', jsonFile)}; first server ${st.postgres}, second server ` +
      `${st.secondPostgres}${st.sameDevice === null ? '' : st.sameDevice ? ', both data directories on one device' : ', data directories on different devices'}. ` +
      `The 1-minute load average was ${m.loadAverage.start} when the run started and ${m.loadAverage.end} when it ended; ` +
      `the bench, every shard's PostgreSQL backends and other engineers' work share these cores.`,
  );
  out.push('');
  out.push(
    `Setup: each cell on fresh databases on the first server, \`createOrders\` in the bench's process with ` +
      `\`shards: [...urls]\`, ${st.users} seed customers and ${st.products} products, a MemoryBus (every shard's relay ` +
      `publishes). ${st.writers} writers, closed loop, each creating an order for a random customer and adding ` +
      `${st.linesPerOrder} line(s), one command at a time through \`ShardedOrders.execute\` (routing by the slot in the id, ` +
      `the ownership check in the append's transaction, read models caught up before it returns; no GraphQL or HTTP). ` +
      `${st.warmupSeconds} s of warm-up per cell are not reported; each cell then runs ${st.seconds} s. Connection pool per ` +
      `shard: ${Object.entries(st.poolSizes)
        .map(([n, size]) => `${size} with ${n} shard(s)`)
        .join(', ')}. After each cell the shards' event stores are read back: one event per successful command, no order ` +
      `on two shards, versions without gaps, every outbox published.`,
  );
  out.push('');
  const base = results.cells.find((c) => c.shards === 1) ?? results.cells[0]!;
  const cols = results.cells.map((c) => `${c.shards} shard${c.shards === 1 ? '' : 's'}`);
  const row = columns(out, cols, results.cells);
  row('**commands/s**', (c) => `**${c.commandsPerSecond}**`);
  row(`vs ${base.shards} shard`, (c) => `${Math.round((c.commandsPerSecond / base.commandsPerSecond) * 100) / 100}x`);
  row('orders created/s', (c) => String(c.ordersPerSecond));
  row('**command latency p50 / p99 / max ms**', (c) => `**${dist(c.latencyMs, ['p50', 'p99', 'max'])}**`);
  row('CreateOrder p50 / p99 ms', (c) => dist(c.byCommand.CreateOrder, ['p50', 'p99']));
  row('AddOrderLine p50 / p99 ms', (c) => dist(c.byCommand.AddOrderLine, ['p50', 'p99']));
  row('commands (errors)', (c) => `${c.commands} (${codes(c.errors)})`);
  row('commands per shard', (c) => pairs(Object.entries(c.perShard)));
  row("bench process's CPU, cores", (c) => String(c.benchCpuCores));
  row('machine busy', (c) => pct(c.machineBusy));
  row('load average: mean (start, end)', (c) => `${c.loadAverage.mean} (${c.loadAverage.start}, ${c.loadAverage.end})`);
  row('event stores agree', (c) => checked(c.checks));
  const busy = results.cells.flatMap((c) => (c.machineBusy === null ? [] : [c.machineBusy]));
  const best = results.cells.reduce((a, c) => (c.commandsPerSecond > a.commandsPerSecond ? c : a));
  out.push('');
  out.push(
    `Reading it: the best cell, ${best.shards} shard(s), reached ${Math.round((best.commandsPerSecond / base.commandsPerSecond) * 100) / 100}x ` +
      `the ${base.shards}-shard throughput. ` +
      (busy.length > 0
        ? `The machine's ${m.cpus} cores were busy ${pct(Math.min(...busy))} to ${pct(Math.max(...busy))} of the time in the cells, ` +
          `and every shard is a database of the same server on the same disk. More shards split one contention point, the ` +
          `append lock (appends to one event store take one advisory lock, so that positions become visible in order; each ` +
          `shard has its own), and add parallel connections, relays and projection pollers, but no CPU or disk to run them on` +
          (best.commandsPerSecond / base.commandsPerSecond < 1.3
            ? `: on this machine they are not much faster, and the tail latency grows with the shards' background work. `
            : `. `) +
          `A shard on a server of its own adds that server's CPU and disk.`
        : `Every shard is a database of the same server on the same disk, so more shards add no CPU or disk here.`),
  );
  const mv = results.move;
  if (mv) {
    out.push('');
    out.push(
      `**During a move.** ${mv.shards} shards, the same ${st.writers} writers; after ${mv.before.seconds} s, \`addShard\` had ` +
        `put ${mv.target} (on ${mv.targetServer}, the second server) in the map before the writers started, and ` +
        `\`moveSlots\` moves slots ${mv.slots} (${mv.source}'s) to it with a grace of ${st.graceMs} ms; the writers go on ` +
        `${mv.after.seconds} s after it returns. The service reads the map every ${st.mapRefreshMs} ms and a write waits ` +
        `up to ${st.fenceWaitMs} ms for a moving slot. A quarter of the writes concern the moving slots.`,
    );
    out.push('');
    const phase = columns<Phase>(out, ['before', 'during the move', 'after'], [mv.before, mv.during, mv.after]);
    phase('seconds', (p) => String(p.seconds));
    phase('**commands/s**', (p) => `**${p.commandsPerSecond}**`);
    phase('command latency p50 / p99 / max ms', (p) => dist(p.latencyMs, ['p50', 'p99', 'max']));
    out.push('');
    out.push(
      `The move took ${mv.moveMs} ms${
        mv.steps ? ` (each step first reported at, ms: ${pairs(Object.entries(mv.steps))})` : ''
      } and copied ${mv.eventsCopied} events; **writes to the moving slots were fenced ` +
        `${mv.fenceMs} ms**${
          mv.fenceSteps
            ? ` (${pairs(Object.entries(mv.fenceSteps).map(([step, ms]): [string, number] => [FENCE_STEP[step] ?? step, ms]))} ms)`
            : ''
        } (map version ${mv.mapVersion} after it). Commands in flight at some point of the move: ` +
        `${mv.movingSlots.commands} on the moving slots, **p50 / p99 / max ${dist(mv.movingSlots.latencyMs, ['p50', 'p99', 'max'])} ms**; ` +
        `${mv.otherSlots.commands} on the others, ${dist(mv.otherSlots.latencyMs, ['p50', 'p99', 'max'])} ms. ` +
        (mv.movingSlots.latencyMs.max === null
          ? ''
          : `The issue's goal, no write to a moving slot paused a second or more: ${
              mv.movingSlots.latencyMs.max < 1000 ? 'met' : '**not met**'
            } (the longest took ${mv.movingSlots.latencyMs.max} ms). `) +
        `Errors: ${codes(mv.errors)}. Commands per shard: ${pairs(Object.entries(mv.perShard))}. Event stores agree: ${checked(mv.checks)}. Bench process ${mv.benchCpuCores} cores, machine busy ` +
        `${pct(mv.machineBusy)}, load average ${mv.loadAverage.mean}.`,
    );
    out.push('');
    out.push(
      `Commands per second, second by second (the move ran from ${mv.moveSpan.from} s to ${mv.moveSpan.to} s): ` +
        `${mv.perSecond.map((n, i) => (i >= Math.floor(mv.moveSpan.from) && i <= Math.floor(mv.moveSpan.to) ? `**${n}**` : String(n))).join(' ')}.`,
    );
  }
  for (const note of results.notes) out.push('', `Note: ${note}.`);
  return out.join('\n');
}

/** Replaces the generated part of docs/sharding.md (between the markers; appended under "## Measurements" the first time). */
export function writeMeasurements(results: OrdersBenchResults, jsonFile: string): void {
  writeSection(DOCS_PATH, 'bench:orders', renderMeasurements(results, jsonFile));
}
