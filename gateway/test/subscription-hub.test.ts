// The subscription hub without a server: a stand-in for Apollo Server answers each run, so the
// hub's own rules are what is tested: caps (per connection, per user, per replica), events held
// while a subscription is checked, one event at a time per subscriber in bus order, a repeated or
// older version skipped, a subscriber too far behind ended with SLOW_CONSUMER, and a drain.
import type { ApolloServer } from '@apollo/server';
import pino from 'pino';
import {
  type HubEvent,
  type HubLimits,
  SLOW_CONSUMER,
  SHUTTING_DOWN,
  SUBSCRIPTION_LIMIT,
  SubscriptionHub,
  type Subscriber,
} from '../src/subscriptions/hub';
import { eventTopicsOf } from '../src/subscriptions/topics';
import type { SubscriptionPhase } from '../src/execute';

const SDL = `
schema @link(url: "https://specs.apollo.dev/link/v1.0") @link(url: "https://specs.shop.dev/events/v0.1", import: ["@fromEvents"]) { query: Query subscription: Subscription }
directive @link(url: String, as: String, for: String, import: [String]) repeatable on SCHEMA
directive @fromEvents(types: [String!]!, match: String! = "aggregateId", arg: String! = "id") on FIELD_DEFINITION
type Query { a: Int }
type Subscription { orderUpdated(id: ID!): Int @fromEvents(types: ["OrderLineAdded"], match: "aggregateId", arg: "id") }
`;
const QUERY = 'subscription ($id: ID!) { orderUpdated(id: $id) }';
const logger = pino({ level: 'silent' });

/** A stand-in for Apollo Server: the check waits for `releaseChecks` when asked to; each event run answers its version. */
function fakeApollo(options: { holdChecks?: boolean; eventRun?: () => Promise<void> } = {}) {
  let release: () => void = () => undefined;
  const checksReleased = new Promise<void>((resolve) => (release = resolve));
  const runs: number[] = [];
  const apollo = {
    executeOperation: async (_request: unknown, { contextValue }: { contextValue: { subscription?: SubscriptionPhase } }) => {
      const phase = contextValue.subscription;
      if (phase?.phase === 'check') {
        if (options.holdChecks) await checksReleased;
        return { body: { kind: 'single', singleResult: { data: null } } };
      }
      if (phase?.phase === 'event') {
        await options.eventRun?.();
        runs.push(phase.event.aggregateVersion);
        return { body: { kind: 'single', singleResult: { data: { orderUpdated: phase.event.aggregateVersion } } } };
      }
      return { body: { kind: 'single', singleResult: { data: { a: 1 } } } };
    },
  };
  return { apollo: apollo as unknown as ApolloServer<never>, release, runs };
}

function hubOf(apollo: ApolloServer<never>, limits: Partial<HubLimits> = {}) {
  const topics = eventTopicsOf(SDL);
  return new SubscriptionHub({ apollo, logger, topics: () => topics, limits, contextFor: (_s, _r, phase) => ({ subscription: phase }) });
}

const subscriber = (user: string | undefined, connection = { id: `c-${Math.random()}`, active: 0 }): Subscriber => ({
  identity: user ? { sub: user, roles: ['customer'], scopes: [] } : undefined,
  connection,
  logger,
});
const event = (id: string, version: number): HubEvent => ({
  id: `${id}-${version}`,
  type: 'OrderLineAdded',
  source: 'orders',
  aggregateId: id,
  aggregateVersion: version,
  payload: { version },
});

async function take(
  stream: AsyncIterator<{ data?: unknown; errors?: ReadonlyArray<{ extensions?: Record<string, unknown> }> }>,
  n: number,
) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const step = await stream.next();
    if (step.done) break;
    out.push(step.value);
  }
  return out;
}

