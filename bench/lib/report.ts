// docs/benchmarks.md and its chart, generated from one results JSON (nothing else).
import { NPLUS1_SIZES } from './nplus1-sizes';
import type { BenchResults, CellResult, GatewayResult } from './types';

const COLOURS: Record<string, string> = {
  'ours-off': '#1f6fb4',
  'ours-traced': '#6fa8dc',
  'ours-entity': '#2a9d3a',
  'ours-all': '#15a5b8',
  plain: '#f08a24',
  hive: '#8e5bc2',
  'hive-rust': '#5b3a8e',
  'hive-rc': '#c2415b',
};

const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

const fmt = (n: number) => (n >= 100 ? String(Math.round(n)) : n >= 10 ? n.toFixed(1) : n.toFixed(2));

/**
 * Horizontal bars, one row per gateway within each cell, on log scales: req/s on the left and
 * p99 latency on the right (shorter is better there).
 */
/**
 * Every cell where a peer served more requests per second than the best of ours in it, with what
 * the results say about why: requests and representations it sends per query, and CPU per
 * request of the gateway and of everything downstream. Empty when ours leads everywhere.
 */
export function peersAhead(results: BenchResults): string[] {
  const rows: string[][] = [];
  for (const cell of results.cells) {
    const ours = cell.gateways.filter((g) => g.kind === 'ours').sort((a, b) => b.median.rps - a.median.rps)[0];
    if (!ours) continue;
    for (const peer of cell.gateways.filter((g) => g.kind !== 'ours' && g.median.rps > ours.median.rps)) {
      const cpu = (g: GatewayResult) => (g.cpuMsPerRequest === null ? 'n/a' : fmt(g.cpuMsPerRequest));
      const down = (g: GatewayResult) => (g.downstreamCpuMsPerQuery === null ? 'n/a' : fmt(g.downstreamCpuMsPerQuery));
      rows.push([
        cell.id,
        `\`${peer.gateway}\` ${fmt(peer.median.rps)} vs \`${ours.gateway}\` ${fmt(ours.median.rps)} (${fmt(ours.median.rps / Math.max(peer.median.rps, 0.001))}x)`,
        `${fmt(peer.subgraphRequestsPerQuery)} / ${fmt(ours.subgraphRequestsPerQuery)}`,
        `${fmt(peer.representationsPerQuery)} / ${fmt(ours.representationsPerQuery)}`,
        `${cpu(peer)} / ${cpu(ours)}`,
        `${down(peer)} / ${down(ours)}`,
      ]);
    }
  }
  const out = ['## Where a peer is ahead', ''];
  if (rows.length === 0) return [...out, 'In no cell of this run did a peer serve more requests per second than ours.', ''];
  return [
    ...out,
    'Every cell of this run where a peer served more requests per second than the best of ours in it, with what the run measured of why: ' +
      'subgraph requests and representations per query (fewer fetches leave the subgraphs less to do), gateway CPU per request, and CPU ' +
      'per query of everything downstream (subgraphs, proxy, Redis). Peer / ours in each column.',
    '',
    table(['cell', 'req/s, peer vs ours (ours / peer)', 'subgraph req/q', 'reps/q', 'gateway CPU ms/req', 'downstream CPU ms/q'], rows),
    '',
  ];
}

/**
 * What OpenTelemetry costs ours: each cell that measured ours-traced beside ours-off (same
 * gateway, same caches, every request traced and exported over OTLP/HTTP), as ratios. Tracing
 * off is ours-off itself: the SDK is not loaded then (docs/observability.md).
 */
