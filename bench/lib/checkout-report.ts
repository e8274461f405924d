// The "Measurements" section of docs/checkout.md, generated from one checkout results JSON (nothing
// else): `npm run bench:checkout` rewrites it after a default run, `-- --report <json>` from any
// results file. Only the text between the two markers is replaced; the rest of the page is prose.
import { join } from 'node:path';
import type { CheckoutBenchResults, StageResult } from './checkout-results';
import { REPO_ROOT } from './common';
import { columns, dist, ms, pairs, runSentence, writeSection } from './doc-section';

export const DOCS_PATH = join(REPO_ROOT, 'docs', 'checkout.md');

const STEP_ORDER = ['reserveStock', 'authorizePayment', 'commitStock', 'capturePayment', 'voidPayment', 'releaseStock'];

const pct = (x: number) => `${Math.round(x * 1000) / 10}%`;
const loadOf = (s: StageResult) =>
  s.load.kind === 'rate' ? `${s.load.value}/s offered, ${s.load.seconds} s` : `${s.load.value} in flight, ${s.load.seconds} s`;
const title = (s: StageResult) => `${s.declineRate === 0 ? 'no declines' : `${pct(s.declineRate)} declined`}, ${loadOf(s)}`;

/** The stages in the table's order: by load (in the order the run ran them), then by decline rate, so each load's columns sit side by side. */
function ordered(results: CheckoutBenchResults): StageResult[] {
  const key = (s: StageResult) => `${s.load.kind}:${s.load.value}:${s.load.seconds}`;
  const loads = [...new Set(results.stages.map(key))];
  return [...results.stages].sort((a, b) => loads.indexOf(key(a)) - loads.indexOf(key(b)) || a.declineRate - b.declineRate);
}