describe('the subscription hub', () => {
  it('caps subscriptions per connection, per user and per replica, with SUBSCRIPTION_LIMIT', async () => {
    const hub = hubOf(fakeApollo().apollo, { perConnection: 2, perUser: 3, total: 4 });
    const connection = { id: 'one', active: 0 };
    const codes = async (s: Subscriber, id: string) => {
      const outcome = await hub.subscribe({ query: QUERY, variables: { id } }, s);
      return outcome.ok ? 'ok' : outcome.errors.map((e) => e.extensions.code).join();
    };
    expect([await codes(subscriber('a', connection), 'o1'), await codes(subscriber('a', connection), 'o2')]).toEqual(['ok', 'ok']);
    expect(await codes(subscriber('a', connection), 'o3')).toBe(SUBSCRIPTION_LIMIT); // the connection's third
    expect(await codes(subscriber('a'), 'o3')).toBe('ok'); // the user's third, on another connection
    expect(await codes(subscriber('a'), 'o4')).toBe(SUBSCRIPTION_LIMIT); // the user's fourth
    expect(await codes(subscriber('b'), 'o4')).toBe('ok'); // the replica's fourth
    expect(await codes(subscriber('c'), 'o5')).toBe(SUBSCRIPTION_LIMIT); // the replica's fifth
    expect(hub.active).toBe(4);
  });

  it('holds the events that arrive while a subscription is checked, then runs each once, in order', async () => {
    const fake = fakeApollo({ holdChecks: true });
    const hub = hubOf(fake.apollo);
    const pending = hub.subscribe({ query: QUERY, variables: { id: 'o1' } }, subscriber('a'));
    // Registered, not yet checked: not active, but its events are kept.
    await new Promise((resolve) => setImmediate(resolve));
    expect(hub.active).toBe(0);
    await hub.onEvent(event('o1', 2));
    await hub.onEvent(event('o2', 2)); // another order's: not this subscriber's
    fake.release();
    const outcome = await pending;
    if (!outcome.ok) throw new Error('refused');
    expect(hub.active).toBe(1);
    await hub.onEvent(event('o1', 3));
    await hub.onEvent(event('o1', 3)); // redelivered
    await hub.onEvent(event('o1', 2)); // older
    await hub.onEvent(event('o1', 4));
    const results = await take(outcome.stream, 3);
    expect(results.map((r) => r.data)).toEqual([{ orderUpdated: 2 }, { orderUpdated: 3 }, { orderUpdated: 4 }]);
    expect(fake.runs).toEqual([2, 3, 4]);
    await outcome.stream.return();
    expect(hub.active).toBe(0);
  });

  it('runs one event at a time per subscriber, whatever their pace', async () => {
    let running = 0;
    let most = 0;
    const fake = fakeApollo({
      eventRun: async () => {
        most = Math.max(most, ++running);
        await new Promise((resolve) => setTimeout(resolve, 5));
        running--;
      },
    });
    const hub = hubOf(fake.apollo);
    const outcome = await hub.subscribe({ query: QUERY, variables: { id: 'o1' } }, subscriber('a'));
    if (!outcome.ok) throw new Error('refused');
    for (let v = 2; v <= 11; v++) await hub.onEvent(event('o1', v));
    const results = await take(outcome.stream, 10);
    expect(results.map((r) => r.data)).toEqual(Array.from({ length: 10 }, (_, i) => ({ orderUpdated: i + 2 })));
    expect(most).toBe(1);
  });

  it('ends a subscriber that falls more than its queue behind with SLOW_CONSUMER', async () => {
    const hub = hubOf(fakeApollo().apollo, { queue: 3 });
    const outcome = await hub.subscribe({ query: QUERY, variables: { id: 'o1' } }, subscriber('a'));
    if (!outcome.ok) throw new Error('refused');
    // Nobody reads: the fourth event finds three waiting.
    for (let v = 2; v <= 5; v++) await hub.onEvent(event('o1', v));
    const results = await take(outcome.stream, 10);
    expect(results.at(-1)?.errors?.map((e) => e.extensions?.code)).toEqual([SLOW_CONSUMER]);
    expect((await outcome.stream.next()).done).toBe(true);
    expect(hub.active).toBe(0);
  });

  it('ends every subscription with SHUTTING_DOWN on closeAll, and refuses new ones', async () => {
    const hub = hubOf(fakeApollo().apollo);
    const outcome = await hub.subscribe({ query: QUERY, variables: { id: 'o1' } }, subscriber('a'));
    if (!outcome.ok) throw new Error('refused');
    const reading = take(outcome.stream, 5);
    await hub.closeAll('restarting', SHUTTING_DOWN);
    expect((await reading).map((r) => r.errors?.map((e) => e.extensions?.code))).toEqual([[SHUTTING_DOWN]]);
    const late = await hub.subscribe({ query: QUERY, variables: { id: 'o2' } }, subscriber('a'));
    expect(late.ok ? 'ok' : late.errors.map((e) => e.extensions.code)).toEqual([SHUTTING_DOWN]);
    expect(hub.active).toBe(0);
  });
});