export function tracingCost(results: BenchResults): string[] {
  const rows = results.cells.flatMap((cell) => {
    const off = cell.gateways.find((g) => g.gateway === 'ours-off');
    const on = cell.gateways.find((g) => g.gateway === 'ours-traced');
    if (!off || !on) return [];
    const cpu = (g: GatewayResult) => (g.cpuMsPerRequest === null ? 'n/a' : fmt(g.cpuMsPerRequest));
    const cpuRatio = off.cpuMsPerRequest && on.cpuMsPerRequest ? `${(on.cpuMsPerRequest / off.cpuMsPerRequest).toFixed(2)}x` : 'n/a';
    return [
      [
        cell.id,
        `${fmt(on.median.rps)} / ${fmt(off.median.rps)} (${(on.median.rps / Math.max(off.median.rps, 0.001)).toFixed(2)}x)`,
        `${fmt(on.median.p99)} / ${fmt(off.median.p99)} (${(on.median.p99 / Math.max(off.median.p99, 0.001)).toFixed(2)}x)`,
        `${cpu(on)} / ${cpu(off)} (${cpuRatio})`,
      ],
    ];
  });
  if (rows.length === 0) return [];
  return [
    '',
    '## What tracing costs',
    '',
    'Ours with every request traced and exported over OTLP/HTTP (`ours-traced`, a sink in the proxy process) against ours with tracing off ' +
      '(`ours-off`, the default: the OpenTelemetry SDK is not loaded). Traced / off in each column.',
    '',
    table(['cell', 'req/s', 'p99 ms', 'gateway CPU ms/req'], rows),
  ];
}

