// `npm run orders:reshard`: moves orders' slots between shards while the service runs.
//
//   npm run orders:reshard -- --add <url> [--move <slots>]   add a shard (a PostgreSQL URL or a SQLite
//                                                            path); move <slots> to it, or an even share
//   npm run orders:reshard -- --move <slots> --to <shard>    move slots (e.g. 0-63,100) to a shard (s2)
//   npm run orders:reshard -- --resume | --abort             finish, or roll back, a move that stopped
//   npm run orders:reshard -- --status [--json]              the map: shards, slots, the last moves
//
// It opens the first shard the way the service does (ORDERS_DATABASE_URL, or the SQLite file under
// DATA_DIR); the slot map there names the others. Every step of a move is recorded there before
// it is taken, so a mover that dies anywhere resumes with --resume (or rolls back with --abort,
// before the flip). See docs/sharding.md. Exit code: 0 done, 1 failed, 2 usage error.
import { loadShardingConfig, loadSubgraphConfig } from '@shop/config';
import { SLOT_COUNT, formatSlots, parseSlots } from '@shop/eventstore';
import {
  MOVE_POINTS,
  type MovePoint,
  type MoveProgress,
  type MoveReport,
  abortMove,
  addShard,
  moveSlots,
  openForResharding,
  openMoveRow,
  readSlotMap,
  rebalance,
  resumeMove,
} from '@shop/orders';
import { redact, sqliteFileFor } from '@shop/store';
import { createTelemetry } from '@shop/telemetry';
import { UsageError, parseCli, runCli } from './lib/cli';

const USAGE = [
  'usage: npm run orders:reshard -- --add <url> [--move <slots>]',
  '       npm run orders:reshard -- --move <slots> --to <shard>',
  '       npm run orders:reshard -- --resume | --abort | --status [--json]',
].join('\n');

/** One line, redrawn in place on a terminal: the step, a bar of events copied against the lag, and the slots. */
function progressPrinter(): (p: MoveProgress) => void {
  const tty = process.stderr.isTTY;
  let last = '';
  return (p) => {
    const done = p.eventsCopied;
    const total = done + p.lag;
    const width = 30;
    const filled = total === 0 ? width : Math.round((done / total) * width);
    const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
    const line = `${p.source} -> ${p.target} slots ${formatSlots(p.slots)}: ${p.step.padEnd(8)} ${bar} ${done} events copied`;
    if (tty) process.stderr.write(`\r${line}${p.step === 'done' ? '\n' : ''}`);
    else if (p.step !== last) process.stderr.write(`${line}\n`);
    last = p.step;
  };
}

const summary = (r: MoveReport) =>
  `moved slots ${formatSlots(r.slots)} from ${r.source} to ${r.target}: ${r.eventsCopied} events copied, writes fenced ${r.fenceMs} ms, ${r.ms} ms in all, map version ${r.mapVersion}`;

async function main(argv: string[]): Promise<number> {
  const { values } = parseCli(USAGE, {
    args: argv,
    options: {
      add: { type: 'string' },
      move: { type: 'string' },
      to: { type: 'string' },
      resume: { type: 'boolean' },
      abort: { type: 'boolean' },
      status: { type: 'boolean' },
      json: { type: 'boolean' },
      'grace-ms': { type: 'string' },
    },
  });
  const modes = [values.add !== undefined || values.move !== undefined, values.resume, values.abort, values.status].filter(Boolean);
  if (modes.length !== 1) throw new UsageError(USAGE);
  if (values.add === undefined && values.move !== undefined && values.to === undefined)
    throw new UsageError(`--move needs --to <shard>\n${USAGE}`);
  let slots: number[] | undefined;
  try {
    slots = values.move === undefined ? undefined : parseSlots(values.move);
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${USAGE}`);
  }
  const graceMs = values['grace-ms'] === undefined ? undefined : Number(values['grace-ms']);
  if (graceMs !== undefined && (!Number.isInteger(graceMs) || graceMs < 0))
    throw new UsageError(`--grace-ms must be a whole number\n${USAGE}`);

  const config = loadSubgraphConfig('orders', 4005);
  const telemetry = createTelemetry({ service: 'orders', logLevel: 'warn' });
  const store = config.databaseUrl ? { postgresUrl: config.databaseUrl } : { sqlitePath: sqliteFileFor(config.dataDir, 'orders') };
  const opened = await openForResharding({ telemetry, store, slotMap: loadShardingConfig().slotMap });
  // Tests kill the mover at each point (ORDERS_RESHARD_CRASH_AT) and run it again.
  const crashAt = process.env.ORDERS_RESHARD_CRASH_AT as MovePoint | undefined;
  if (crashAt !== undefined && !MOVE_POINTS.includes(crashAt))
    throw new UsageError(`ORDERS_RESHARD_CRASH_AT must be one of ${MOVE_POINTS.join(', ')}`);
  const options = {
    mapDb: opened.mapDb,
    shard: opened.shard,
    onProgress: values.json ? undefined : progressPrinter(),
    ...(graceMs === undefined ? {} : { graceMs }),
    at: (point: MovePoint) => {
      if (point === crashAt) process.kill(process.pid, 'SIGKILL');
    },
  };
  try {
    if (values.status) {
      const map = await readSlotMap(opened.mapDb);
      if (!map) throw new Error('orders has no slot map yet: start the service once first');
      const open = await openMoveRow(opened.mapDb);
      const shards = map.shards.map((s) => {
        const owned = map.owners.flatMap((o, slot) => (o === s.id ? [slot] : []));
        return {
          id: s.id,
          location: /^postgres/.test(s.location) ? redact(s.location) : s.location,
          slots: owned.length,
          ranges: formatSlots(owned),
        };
      });
      if (values.json) process.stdout.write(`${JSON.stringify({ version: map.version, shards, openMove: open ?? null }, null, 2)}\n`);
      else {
        process.stdout.write(`slot map version ${map.version}, ${SLOT_COUNT} slots\n`);
        for (const s of shards) process.stdout.write(`  ${s.id}  ${String(s.slots).padStart(3)} slots  ${s.ranges}  ${s.location}\n`);
        if (open)
          process.stdout.write(`move ${open.id} stopped at ${open.step}: slots ${open.slots} from ${open.source} to ${open.target}\n`);
      }
      return 0;
    }
    if (values.abort) {
      const aborted = await abortMove(options);
      process.stdout.write(
        aborted ? `rolled back move ${aborted.id}: ${aborted.source} owns slots ${aborted.slots} again\n` : 'no move to roll back\n',
      );
      return 0;
    }
    let reports: MoveReport[];
    if (values.resume) {
      const report = await resumeMove(options);
      reports = report ? [report] : [];
      if (!report) process.stdout.write('no move to resume\n');
    } else if (values.add !== undefined) {
      const shard = await addShard(opened.mapDb, values.add);
      await opened.shard(shard); // creates and migrates its store
      const map = (await readSlotMap(opened.mapDb))!;
      process.stderr.write(`shard ${shard.id} is in the slot map (version ${map.version})\n`);
      reports = await moveSlots(options, slots ?? rebalance(map, shard.id), shard.id);
    } else {
      reports = await moveSlots(options, slots!, values.to!);
    }
    if (values.json) process.stdout.write(`${JSON.stringify(reports, null, 2)}\n`);
    else for (const r of reports) process.stdout.write(`${summary(r)}\n`);
    return 0;
  } finally {
    await opened.close();
  }
}

runCli('orders:reshard', main, { exit: true });
