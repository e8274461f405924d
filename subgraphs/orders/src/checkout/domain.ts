// The checkout saga as a decider, like the order: `decide*` says what happens next (events) from
// the state and what arrived (a reply, a deadline passing, a cancel); `evolve` folds one event
// into the state. Pure: times come in as arguments, ids from the caller.
//
// The plan (docs/checkout.md explains why):
//   reserveStock -> authorizePayment -> commitStock (the pivot) -> capturePayment -> confirm
// - reserveStock and authorizePayment can be undone: releaseStock and voidPayment.
// - commitStock is the pivot: after it the checkout only goes forward. It is retried until
//   inventory answers (a reservation past its hold can only fail to commit).
// - capturePayment is retried until it succeeds (an authorized payment can be captured).
// A failure before the pivot runs the compensations of what was (or may have been) done, newest
// first, and the checkout ends REJECTED with a reason. Cancelling a confirmed order runs the
// reverse saga: refundPayment, restock.

export type StepName =
  'reserveStock' | 'authorizePayment' | 'commitStock' | 'capturePayment' | 'voidPayment' | 'releaseStock' | 'refundPayment' | 'restock';

export type StepStatus = 'RUNNING' | 'DONE' | 'FAILED';
export type CheckoutStatus = 'RUNNING' | 'COMPENSATING' | 'CONFIRMED' | 'REJECTED' | 'REVERSING' | 'REVERSED';
export type RejectionReason = 'OUT_OF_STOCK' | 'PAYMENT_DECLINED' | 'PAYMENT_UNAVAILABLE' | 'TIMED_OUT';

export interface CheckoutLine {
  productId: string;
  quantity: number;
}

export interface ShortLine {
  productId: string;
  requested: number;
  available: number;
}

export interface Step {
  name: StepName;
  status: StepStatus;
  attempts: number;
  startedAt: string;
  endedAt: string | null;
  error: string | null;
}

export interface Checkout {
  id: string;
  orderId: string;
  customerId: string;
  idempotencyKey: string;
  lines: CheckoutLine[];
  /** Cents. */
  amount: number;
  currency: string;
  status: CheckoutStatus;
  reason: RejectionReason | null;
  outOfStock: ShortLine[] | null;
  /** Every step run, in the order they started (a retried step is one entry). */
  steps: Step[];
  /** The step waiting for its reply, or null when none is (terminal). */
  current: StepName | null;
  /** When the current attempt of the current step times out (ISO 8601). */
  deadline: string | null;
  /** Compensation steps still to run after the current one, in order. */
  queue: StepName[];
  paymentId: string | null;
  startedAt: string;
  endedAt: string | null;
  version: number;
}

export type CheckoutState = Checkout | null;

export type CheckoutEvent =
  | {
      type: 'CheckoutStarted';
      data: {
        checkoutId: string;
        orderId: string;
        customerId: string;
        idempotencyKey: string;
        lines: CheckoutLine[];
        amount: number;
        currency: string;
        at: string;
      };
    }
  | { type: 'CheckoutStepStarted'; data: { step: StepName; attempt: number; deadline: string; at: string } }
  | { type: 'CheckoutStepSucceeded'; data: { step: StepName; paymentId?: string; at: string } }
  | {
      type: 'CheckoutStepFailed';
      data: { step: StepName; error: string; reason: RejectionReason; outOfStock?: ShortLine[]; compensate: StepName[]; at: string };
    }
  | { type: 'CheckoutConfirmed'; data: { at: string } }
  | { type: 'CheckoutRejected'; data: { reason: RejectionReason; at: string } }
  | { type: 'CheckoutReverseStarted'; data: { at: string } }
  | { type: 'CheckoutReversed'; data: { at: string } };

export type CheckoutEventType = CheckoutEvent['type'];
export const CHECKOUT_EVENT_TYPES: readonly CheckoutEventType[] = [
  'CheckoutStarted',
  'CheckoutStepStarted',
  'CheckoutStepSucceeded',
  'CheckoutStepFailed',
  'CheckoutConfirmed',
  'CheckoutRejected',
  'CheckoutReverseStarted',
  'CheckoutReversed',
];

export const isCheckoutEventType = (type: string): type is CheckoutEventType => (CHECKOUT_EVENT_TYPES as readonly string[]).includes(type);