export function renderChart(results: BenchResults): string {
  const rows: Array<{ cell?: string; g?: GatewayResult }> = [];
  for (const cell of results.cells) {
    rows.push({ cell: cellTitle(cell) });
    for (const g of cell.gateways) rows.push({ g });
  }
  const rowH = 18;
  const top = 84;
  const labelW = 210;
  const panelW = 360;
  const gap = 70;
  const width = labelW + panelW * 2 + gap + 30;
  const height = top + rows.length * rowH + 30;
  const values = (pick: (g: GatewayResult) => number) => results.cells.flatMap((c) => c.gateways.map(pick)).filter((v) => v > 0);
  const scale = (list: number[]) => {
    const lo = 10 ** Math.floor(Math.log10(Math.min(...list, 1)));
    const hi = 10 ** Math.ceil(Math.log10(Math.max(...list, 10)));
    return { lo, hi, x: (v: number) => (v <= 0 ? 0 : ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * panelW) };
  };
  const rps = scale(values((g) => g.median.rps));
  const p99 = scale(values((g) => g.median.p99));
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="11">`,
  );
  out.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  out.push(
    `<text x="10" y="18" font-size="14" font-weight="bold">Gateways side by side: requests/s (longer is better) and p99 latency (shorter is better), log scales</text>`,
  );
  out.push(
    `<text x="10" y="34" fill="#555">${escapeXml(`${results.mode} run, ${results.startedAt.slice(0, 10)}, ${results.machine.cpus} cores (${results.machine.cpuModel}), Node ${results.machine.node}; medians of ${results.settings.rounds} rounds`)}</text>`,
  );
  // Legend.
  let lx = 10;
  for (const [id, colour] of Object.entries(COLOURS)) {
    const label = results.gateways[id]?.label ?? id;
    out.push(`<rect x="${lx}" y="42" width="10" height="10" fill="${colour}"/><text x="${lx + 14}" y="51">${escapeXml(label)}</text>`);
    lx += 30 + label.length * 6.3;
  }
  const panels = [
    { x0: labelW, s: rps, title: 'requests/s', pick: (g: GatewayResult) => g.median.rps },
    { x0: labelW + panelW + gap, s: p99, title: 'p99 latency (ms)', pick: (g: GatewayResult) => g.median.p99 },
  ];
  for (const panel of panels) {
    out.push(`<text x="${panel.x0}" y="${top - 8}" font-weight="bold">${panel.title}</text>`);
    for (let v = panel.s.lo; v <= panel.s.hi; v *= 10) {
      const x = panel.x0 + panel.s.x(v);
      out.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${height - 24}" stroke="#ddd"/>`);
      out.push(`<text x="${x}" y="${height - 10}" text-anchor="middle" fill="#777">${v >= 1 ? v : v.toFixed(1)}</text>`);
    }
  }
  rows.forEach((row, i) => {
    const y = top + i * rowH;
    if (row.cell) {
      out.push(`<text x="10" y="${y + 13}" font-weight="bold">${escapeXml(row.cell)}</text>`);
      out.push(`<line x1="10" y1="${y + 1}" x2="${width - 10}" y2="${y + 1}" stroke="#eee"/>`);
      return;
    }
    const g = row.g as GatewayResult;
    out.push(`<text x="20" y="${y + 13}" fill="#333">${escapeXml(g.label)}</text>`);
    for (const panel of panels) {
      const v = panel.pick(g);
      const w = Math.max(1, panel.s.x(v));
      out.push(`<rect x="${panel.x0}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${COLOURS[g.gateway] ?? '#999'}"/>`);
      out.push(`<text x="${panel.x0 + w + 4}" y="${y + 13}" fill="#333">${fmt(v)}</text>`);
    }
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

const PHASE_TITLES: Record<string, string> = { off: 'caches off', on: 'caches on', delay: 'subgraph latency' };

/** Per caches-off cell with more than one connection, a table of each downstream process's CPU per query, per gateway. */
function downstreamByProcess(results: BenchResults): string[] {
  const out: string[] = [];
  for (const cell of results.cells) {
    if (!cell.id.startsWith('off/') || cell.connections <= 1) continue;
    const measured = cell.gateways.filter((g) => g.downstreamCpuMsPerQueryBy);
    if (measured.length === 0) continue;
    const names = [...new Set(measured.flatMap((g) => Object.keys(g.downstreamCpuMsPerQueryBy ?? {})))];
    out.push('');
    out.push(`**${cellTitle(cell)}**`);
    out.push('');
    out.push(
      table(
        ['gateway', ...names, 'all'],
        measured.map((g) => [g.label, ...names.map((n) => num(g.downstreamCpuMsPerQueryBy?.[n] ?? null)), num(g.downstreamCpuMsPerQuery)]),
      ),
    );
  }
  return out;
}

function cellTitle(cell: CellResult): string {
  const phase = cell.phase === 'delay' ? `${cell.delayMs} ms subgraph latency` : PHASE_TITLES[cell.phase];
  return `${cell.workload}${cell.connections === 1 ? ' (one connection)' : ''}, ${phase}${cell.state === 'n/a' ? '' : `, ${cell.state}`}`;
}

const ms = (n: number) => (n >= 100 ? `${Math.round(n)}` : n.toFixed(1));
const num = (n: number | null, digits = 2) => (n === null ? 'n/a' : Number.isInteger(n) ? String(n) : n.toFixed(digits));

function goldenCell(g: GatewayResult): string {
  if (g.golden.before.reference) return g.golden.before.pass ? 'reference' : `reference failed: ${g.golden.before.difference}`;
  const parts = [g.golden.before, g.golden.after].filter((x) => x !== null);
  return parts.every((p) => p.pass) ? 'same as ours' : `**differs**: ${parts.find((p) => !p.pass)?.difference ?? ''}`;
}

function table(header: string[], rows: string[][]): string {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

export function renderMarkdown(results: BenchResults, paths: { jsonPath: string; chartPath: string }): string {
  const m = results.machine;
  const s = results.settings;
  const lines: string[] = [];
  lines.push('# Benchmarks');
  lines.push('');
  lines.push(
    `Generated by \`npm run bench\` (\`bench/run.ts\`) from [${paths.jsonPath.replace(/^\.\.\//, '')}](${paths.jsonPath}); do not edit by hand, run the bench again. ` +
      `This is a **${results.mode}** run of ${results.startedAt.replace('T', ' ').slice(0, 16)} UTC that took ${Math.floor(results.durationS / 60)} min ${results.durationS % 60} s.` +
      (results.notes.length > 0 ? ` ${results.notes.join('; ')}.` : ''),
  );
  lines.push('');
  lines.push('Three gateways on the same supergraph, in front of the same subgraphs, under the same load:');
  lines.push('');
  for (const [id, g] of Object.entries(results.gateways)) {
    if (!results.cells.some((c) => c.gateways.some((x) => x.gateway === id))) continue;
    lines.push(`- **${g.label}** (\`${id}\`): ${g.version}; caches: ${g.caches}.`);
  }
  lines.push('');
  lines.push(
    "Workloads: **deep** is The Guild's gateway benchmark query shape (`users → reviews → product → reviews → author → reviews → product`, and " +
      '`topProducts → reviews → author → reviews → product` with `inStock` and `shippingEstimate`) on our seed data; **small** is one cheap field ' +
      '(`product(id) { name }`), the per-request overhead; **varied** is the deep query at a random page of users and of products on every request, so a ' +
      'whole-response cache cannot answer; **write** is 10% mutations (`updateProduct` as the admin, `addReview` as its author, with access ' +
      'tokens) among anonymous reads, while a checker writes and reads back through the same gateway and counts stale reads. Writes need a ' +
      'verified caller: only ours verifies access tokens and signs the caller through to the subgraphs, so the write mix runs through ours ' +
      "alone (the peers' writes would reach the subgraphs anonymous and be refused).",
  );
  lines.push('');
  lines.push(`## Machine`);
  lines.push('');
  lines.push(
    table(
      ['cores', 'CPU', 'memory', 'Node', 'OS', 'pinning', 'load average (start / end)'],
      [
        [
          String(m.cpus),
          m.cpuModel,
          `${m.memoryGb} GB`,
          m.node,
          m.platform,
          m.pinning ? `gateway on core ${m.pinning.gateway}; subgraphs, proxy, Redis, load generator on ${m.pinning.rest}` : 'none',
          `${m.loadAverage.start} / ${m.loadAverage.end}`,
        ],
      ],
    ),
  );
  lines.push('');
  lines.push(
    `Each gateway: ${s.warmupS} s warm-up, then ${s.rounds} rounds of ${s.roundS} s (cold cells: ${s.coldRoundS} s after a flush, no warm-up), the gateways interleaved round by round (A B C A B C ...); tables show medians over the rounds. Redis: ${s.redis}. Data: ${s.seed}. The supergraph is the repository's, orders included; no workload queries orders, so the bench does not start it.`,
  );
  lines.push('');
  lines.push('## Goals');
  lines.push('');
  lines.push(
    table(
      ['goal', 'target', 'measured (ours / peer)', 'met'],
      results.goals.map((g) => [g.name, g.target, g.measured, g.met === null ? 'not measured' : g.met ? 'yes' : '**no**']),
    ),
  );
  lines.push('');
  lines.push(...peersAhead(results));
  const golden = results.cells.flatMap((c) =>
    c.gateways.filter((g) => !(g.golden.before.pass && (g.golden.after?.pass ?? true))).map((g) => `${c.id} ${g.gateway}`),
  );
  lines.push(
    golden.length === 0
      ? "Golden diff: every gateway returned the same data as ours for every workload's fixed requests, before the load and (warm caches) after it."
      : `Golden diff: **differences** in ${golden.join(', ')}; see the tables.`,
  );
  lines.push('');
  lines.push(`![requests/s and p99 per gateway and workload](${paths.chartPath})`);
  lines.push('');
  lines.push('## Results');
  lines.push('');
  lines.push(
    '*req/s*, latencies: medians over the rounds. *errors*: connection errors + timeouts / non-2xx / 2xx with GraphQL errors. *subgraph req/q*, ' +
      "*reps/q*: subgraph requests and entity representations per client query, counted at the bench's proxy in front of every subgraph (the same way " +
      "for every gateway; ours' own `/metrics` agree within the table's rounding). *Redis/q*: commands the bench's Redis executed per query. *CPU*: " +
      "the gateway process's user + system time per request, and its share of one core during the rounds (well below 100%: the gateway was waiting, " +
      'not working). *other CPU*: the subgraphs, proxy and Redis, per query: work a gateway causes downstream. *RSS*: peak resident memory during the cell.',
  );
  for (const phase of ['off', 'on', 'delay'] as const) {
    const cells = results.cells.filter((c) => c.phase === phase);
    if (cells.length === 0) continue;
    lines.push('');
    const title =
      phase === 'off'
        ? 'Caches off (gateway caches off, subgraph hot caches off; DataLoader and our batchers stay on)'
        : phase === 'on'
          ? 'Caches on (subgraph hot caches on; cold = right after a flush, warm = after the warm-up)'
          : `Simulated subgraph latency: ${cells[0]?.delayMs} ms per subgraph request (subgraph hot caches off)`;
    lines.push(`### ${title}`);
    lines.push('');
    lines.push(
      table(
        [
          'workload',
          'gateway',
          'req/s',
          'p50 ms',
          'p95 ms',
          'p99 ms',
          'errors',
          'subgraph req/q',
          'reps/q',
          'Redis/q',
          'CPU ms/req',
          'CPU %',
          'other CPU ms/q',
          'RSS MB',
          'golden',
        ],
        cells.flatMap((c) =>
          c.gateways.map((g) => [
            `${c.workload}${c.connections === 1 ? ', one connection' : ''}${c.state === 'n/a' ? '' : ` (${c.state})`}`,
            g.label,
            num(g.median.rps, 1),
            ms(g.median.p50),
            ms(g.median.p95),
            ms(g.median.p99),
            `${g.errors} / ${g.non2xx} / ${g.graphqlErrors}`,
            num(g.subgraphRequestsPerQuery),
            num(g.representationsPerQuery),
            num(g.redisCommandsPerQuery),
            num(g.cpuMsPerRequest),
            num(g.cpuBusyPct, 0),
            num(g.downstreamCpuMsPerQuery),
            num(g.peakRssMb, 0),
            goldenCell(g),
          ]),
        ),
      ),
    );
  }
  const timeouts = results.cells.flatMap((c) =>
    c.gateways
      .filter((g) => (g.reportedByGateway?.cacheErrorsPerQuery ?? 0) > 0)
      .map((g) => `${c.id} ${g.gateway}: ${g.reportedByGateway?.cacheErrorsPerQuery}`),
  );
  if (timeouts.length > 0) {
    lines.push('');
    lines.push(
      `Our gateway gave up on cache calls (\`cache_errors_total\`: over \`CACHE_TIMEOUT_MS\` and answered without the cache), per query: ${timeouts.join('; ')}.`,
    );
  }
  const byProcess = downstreamByProcess(results);
  if (byProcess.length > 0) {
    lines.push('');
    lines.push("## Where the other cores' CPU goes");
    lines.push('');
    lines.push(
      'CPU ms per client query of each process on the other cores, caches-off cells (the subgraphs have no by-id caches there): ' +
        "what each gateway's requests cost each subgraph. The proxy counts requests and representations for every gateway alike.",
    );
    lines.push(...byProcess);
  }
  lines.push('');
  lines.push('## Ours / peer');
  lines.push('');
  lines.push('Above 1 is better for req/s, below 1 is better for p99.');
  lines.push('');
  lines.push(
    table(
      ['cell', 'ours', 'peer', 'req/s ratio', 'p99 ratio'],
      results.ratios.map((r) => [
        r.cell,
        results.gateways[r.ours]?.label ?? r.ours,
        results.gateways[r.peer]?.label ?? r.peer,
        `${r.rps.toFixed(2)}x`,
        `${r.p99.toFixed(2)}x`,
      ]),
    ),
  );
  lines.push(...tracingCost(results));
  const stale = results.cells.flatMap((c) => c.gateways.filter((g) => g.stale).map((g) => ({ c, g })));
  if (stale.length > 0) {
    lines.push('');
    lines.push('## Reads after writes');
    lines.push('');
    lines.push(
      'During the write mix a checker writes through the gateway under load (a new price; a new review) and reads straight back through it: the ' +
        "product's own fields, the same product reached as an entity through a review, and its newest review. A read that does not show the write is stale.",
    );
    lines.push('');
    lines.push(
      table(
        ['cell', 'gateway', 'read-after-write checks', 'stale', 'first stale read'],
        stale.map(({ c, g }) => [
          c.id,
          g.label,
          String(g.stale?.checks ?? 0),
          g.stale?.stale ? `**${g.stale.stale}**` : '0',
          g.stale?.stale ? (g.stale.example ?? '') : '',
        ]),
      ),
    );
  }
  const cold = results.cells.flatMap((c) => c.gateways.filter((g) => g.coldFirst).map((g) => ({ c, g })));
  if (cold.length > 0) {
    lines.push('');
    lines.push('## The first query after a flush');
    lines.push('');
    lines.push(
      table(
        ['cell', 'gateway', 'latency ms', 'subgraph requests', 'representations', 'Redis commands'],
        cold.map(({ c, g }) => [
          c.id,
          g.label,
          ms(g.coldFirst?.latencyMs ?? 0),
          String(g.coldFirst?.subgraphRequests),
          String(g.coldFirst?.representations),
          num(g.coldFirst?.redisCommands ?? null),
        ]),
      ),
    );
  }
  if (results.nplus1.length > 0) {
    lines.push('');
    lines.push('## N+1: store round trips per query');
    lines.push('');
    lines.push(
      '`{ topProducts(first: N) { name reviews(first: 10) { body author { name reviews(first: 3) { product { name inStock } } } } } }` through our ' +
        'gateway (embedded stack, SQLite in memory, every cache off), with DataLoader batching in every subgraph, and with DataLoader replaced by one ' +
        'that neither batches nor memoises (each load its own store query, as resolvers without DataLoader do). Round trips per subgraph: ' +
        'accounts / products / inventory / reviews.',
    );
    lines.push('');
    const row = (size: number, on: boolean) => results.nplus1.find((r) => r.size === size && r.dataloader === on);
    const trips = (r: ReturnType<typeof row>) =>
      r
        ? `**${r.storeRoundTrips}** (${['accounts', 'products', 'inventory', 'reviews'].map((k) => r.byService[k] ?? 0).join(' / ')})`
        : 'n/a';
    lines.push(
      table(
        ['list size N', 'DataLoader on', 'DataLoader off', 'subgraph requests', 'representations', 'query ms on / off'],
        NPLUS1_SIZES.map((size) => {
          const on = row(size, true);
          const off = row(size, false);
          return [
            String(size),
            trips(on),
            trips(off),
            String(on?.subgraphRequests ?? 'n/a'),
            String(on?.representations ?? 'n/a'),
            `${on?.ms ?? '?'} / ${off?.ms ?? '?'}`,
          ];
        }),
      ),
    );
  }
  const profiled = results.goals.filter((g) => g.profile);
  if (profiled.length > 0) {
    lines.push('');
    lines.push('## Profiles');
    lines.push('');
    lines.push(
      "Our gateway, alone on its core, under the goal's workload: the functions with the most self time, and self time by package.",
    );
    const shown = new Map<string, string>();
    for (const goal of profiled) {
      const p = goal.profile;
      if (!p) continue;
      const first = shown.get(p.file);
      if (first) {
        lines.push('');
        lines.push(`### ${goal.name}: the profile of ${first}, above (same cell and gateway)`);
        continue;
      }
      shown.set(p.file, goal.name);
      lines.push('');
      lines.push(
        `### ${goal.name}: \`${p.gateway}\` on \`${p.cell}\` (${p.durationS} s at ${p.rps} req/s under \`node --cpu-prof\`${p.windowed ? ', load only' : ', whole process'}; raw profile \`${p.file}\`, not committed)`,
      );
      lines.push('');
      lines.push(
        table(
          ['self %', 'function', 'where'],
          p.topFrames.map((f) => [f.selfPct.toFixed(1), `\`${f.function}\``, f.location ? `\`${f.location}\`` : '']),
        ),
      );
      lines.push('');
      lines.push(`By package: ${p.byPackage.map((b) => `${b.package} ${b.selfPct.toFixed(1)}%`).join(', ')}.`);
    }
  }
  lines.push('');
  lines.push('## Method');
  lines.push('');
  lines.push(
    [
      '- `npm run bench` starts the four subgraphs twice over (set A with their hot caches off, set B with them on), each a process on ' +
        'SQLite files seeded once from the deterministic generators and shared by both sets, and a small proxy in front of each that counts ' +
        'subgraph requests and `_entities` representations and, in the latency phase, delays each subgraph request. Every gateway talks to ' +
        'the subgraphs through it. A redis-server of its own holds the caches. The subgraphs check the signature of a request signed with ' +
        'their secret (ours is given it) and answer unsigned ones as anonymous (`SUBGRAPH_ALLOW_UNSIGNED`), so the peers, which cannot sign, ' +
        'reach them for every read.',
      '- Each gateway is one process (no forking) started as `node --import tsx <entry>` with `NODE_ENV=production`, logging at warn, no usage ' +
        'reporting or tracing, landing pages off: ours is `gateway/src/index.ts`; plain @apollo/gateway is `bench/gateways/apollo-plain.ts` ' +
        '(`ApolloGateway` with a `RemoteGraphQLDataSource` that only rewrites URLs, on `startStandaloneServer`); Hive Gateway is its ' +
        '`hive-gateway supergraph` CLI (installed on first use into `bench/peers` from its own lockfile) on a copy of `supergraph.graphql` with the routing URLs rewritten, configured by `bench/gateways/hive.config.ts`.',
      '- With `taskset`, the gateway under test has core 0 to itself; subgraphs, proxy, Redis and autocannon share the other cores. All ' +
        'gateways start before anything is measured and stay idle except the one being driven.',
      "- autocannon (closed loop, a fixed number of connections per workload) after a warm-up; every response's latency is kept, so " +
        'percentiles are exact. After each round the bench waits until the gateway, the subgraphs and Redis are quiet, so the work of requests ' +
        'still in flight is counted for the gateway that caused it; per-query numbers divide by requests sent.',
      "- Golden diff: each workload's fixed requests go to ours and to every other gateway back to back, and the data must be equal (key order " +
        'and error messages aside), before the load and, for warm caches, after it.',
      "- Caches on: our caches and Hive's response cache in the bench's Redis, flushed at each phase and before every cold round; plain " +
        "@apollo/gateway has no cache to turn on. Hive's response cache is configured as its documentation recommends for a schema with " +
        "hints: shared by all callers, a TTL per type and per field (`ttlPerSchemaCoordinate`) derived from our subgraphs' `@cacheControl` " +
        "(`bench/gateways/hive.config.ts`: 0 for PRIVATE, 0 for a field without a hint returning an object type without one, as Apollo's " +
        'cache control decides for ours), and invalidated by the entities a mutation returns.',
      '- Whole responses: so configured, both gateways keep a whole response only when everything it selects may be cached; the deep and ' +
        "varied queries' `users` connection carries no hint, so neither keeps them, and our deep numbers with caches on are the entity " +
        "cache's (each entity looked up in Redis, none refetched), Hive's those of its subgraph fetches.",
      '- `--profile` profiles our gateway (`node --cpu-prof`, a fresh process on the same core) under the workload of every missed goal and ' +
        'lists the functions with the most self time during the load (`--profile-all`: every goal). ' +
        '`--profile-subgraphs <dir>` runs every subgraph under `node --cpu-prof` too, writing one profile per subgraph process into `<dir>` when the run ends.',
    ].join('\n'),
  );
  lines.push('');
  lines.push(
    'Running it: `npm run bench` (the full run; this one took the time given at the top), `npm run bench -- --quick` (fewer, shorter cells), ',
  );
  lines.push(
    '`--only off/deep,on/deep/warm` for some cells, `SUBGRAPH_DELAY_MS=50` for another latency, `--report <results.json>` to regenerate this page; `--help` lists the rest.',
  );
  lines.push('');
  lines.push('The deep query:');
  lines.push('');
  lines.push('```graphql');
  lines.push(s.deepQuery.trim());
  lines.push('```');
  lines.push('');
  return lines.join('\n');
}