/** The section's Markdown, for a results file at `jsonFile`. */
export function renderMeasurements(results: CheckoutBenchResults, jsonFile: string): string {
  const stages = ordered(results);
  const m = results.machine;
  const st = results.settings;
  const out: string[] = [];
  out.push(
    `${runSentence(results, 'bench:checkout', jsonFile)}, ${st.postgres}, ${st.rabbitmq}, Redis: ${st.redis}. ` +
      `The 1-minute load average was ${m.loadAverage.start} when the run started and ${m.loadAverage.end} when it ended: ` +
      `every process of the stack, PostgreSQL, RabbitMQ and the load generator share these cores, and so do other ` +
      `engineers' test runs; the load row below shows how busy the machine was during each load.`,
  );
  out.push('');
  out.push(
    `Setup: the services mode (\`startServices\`: every subgraph and the gateway its own process, each subgraph on its own ` +
      `PostgreSQL database, events through RabbitMQ), with ${Object.entries(st.env)
        .map(([k, v]) => `\`${k}=${v}\``)
        .join(', ')}; ` +
      `otherwise defaults: a step's first deadline ${st.checkout.stepTimeoutMs} ms (up to ${st.checkout.maxStepTimeoutMs} ms, ` +
      `${st.checkout.maxAttempts} attempts), a reservation held ${st.checkout.reservationHoldMs} ms, the saga's timer ` +
      `sweep every ${st.checkout.timerIntervalMs} ms, the provider simulator answering in ${st.provider.latencyMs} ms with ` +
      `${pct(st.provider.timeoutRate)} timeouts. ${st.customers} customers sign in through the gateway; every order has ` +
      `${st.linesPerOrder} line(s) of 1 unit, drawn from ${st.products} products whose stock is set far above what the run ` +
      `takes (so no rejection is \`OUT_OF_STOCK\`). Draft orders are created before each load, untimed; ` +
      `${st.warmupCheckouts} warm-up checkouts (${st.warmupPerSecond}/s) after each (re)start of payments are not reported.`,
  );
  out.push('');
  out.push(
    `How it is measured: each checkout is the \`checkout\` mutation through the gateway with its customer's token. ` +
      `"Start to terminal" is the mutation's start (the load generator's clock) to the checkout's \`endedAt\` in orders' store: ` +
      `the time of the decision that appends \`CheckoutConfirmed\` or \`CheckoutRejected\` with the order's ` +
      `\`OrderConfirmed\`/\`OrderRejected\` in one transaction (orders' clock; same machine). The load generator finds ended ` +
      `checkouts with one query of orders' \`checkout_view\` every ${st.pollMs} ms for all open checkouts at once, so the ` +
      `poll interval is not part of the latency and the measuring adds no request per checkout; "visible in the read model" ` +
      `is the terminal decision to that poll first reading it (projection lag plus up to one interval). Steps are each ` +
      `step's command to its reply, from the checkout's own steps. "Completed/s" is terminal checkouts over the time from ` +
      `the first mutation's start to the last terminal decision. An offered rate is an open loop (each mutation on its ` +
      `schedule whatever the others do); "in flight" is a closed loop of that many customers, each checking out its next ` +
      `order once the last one ended (as read by the poller). After each load the three stores are compared: captured ` +
      `payments = confirmed checkouts (count and amount), committed reservations = confirmed, none held, and a sample of ` +
      `orders read back through the gateway as their customer agrees with the store.`,
  );
  out.push('');
  const row = columns(out, stages.map(title), stages);
  row('load ran, s', (s) => `${s.ranSeconds}${s.poolExhausted ? ' (its draft orders ran out)' : ''}`);
  row('checkouts sent (mutation errors)', (s) => `${s.sent} (${s.mutationErrors})`);
  row('mutations sent/s', (s) => String(s.sentPerSecond));
  row('**completed/s**', (s) => `**${s.completedPerSecond}**`);
  row('**start to terminal, p50 / p95 / p99 / max ms**', (s) => `**${dist(s.latencyMs, ['p50', 'p95', 'p99', 'max'])}**`);
  row('confirmed: p50 / p99 ms', (s) => dist(s.byOutcome.CONFIRMED, ['p50', 'p99']));
  row('rejected: p50 / p99 ms', (s) => dist(s.byOutcome.REJECTED, ['p50', 'p99']));
  row('outcomes', (s) =>
    pairs(Object.entries(s.outcomes).sort(([a], [b]) => (a === 'CONFIRMED' ? -1 : b === 'CONFIRMED' ? 1 : a.localeCompare(b)))),
  );
  row('not ended when the bench stopped waiting', (s) => String(s.unfinished));
  row('checkout mutation round trip, p50 / p99 ms', (s) => dist(s.mutationMs, ['p50', 'p99']));
  row('saga alone (started to terminal decision), p50 / p99 ms', (s) => dist(s.sagaMs, ['p50', 'p99']));
  const names = [...new Set(stages.flatMap((s) => Object.keys(s.steps)))].sort(
    (a, b) => (STEP_ORDER.indexOf(a) + 1 || 99) - (STEP_ORDER.indexOf(b) + 1 || 99),
  );
  for (const name of names) row(`step \`${name}\`, p50 / p99 ms`, (s) => dist(s.steps[name], ['p50', 'p99']));
  row('visible in the read model after the decision, p50 / p99 ms', (s) => dist(s.visibleLagMs, ['p50', 'p99']));
  row('stores agree (captured = confirmed, none held, gateway sample)', (s) => {
    const c = s.checks;
    return (
      `${c.consistent ? 'yes' : '**NO**'}: ${c.capturedPayments} captured / ${c.confirmed} confirmed, ` +
      `${c.heldReservations} held, ${c.gatewaySample - c.gatewayMismatches}/${c.gatewaySample} read back`
    );
  });
  const procs = [...new Set(stages.flatMap((s) => Object.keys(s.cpuMsPerCheckout ?? {})))];
  if (procs.length > 0) {
    row('CPU ms per checkout, all our processes', (s) =>
      s.cpuMsPerCheckout ? ms(Math.round(Object.values(s.cpuMsPerCheckout).reduce((a, b) => a + b, 0) * 10) / 10) : '-',
    );
    for (const p of procs)
      row(`CPU ms per checkout: ${p}`, (s) =>
        s.cpuMsPerCheckout?.[p] === undefined ? '-' : ms(Math.round(s.cpuMsPerCheckout[p] * 10) / 10),
      );
  }
  row('load average during the load: mean (start, end)', (s) => `${s.loadAverage.mean} (${s.loadAverage.start}, ${s.loadAverage.end})`);
  out.push('');
  out.push(
    `CPU is each process's user + system time over the load and its drain, per terminal checkout ("bench" is the load ` +
      `generator and poller). It includes each process's background work (outbox relays, pollers, sweepers), which is why accounts, products and reviews, which no checkout calls, show some, and why the figures fall ` +
      `as the rate rises. PostgreSQL's and RabbitMQ's own CPU is not counted (they serve other work on this machine too).`,
  );
  for (const note of results.notes) out.push('', `Note: ${note}.`);
  return out.join('\n');
}

/** Replaces the generated part of docs/checkout.md (between the markers; appended under "## Measurements" the first time). */
export function writeMeasurements(results: CheckoutBenchResults, jsonFile: string): void {
  writeSection(DOCS_PATH, 'bench:checkout', renderMeasurements(results, jsonFile));
}
