// The shape of bench/results/checkout-<time>.json, as zod schemas: the "Measurements" section of
// docs/checkout.md is generated from one such file alone, so bench/checkout.ts validates what it
// writes (and what --report reads) against them; the TypeScript types are inferred from the same
// schemas.
import { z } from 'zod';
import { Latency, LoadAverageDuring, assertMatches, problemsWith, runFields } from './common';

const num = z.number();

/** How load was offered: open loop at a fixed rate, or closed loop with a fixed number of customers checking out one after another. */
export const LoadSpec = z.object({
  kind: z.enum(['rate', 'concurrency']),
  /** Checkouts per second offered (rate), or checkouts in flight (concurrency). */
  value: num.positive(),
  seconds: num.positive(),
});
export type LoadSpec = z.infer<typeof LoadSpec>;

export const StageResult = z.object({
  /** PSP_DECLINE_RATE of the payments process during the stage. */
  declineRate: num.min(0).max(1),
  load: LoadSpec,
  /** Checkout mutations sent, and those answered with an error (HTTP or GraphQL) instead of a checkout. */
  sent: num,
  mutationErrors: num,
  /** How long the load ran: its duration, or less when a closed loop used up its draft orders (poolExhausted). */
  ranSeconds: num,
  poolExhausted: z.boolean(),
  /** Mutations sent per second over the load's duration (an open loop can fall behind its schedule). */
  sentPerSecond: num,
  /** Checkouts that reached a terminal state, per second: from the first mutation's start to the last terminal decision. */
  completedPerSecond: num,
  /** Checkouts started but not terminal when the bench stopped waiting. */
  unfinished: num,
  /** Terminal checkouts by outcome: CONFIRMED, or the REJECTED reason. */
  outcomes: z.record(z.string(), num),
  /** The mutation's start (client clock) to the terminal decision committed in orders (the checkout's endedAt). */
  latencyMs: Latency,
  byOutcome: z.record(z.string(), Latency),
  /** The mutation's HTTP round trip through the gateway (it answers once the saga has started). */
  mutationMs: Latency,
  /** The saga alone: its CheckoutStarted decision to its terminal decision (orders' clock for both). */
  sagaMs: Latency,
  /** Each step's command to its reply, from the checkout's steps (startedAt to endedAt). */
  steps: z.record(z.string(), Latency),
  /** The terminal decision to the bench's poller first reading it in orders' read model (checkout_view): the projection's lag plus up to one poll interval. */
  visibleLagMs: Latency,
  /** Process CPU (user + system) per terminal checkout, ms, by process; null where /proc is not readable. */
  cpuMsPerCheckout: z.record(z.string(), num).nullable(),
  /** From when the load started to when every checkout had ended. */
  loadAverage: LoadAverageDuring,
  /** The stage's checkouts as the three services' stores recorded them, after the stage. */
  checks: z.object({
    confirmed: num,
    confirmedAmount: num,
    capturedPayments: num,
    capturedAmount: num,
    /** Reservations of the stage's checkouts still HELD (should be 0 once every checkout ended). */
    heldReservations: num,
    committedReservations: num,
    /** Orders read back through the gateway as their customer, and how many disagreed with the store. */
    gatewaySample: num,
    gatewayMismatches: num,
    consistent: z.boolean(),
  }),
});
export type StageResult = z.infer<typeof StageResult>;

export const CheckoutBenchResults = z.object({
  kind: z.literal('checkout'),
  // schema, mode, args (the command line's after `npm run bench:checkout --`), startedAt, finishedAt, durationS, machine.
  ...runFields,
  settings: z.object({
    customers: num,
    products: num,
    linesPerOrder: num,
    /** Every variable the bench set for the services (over the defaults), by name. */
    env: z.record(z.string(), z.string()),
    /** The saga's and the provider's effective settings (CHECKOUT_*, PSP_*), as the processes read them. */
    checkout: z.object({
      stepTimeoutMs: num,
      maxStepTimeoutMs: num,
      maxAttempts: num,
      reservationHoldMs: num,
      timerIntervalMs: num,
    }),
    provider: z.object({ latencyMs: num, timeoutRate: num, maxAttempts: num, callTimeoutMs: num }),
    postgres: z.string(),
    rabbitmq: z.string(),
    redis: z.string(),
    /** How often the bench reads orders' read model for checkouts that ended. */
    pollMs: num,
    warmupCheckouts: num,
    warmupPerSecond: num,
  }),
  stages: z.array(StageResult).nonempty(),
  notes: z.array(z.string()),
});
export type CheckoutBenchResults = z.infer<typeof CheckoutBenchResults>;

/** Every problem with a results document (`$.path: message`); empty when it matches the schema. */
export function validateCheckoutResults(value: unknown): string[] {
  return problemsWith(CheckoutBenchResults, value);
}

/** Narrows after validation; throws listing the first problems. */
export function assertCheckoutResults(value: unknown): asserts value is CheckoutBenchResults {
  assertMatches(CheckoutBenchResults, value, 'checkout bench results');
}