/** The stream a checkout's events live in, beside the orders' streams in the same event store. */
export const checkoutStream = (checkoutId: string) => `checkout:${checkoutId}`;

/** How long each attempt may take and how often a step is tried. */
export interface StepPolicy {
  /** The first attempt's deadline; each retry doubles it, up to `maxStepTimeoutMs`. */
  stepTimeoutMs: number;
  maxStepTimeoutMs: number;
  /** Attempts of a step that may fail (reserveStock, authorizePayment, commitStock) before it does. */
  maxAttempts: number;
}

/** What replies mean, as the decider reads them (the orchestrator maps bus messages onto these). */
export type Reply =
  | { kind: 'stockReserved' }
  | { kind: 'stockReservationFailed'; lines: ShortLine[] }
  | { kind: 'stockCommitted' }
  | { kind: 'stockCommitFailed'; reason: string }
  | { kind: 'stockReleased'; expired: boolean }
  | { kind: 'stockRestocked' }
  | { kind: 'paymentAuthorized'; paymentId: string }
  | { kind: 'paymentDeclined'; paymentId: string; reason: string }
  | { kind: 'paymentUnavailable'; paymentId: string; reason: string }
  | { kind: 'paymentCaptured'; paymentId: string }
  | { kind: 'paymentVoided'; paymentId: string }
  | { kind: 'paymentRefunded'; paymentId: string };

/** The step a reply answers. */
const STEP_OF: Record<Reply['kind'], StepName> = {
  stockReserved: 'reserveStock',
  stockReservationFailed: 'reserveStock',
  stockCommitted: 'commitStock',
  stockCommitFailed: 'commitStock',
  stockReleased: 'releaseStock',
  stockRestocked: 'restock',
  paymentAuthorized: 'authorizePayment',
  paymentDeclined: 'authorizePayment',
  paymentUnavailable: 'authorizePayment',
  paymentCaptured: 'capturePayment',
  paymentVoided: 'voidPayment',
  paymentRefunded: 'refundPayment',
};

const FORWARD: readonly StepName[] = ['reserveStock', 'authorizePayment', 'commitStock', 'capturePayment'];
/**
 * Steps whose silence (no reply within their attempts) fails the checkout; the others are
 * retried until they answer. commitStock is not among them: a commit still queued at inventory
 * could take the stock after the checkout gave up. Inventory answers it anyway, and once the
 * reservation's hold has passed the answer can only be StockCommitFailed (and the sweeper's
 * StockReleased), which fails the checkout then.
 */
const MAY_FAIL: ReadonlySet<StepName> = new Set(['reserveStock', 'authorizePayment']);

const deadlineOf = (now: Date, attempt: number, policy: StepPolicy): string =>
  new Date(now.getTime() + Math.min(policy.maxStepTimeoutMs, policy.stepTimeoutMs * 2 ** (attempt - 1))).toISOString();

const start = (step: StepName, attempt: number, now: Date, policy: StepPolicy): CheckoutEvent => ({
  type: 'CheckoutStepStarted',
  data: { step, attempt, deadline: deadlineOf(now, attempt, policy), at: now.toISOString() },
});

/** Opens a checkout and starts its first step. */
export function decideStart(
  input: Omit<Extract<CheckoutEvent, { type: 'CheckoutStarted' }>['data'], 'at'>,
  now: Date,
  policy: StepPolicy,
): CheckoutEvent[] {
  return [{ type: 'CheckoutStarted', data: { ...input, at: now.toISOString() } }, start('reserveStock', 1, now, policy)];
}

/**
 * What a checkout whose current step just ended does next: the next forward step, the next
 * compensation, or its end. `state` is the state after the step's end.
 */
function proceed(state: Checkout, now: Date, policy: StepPolicy): CheckoutEvent[] {
  const at = now.toISOString();
  if (state.status === 'RUNNING') {
    const last = state.steps.at(-1)?.name;
    const next = last === undefined ? 'reserveStock' : FORWARD[FORWARD.indexOf(last) + 1];
    return next ? [start(next, 1, now, policy)] : [{ type: 'CheckoutConfirmed', data: { at } }];
  }
  const [next] = state.queue;
  if (next) return [start(next, 1, now, policy)];
  if (state.status === 'COMPENSATING') return [{ type: 'CheckoutRejected', data: { reason: state.reason ?? 'TIMED_OUT', at } }];
  if (state.status === 'REVERSING') return [{ type: 'CheckoutReversed', data: { at } }];
  return [];
}

/** The compensations of a failure at `step`, newest first: undo what was, or may have been, done. */
function compensationsFor(step: StepName, reply: Reply['kind'] | 'timeout' | 'expired'): StepName[] {
  if (step === 'reserveStock') return reply === 'stockReservationFailed' ? [] : ['releaseStock'];
  if (step === 'authorizePayment') {
    // A decline took nothing; a timeout or "unavailable" may hide an authorization: void it.
    const payment: StepName[] = reply === 'paymentDeclined' ? [] : ['voidPayment'];
    // The sweeper already released an expired reservation (it said so).
    return reply === 'expired' ? payment : [...payment, 'releaseStock'];
  }
  // commitStock: the reservation is gone (expired or released), so only the payment is left.
  return ['voidPayment'];
}

function fail(
  state: Checkout,
  step: StepName,
  kind: Reply['kind'] | 'timeout' | 'expired',
  reason: RejectionReason,
  error: string,
  now: Date,
  policy: StepPolicy,
  outOfStock?: ShortLine[],
): CheckoutEvent[] {
  const compensate = compensationsFor(step, kind);
  const failed: CheckoutEvent = {
    type: 'CheckoutStepFailed',
    data: { step, error, reason, compensate, at: now.toISOString(), ...(outOfStock ? { outOfStock } : {}) },
  };
  return [failed, ...proceed(evolve(state, { ...failed, version: state.version + 1 }), now, policy)];
}

/** A reply arrived. Replies to anything but the current step (late, repeated) change nothing. */
export function decideReply(state: CheckoutState, reply: Reply, now: Date, policy: StepPolicy): CheckoutEvent[] {
  if (!state || state.current === null) return [];
  // The sweeper released an expired reservation before the stock was committed: the checkout
  // cannot complete, whatever step it is at.
  if (reply.kind === 'stockReleased' && reply.expired && state.status === 'RUNNING' && state.current !== 'reserveStock') {
    if (state.current === 'authorizePayment' || state.current === 'commitStock') {
      return fail(state, state.current, 'expired', 'TIMED_OUT', 'the stock reservation expired', now, policy);
    }
    return [];
  }
  if (STEP_OF[reply.kind] !== state.current) return [];
  const step = state.current;
  const at = now.toISOString();
  const succeed = (paymentId?: string): CheckoutEvent[] => {
    const done: CheckoutEvent = { type: 'CheckoutStepSucceeded', data: { step, at, ...(paymentId ? { paymentId } : {}) } };
    return [done, ...proceed(evolve(state, { ...done, version: state.version + 1 }), now, policy)];
  };
  switch (reply.kind) {
    case 'stockReservationFailed':
      return fail(state, step, reply.kind, 'OUT_OF_STOCK', 'not enough stock', now, policy, reply.lines);
    case 'paymentDeclined':
      return fail(state, step, reply.kind, 'PAYMENT_DECLINED', reply.reason, now, policy);
    case 'paymentUnavailable':
      return fail(state, step, reply.kind, 'PAYMENT_UNAVAILABLE', reply.reason, now, policy);
    case 'stockCommitFailed':
      return fail(state, step, reply.kind, 'TIMED_OUT', reply.reason, now, policy);
    case 'paymentAuthorized':
    case 'paymentCaptured':
    case 'paymentVoided':
    case 'paymentRefunded':
      return succeed(reply.paymentId);
    default:
      return succeed();
  }
}

/** The current attempt's deadline passed: try again, or (a step that may fail, out of attempts) fail. */
export function decideTimeout(state: CheckoutState, now: Date, policy: StepPolicy): CheckoutEvent[] {
  if (!state || state.current === null || state.deadline === null || state.deadline > now.toISOString()) return [];
  const step = state.current;
  const attempts = state.steps.findLast((s) => s.name === step)?.attempts ?? 1;
  if (state.status === 'RUNNING' && MAY_FAIL.has(step) && attempts >= policy.maxAttempts) {
    return fail(state, step, 'timeout', 'TIMED_OUT', `no reply after ${attempts} attempts`, now, policy);
  }
  return [start(step, attempts + 1, now, policy)];
}

/** Cancelling the order of a confirmed checkout: refund and restock. Refused (empty) otherwise. */
export function decideReverse(state: CheckoutState, now: Date, policy: StepPolicy): CheckoutEvent[] {
  if (!state || state.status !== 'CONFIRMED') return [];
  const reverse: CheckoutEvent = { type: 'CheckoutReverseStarted', data: { at: now.toISOString() } };
  return [reverse, ...proceed(evolve(state, { ...reverse, version: state.version + 1 }), now, policy)];
}

export const isTerminal = (status: CheckoutStatus): boolean => status === 'CONFIRMED' || status === 'REJECTED' || status === 'REVERSED';

export type RecordedCheckoutEvent = CheckoutEvent & { version: number };

/** The state after one more event. An event that cannot apply is a corrupt stream: it throws. */
export function evolve(state: CheckoutState, event: RecordedCheckoutEvent): Checkout {
  if (event.type === 'CheckoutStarted') {
    if (state) throw new Error(`CheckoutStarted at version ${event.version} of a checkout that exists`);
    const d = event.data;
    return {
      id: d.checkoutId,
      orderId: d.orderId,
      customerId: d.customerId,
      idempotencyKey: d.idempotencyKey,
      lines: d.lines,
      amount: d.amount,
      currency: d.currency,
      status: 'RUNNING',
      reason: null,
      outOfStock: null,
      steps: [],
      current: null,
      deadline: null,
      queue: [],
      paymentId: null,
      startedAt: d.at,
      endedAt: null,
      version: event.version,
    };
  }
  if (!state) throw new Error(`${event.type} at version ${event.version} before CheckoutStarted`);
  const next: Checkout = { ...state, version: event.version };
  switch (event.type) {
    case 'CheckoutStepStarted': {
      const { step, attempt, deadline, at } = event.data;
      const retry = attempt > 1 && state.steps.at(-1)?.name === step;
      const steps = retry
        ? state.steps.map((s, i) => (i === state.steps.length - 1 ? { ...s, attempts: attempt } : s))
        : [...state.steps, { name: step, status: 'RUNNING' as const, attempts: attempt, startedAt: at, endedAt: null, error: null }];
      return { ...next, steps, current: step, deadline, queue: state.queue.filter((q, i) => !(i === 0 && q === step)) };
    }
    case 'CheckoutStepSucceeded': {
      const { step, at, paymentId } = event.data;
      return {
        ...next,
        steps: markLast(state.steps, step, { status: 'DONE', endedAt: at }),
        current: null,
        deadline: null,
        paymentId: paymentId ?? state.paymentId,
      };
    }
    case 'CheckoutStepFailed': {
      const { step, at, error, reason, outOfStock, compensate } = event.data;
      return {
        ...next,
        steps: markLast(state.steps, step, { status: 'FAILED', endedAt: at, error }),
        status: 'COMPENSATING',
        reason,
        outOfStock: outOfStock ?? null,
        current: null,
        deadline: null,
        queue: compensate,
      };
    }
    case 'CheckoutConfirmed':
      return { ...next, status: 'CONFIRMED', current: null, deadline: null, endedAt: event.data.at };
    case 'CheckoutRejected':
      return { ...next, status: 'REJECTED', reason: event.data.reason, current: null, deadline: null, endedAt: event.data.at };
    case 'CheckoutReverseStarted':
      return { ...next, status: 'REVERSING', queue: ['refundPayment', 'restock'], endedAt: null };
    case 'CheckoutReversed':
      return { ...next, status: 'REVERSED', current: null, deadline: null, endedAt: event.data.at };
  }
}

function markLast(steps: readonly Step[], name: StepName, change: Partial<Step>): Step[] {
  const i = steps.findLastIndex((s) => s.name === name);
  return steps.map((s, j) => (j === i ? { ...s, ...change } : s));
}

/** Folds a stream into the state. */
export function replayCheckout(events: Iterable<RecordedCheckoutEvent>): CheckoutState {
  let state: CheckoutState = null;
  for (const e of events) state = evolve(state, e);
  return state;
}

/** Narrows a stored event to a checkout event; anything else is a corrupt stream. */
export function toCheckoutEvent(type: string, data: unknown, version: number): RecordedCheckoutEvent {
  if (!isCheckoutEventType(type) || typeof data !== 'object' || data === null) throw new Error(`not a checkout event: ${type}`);
  return { type, data, version } as RecordedCheckoutEvent;
}
