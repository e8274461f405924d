import type { GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import { GraphQLDataSourceRequestKind } from '@apollo/gateway/dist/datasources/types';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { GraphQLError, graphql, parse } from 'graphql';
import { openCacheStore } from '@shop/cache';
import { metricValue } from '@shop/telemetry';
import {
  BatchingDataSource,
  EntityCache,
  type FetchLayers,
  type Transport,
  allLayersOff,
  allLayersOn,
  stableStringify,
} from '../src/fetch';
import { EVERYTHING_CHANGED } from '../src/fetch/evict-after-mutation';
import { generationKey } from '../src/fetch/generations';
import { silentTelemetry } from './harness';

const ENTITIES = 'query($representations:[_Any!]!){_entities(representations:$representations){...on User{name}}}';

interface Sent {
  query: string;
  variables: { representations?: Array<{ id: string }> } & Record<string, unknown>;
}

/**
 * A transport that records what it was sent and answers users by id after a turn of the event
 * loop, like a real subgraph would; user "bad" gets a FORBIDDEN error at its own position.
 */
function fakeTransport(cacheControl = 'max-age=60, public') {
  const sent: Sent[] = [];
  const transport: Transport = {
    async post(_url, body) {
      const request = JSON.parse(body) as Sent;
      sent.push(request);
      await new Promise((resolve) => setImmediate(resolve));
      const reps = request.variables.representations;
      if (!reps) return { status: 200, cacheControl, contentType: 'application/json', body: { data: { echo: request.variables } } };
      const errors = reps.flatMap((r, i) =>
        r.id === 'bad' ? [{ message: 'no', path: ['_entities', i, 'name'], extensions: { code: 'FORBIDDEN' } }] : [],
      );
      return {
        status: 200,
        cacheControl,
        contentType: 'application/json',
        body: {
          data: { _entities: reps.map((r) => (r.id === 'gone' ? null : { name: r.id === 'bad' ? null : `user ${r.id}` })) },
          ...(errors.length ? { errors } : {}),
        },
      };
    },
    close: async () => {},
  };
  return { transport, sent };
}

function options(query: string, variables: Record<string, unknown>): GraphQLDataSourceProcessOptions<Record<string, unknown>> {
  return {
    kind: GraphQLDataSourceRequestKind.INCOMING_OPERATION,
    request: { query, variables },
    context: { requestId: 'r1' },
    incomingRequestContext: { overallCachePolicy: undefined } as never,
  };
}

function source(layers: FetchLayers, withCache = false, cacheControl?: string, ttlByType: Record<string, number> = {}) {
  const telemetry = silentTelemetry('gateway');
  const fake = fakeTransport(cacheControl);
  const store = withCache ? openCacheStore({ telemetry }) : undefined;
  const entityCache = store ? new EntityCache({ cache: store.cache('entity'), metrics: telemetry.metrics, ttlByType }) : undefined;
  const mutations: unknown[] = [];
  const ds = new BatchingDataSource<Record<string, unknown>>('users', 'http://users.invalid/graphql', {
    transport: fake.transport,
    metrics: telemetry.metrics,
    logger: telemetry.logger,
    layers,
    entityCache,
    onMutation: async (entities) => void mutations.push(...entities),
    timeoutMs: 1000,
  });
  const reps = (...ids: string[]) => ids.map((id) => ({ __typename: 'User', id }));
  const fetchUsers = (...ids: string[]) => ds.process(options(ENTITIES, { representations: reps(...ids) }));
  return { ds, sent: fake.sent, telemetry, store, entityCache, mutations, fetchUsers };
}

describe('BatchingDataSource', () => {
  it('sends each distinct representation once and fans results back to every position', async () => {
    const { sent, fetchUsers, telemetry } = source(allLayersOn);
    const res = await fetchUsers('1', '2', '1', '3', '2', '1');
    expect(sent).toHaveLength(1);
    expect(sent[0]?.variables.representations?.map((r) => r.id)).toEqual(['1', '2', '3']);
    expect(res.data?._entities).toEqual(['1', '2', '1', '3', '2', '1'].map((id) => ({ name: `user ${id}` })));
    expect(await metricValue(telemetry.metrics.entityRepresentations, { subgraph: 'users' })).toBe(3);
  });

  it('with dedupe off sends every occurrence', async () => {
    const { sent, fetchUsers } = source(allLayersOff);
    await fetchUsers('1', '2', '1');
    expect(sent[0]?.variables.representations?.map((r) => r.id)).toEqual(['1', '2', '1']);
  });

  it('puts an error at every position of the representation that failed, and keeps nulls', async () => {
    for (const layers of [allLayersOn, allLayersOff]) {
      const { fetchUsers } = source(layers);
      const res = await fetchUsers('1', 'bad', 'gone', 'bad');
      expect(res.data?._entities).toEqual([{ name: 'user 1' }, { name: null }, null, { name: null }]);
      expect(res.errors?.map((e) => e.path)).toEqual([
        ['_entities', 1, 'name'],
        ['_entities', 3, 'name'],
      ]);
      expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    }
  });

  it('merges concurrent fetches of one selection into one request, deduplicated across callers', async () => {
    const { sent, fetchUsers } = source(allLayersOn);
    const [a, b, c] = await Promise.all([fetchUsers('1', '2'), fetchUsers('2', '3'), fetchUsers('bad', '1')]);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.variables.representations?.map((r) => r.id)).toEqual(['1', '2', '3', 'bad']);
    expect(a.data?._entities).toEqual([{ name: 'user 1' }, { name: 'user 2' }]);
    expect(b.data?._entities).toEqual([{ name: 'user 2' }, { name: 'user 3' }]);
    expect(c.errors?.map((e) => e.path)).toEqual([['_entities', 0, 'name']]);
    expect(a.errors).toBeUndefined();
  });

  it('without merging, concurrent fetches stay separate', async () => {
    const { sent, fetchUsers } = source({ ...allLayersOn, merge: false });
    await Promise.all([fetchUsers('1'), fetchUsers('2')]);
    expect(sent).toHaveLength(2);
  });

  it('shares one request among identical concurrent queries, but never mutations', async () => {
    const { ds, sent, mutations } = source(allLayersOn);
    const q = 'query{me{id}}';
    await Promise.all([ds.process(options(q, {})), ds.process(options(q, {})), ds.process(options(q, { other: 1 }))]);
    expect(sent).toHaveLength(2);
    const m = 'mutation{touch{id}}';
    await Promise.all([ds.process(options(m, {})), ds.process(options(m, {}))]);
    expect(sent).toHaveLength(4);
    // The echo names no entity and declares nothing (no extensions.invalidate): anything may have changed.
    expect(mutations).toEqual([EVERYTHING_CHANGED, EVERYTHING_CHANGED]);
  });

  it('answers warm representations from the entity cache and only sends misses', async () => {
    const { sent, fetchUsers, telemetry } = source(allLayersOn, true);
    await fetchUsers('1', '2');
    const res = await fetchUsers('1', '2', '3');
    expect(res.data?._entities).toEqual([{ name: 'user 1' }, { name: 'user 2' }, { name: 'user 3' }]);
    expect(sent.map((s) => s.variables.representations?.map((r) => r.id))).toEqual([['1', '2'], ['3']]);
    expect(await metricValue(telemetry.metrics.cacheRequests, { cache: 'entity', result: 'hit' })).toBe(2);
  });

  it('does not cache entities from a response with errors, nor PRIVATE or uncacheable data', async () => {
    const withErrors = source(allLayersOn, true);
    await withErrors.fetchUsers('1', 'bad');
    await withErrors.fetchUsers('1');
    expect(withErrors.sent).toHaveLength(2);

    for (const header of ['max-age=60, private', 'no-store', '']) {
      const s = source(allLayersOn, true, header);
      await s.fetchUsers('1');
      await s.fetchUsers('1');
      expect(s.sent).toHaveLength(2);
    }
  });

  it('uses the configured TTL for a type whose subgraph sends no max-age, but never for PRIVATE data', async () => {
    const configured = source(allLayersOn, true, '', { User: 60 });
    await configured.fetchUsers('1');
    await configured.fetchUsers('1');
    expect(configured.sent).toHaveLength(1);
    const privateData = source(allLayersOn, true, 'private', { User: 60 });
    await privateData.fetchUsers('1');
    await privateData.fetchUsers('1');
    expect(privateData.sent).toHaveLength(2);
    // Apollo's subgraphs say no-store for data without max-age, PRIVATE data among it (the scope
    // is not in the header then): the configured TTL does not override it.
    const noStore = source(allLayersOn, true, 'no-store', { User: 60 });
    await noStore.fetchUsers('1');
    await noStore.fetchUsers('1');
    expect(noStore.sent).toHaveLength(2);
  });

  it('evicts an entity by type and id, in every selection', async () => {
    const { sent, fetchUsers, entityCache } = source(allLayersOn, true);
    await fetchUsers('1', '2');
    await entityCache?.evict([{ typename: 'User', id: '1' }]);
    await fetchUsers('1', '2');
    expect(sent.map((s) => s.variables.representations?.map((r) => r.id))).toEqual([['1', '2'], ['1']]);
    await entityCache?.evictSubgraph('users');
    await fetchUsers('1', '2');
    expect(sent.at(-1)?.variables.representations?.map((r) => r.id)).toEqual(['1', '2']);
  });
});

describe('a generation lost after a bump (evicted under memory pressure, or expired)', () => {
  it('retires an entity kept before the write: "no generation" is never recorded', async () => {
    const { sent, fetchUsers, store, entityCache } = source(allLayersOn, true);
    await fetchUsers('1');
    await fetchUsers('1');
    expect(sent).toHaveLength(1);
    await entityCache?.generations.bump(['User:1']);
    await store?.cache('entity').delete(generationKey('User:1'));
    // Had the entry recorded "none" (it was stored before any write to User 1), the lost
    // generation would read "none" again and the pre-write entry would be served.
    await fetchUsers('1');
    expect(sent).toHaveLength(2);
    // Stored again under a fresh generation, and served from there.
    await fetchUsers('1');
    expect(sent).toHaveLength(2);
  });

  it('gives an entity without a generation a fresh one before its fetch, so a write after the fetch began retires it', async () => {
    const { sent, fetchUsers, entityCache } = source(allLayersOn, true);
    const generations = entityCache?.generations;
    if (!generations) throw new Error('no entity cache');
    const fill = generations.fill.bind(generations);
    const sentAtFill: number[] = [];
    generations.fill = async (keys) => {
      sentAtFill.push(sent.length);
      return fill(keys);
    };
    await fetchUsers('1');
    // Filled once (the entity's and the subgraph's generation), before anything was sent.
    expect(sentAtFill).toEqual([0]);
    await fetchUsers('1');
    expect(sent).toHaveLength(1);
    expect(sentAtFill).toEqual([0]);
  });
});

describe('stableStringify', () => {
  it('is JSON with object keys sorted at every depth, undefined members left out, array order kept', () => {
    const a = { id: '1', __typename: 'User', key: { b: [2, { y: 1, x: null }], a: 'é"' }, gone: undefined };
    const b = { key: { a: 'é"', b: [2, { x: null, y: 1 }] }, __typename: 'User', id: '1' };
    expect(stableStringify(a)).toBe(stableStringify(b));
    expect(stableStringify(a)).toBe('{"__typename":"User","id":"1","key":{"a":"é\\"","b":[2,{"x":null,"y":1}]}}');
    expect(JSON.parse(stableStringify(a))).toEqual(b);
    expect(stableStringify([1, [2, 3]])).not.toBe(stableStringify([1, [3, 2]]));
    // A type and an id, the usual representation, the same way as any other object.
    for (const rep of [
      { __typename: 'User', id: 'u"1' },
      { __typename: 'User', id: 7 },
      { __typename: 'User', id: 1.5e300 },
    ]) {
      expect(stableStringify(rep)).toBe(JSON.stringify(rep));
      expect(stableStringify({ id: rep.id, __typename: rep.__typename })).toBe(JSON.stringify(rep));
    }
    expect(stableStringify({ __typename: 'User', id: { a: 1 } })).toBe('{"__typename":"User","id":{"a":1}}');
    // Keys that are not GraphQL names are escaped as JSON escapes them.
    expect(stableStringify({ 'we"ird': 1, 'a b': { '\n': 2 } })).toBe('{"a b":{"\\n":2},"we\\"ird":1}');
    expect([stableStringify(null), stableStringify(undefined), stableStringify('s'), stableStringify(2), stableStringify({})]).toEqual([
      'null',
      'null',
      '"s"',
      '2',
      '{}',
    ]);
  });
});

/**
 * A transport in front of a real federation subgraph (graphql-js executes whatever document it is
 * sent, combined ones included), recording each request. User "bad" has an email that fails
 * with FORBIDDEN; `refuse` answers any document it matches as a subgraph's limit would (400).
 */
function subgraphTransport(refuse?: RegExp) {
  const schema = buildSubgraphSchema({
    typeDefs: parse(`
      extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])
      type User @key(fields: "id") { id: ID! name: String! email: String profile: Profile! }
      type Profile { bio: String! }
      type Query { noop: Int }
    `),
    resolvers: {
      User: {
        __resolveReference: (ref: { id: string }) => ({ id: ref.id }),
        name: (u: { id: string }) => `user ${u.id}`,
        email: (u: { id: string }) => {
          if (u.id === 'bad') throw new GraphQLError('private', { extensions: { code: 'FORBIDDEN' } });
          return `${u.id}@example.com`;
        },
        profile: (u: { id: string }) => ({ bio: `bio of ${u.id}` }),
      },
    },
  });
  const sent: Sent[] = [];
  const transport: Transport = {
    async post(_url, body) {
      const request = JSON.parse(body) as Sent;
      sent.push(request);
      await new Promise((resolve) => setImmediate(resolve));
      if (refuse?.test(request.query)) {
        const errors = [{ message: 'too many aliases', extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }];
        return { status: 400, cacheControl: undefined, contentType: 'application/json', body: { errors } };
      }
      const result = await graphql({ schema, source: request.query, variableValues: request.variables });
      return {
        status: 200,
        cacheControl: 'max-age=60, public',
        contentType: 'application/json',
        body: JSON.parse(JSON.stringify(result)) as unknown,
      };
    },
    close: async () => {},
  };
  return { transport, sent };
}

/** Entity selections as the planner writes them: each fetch node's operation named apart. */
const NAME = (op: string) => `query ${op}($representations:[_Any!]!){_entities(representations:$representations){...on User{name}}}`;
const EMAIL = (op: string) => `query ${op}($representations:[_Any!]!){_entities(representations:$representations){...on User{email}}}`;
const PROFILE = (op: string) =>
  `query ${op}($representations:[_Any!]!,$withBio:Boolean!){_entities(representations:$representations){...on User{...P}}} fragment P on User{profile{bio @include(if:$withBio)}}`;

function realSource(layers: FetchLayers, refuse?: RegExp) {
  const telemetry = silentTelemetry('gateway');
  const fake = subgraphTransport(refuse);
  const ds = new BatchingDataSource<Record<string, unknown>>('users', 'http://users.invalid/graphql', {
    transport: fake.transport,
    metrics: telemetry.metrics,
    logger: telemetry.logger,
    layers,
    timeoutMs: 1000,
  });
  /** One client request's context: fetches given the same one are one client request's. */
  const client = () => ({ requestId: 'r' });
  const fetch = (query: string, ids: string[], context: object = client(), more: Record<string, unknown> = {}) =>
    ds.process({
      kind: GraphQLDataSourceRequestKind.INCOMING_OPERATION,
      request: { query, variables: { representations: ids.map((id) => ({ __typename: 'User', id })), ...more } },
      context: context as Record<string, unknown>,
      incomingRequestContext: { overallCachePolicy: undefined } as never,
    });
  return { sent: fake.sent, telemetry, fetch, client };
}

describe('fetches of other selections and other plan nodes', () => {
  it('sends the fetches of several selections issued in one turn as one request, each answer and error in its place', async () => {
    const { sent, fetch, telemetry } = realSource(allLayersOn);
    const [names, emails, profiles] = await Promise.all([
      fetch(NAME('Q__users__1'), ['1', '2']),
      fetch(EMAIL('Q__users__2'), ['bad', '2', '3']),
      fetch(PROFILE('Q__users__3'), ['3'], undefined, { withBio: true }),
    ]);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.query).toMatch(/p0:_entities.*p1:_entities.*p2:_entities/);
    expect(names.data?._entities).toEqual([{ name: 'user 1' }, { name: 'user 2' }]);
    expect(names.errors).toBeUndefined();
    expect(emails.data?._entities).toEqual([{ email: null }, { email: '2@example.com' }, { email: '3@example.com' }]);
    expect(emails.errors?.map((e) => [e.path, e.extensions?.code])).toEqual([[['_entities', 0, 'email'], 'FORBIDDEN']]);
    expect(profiles.data?._entities).toEqual([{ profile: { bio: 'bio of 3' } }]);
    expect(await metricValue(telemetry.metrics.entityRepresentations, { subgraph: 'users' })).toBe(6);
    expect(await metricValue(telemetry.metrics.subgraphRequests, { subgraph: 'users' })).toBe(1);
  });

  it('one selection under two operation names is one selection: one list, each representation once', async () => {
    const { sent, fetch } = realSource(allLayersOn);
    const [a, b] = await Promise.all([fetch(NAME('Q__users__1'), ['1', '2']), fetch(NAME('Q__users__4'), ['2', '3'])]);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.variables.representations?.map((r) => r.id)).toEqual(['1', '2', '3']);
    expect([a.data?._entities, b.data?._entities]).toEqual([
      [{ name: 'user 1' }, { name: 'user 2' }],
      [{ name: 'user 2' }, { name: 'user 3' }],
    ]);
  });

  it('the same selection with other variables is another part, its variables its own', async () => {
    const { sent, fetch } = realSource(allLayersOn);
    const [bio, none] = await Promise.all([
      fetch(PROFILE('Q__users__1'), ['1'], undefined, { withBio: true }),
      fetch(PROFILE('Q__users__1'), ['1'], undefined, { withBio: false }),
    ]);
    expect(sent).toHaveLength(1);
    expect(bio.data?._entities).toEqual([{ profile: { bio: 'bio of 1' } }]);
    expect(none.data?._entities).toEqual([{ profile: {} }]);
  });

  it('a subgraph that refuses the combined document gets each part alone', async () => {
    const { sent, fetch } = realSource(allLayersOn, /p1:_entities/);
    const [names, emails] = await Promise.all([fetch(NAME('Q__users__1'), ['1']), fetch(EMAIL('Q__users__2'), ['2'])]);
    expect(sent).toHaveLength(3);
    expect(names.data?._entities).toEqual([{ name: 'user 1' }]);
    expect(emails.data?._entities).toEqual([{ email: '2@example.com' }]);
  });

  it('within one client request, an entity fetched by an earlier plan node is not fetched again', async () => {
    const { sent, fetch, client, telemetry } = realSource(allLayersOn);
    const request = client();
    const first = await fetch(PROFILE('Q__users__1'), ['1', '2'], request, { withBio: true });
    const again = await fetch(PROFILE('Q__users__5'), ['2', '3', '1'], request, { withBio: true });
    expect(sent.map((s) => s.variables.representations?.map((r) => r.id))).toEqual([['1', '2'], ['3']]);
    expect(again.data?._entities).toEqual(['2', '3', '1'].map((id) => ({ profile: { bio: `bio of ${id}` } })));
    expect(await metricValue(telemetry.metrics.cacheRequests, { cache: 'request', result: 'hit' })).toBe(2);
    // Each reader has its own objects: the gateway writes into them.
    const firstList = first.data?._entities as Array<{ profile: { bio: string } }>;
    const againList = again.data?._entities as Array<{ profile: { bio: string } }>;
    expect(againList[0]?.profile).not.toBe(firstList[1]?.profile);
    (firstList[1] as { profile: { bio: string } }).profile.bio = 'written by the gateway';
    const third = await fetch(PROFILE('Q__users__6'), ['2'], request, { withBio: true });
    expect(third.data?._entities).toEqual([{ profile: { bio: 'bio of 2' } }]);
    expect(sent).toHaveLength(2);

    // Another client request fetches for itself.
    await fetch(PROFILE('Q__users__1'), ['1'], client(), { withBio: true });
    expect(sent).toHaveLength(3);
  });

  it('a fetch waits for the same entity in flight for its client request, and an entity that failed is asked again', async () => {
    const { sent, fetch, client } = realSource({ ...allLayersOn, merge: false });
    const request = client();
    const [a, b] = await Promise.all([
      fetch(EMAIL('Q__users__1'), ['1', 'bad'], request),
      fetch(EMAIL('Q__users__2'), ['1', '2'], request),
    ]);
    expect(sent.map((s) => s.variables.representations?.map((r) => r.id))).toEqual([['1', 'bad'], ['2']]);
    expect(a.errors?.map((e) => e.path)).toEqual([['_entities', 1, 'email']]);
    expect(b.errors).toBeUndefined();
    expect(b.data?._entities).toEqual([{ email: '1@example.com' }, { email: '2@example.com' }]);
    const again = await fetch(EMAIL('Q__users__3'), ['bad', '1'], request);
    expect(sent.at(-1)?.variables.representations?.map((r) => r.id)).toEqual(['bad']);
    expect(again.errors?.map((e) => e.path)).toEqual([['_entities', 0, 'email']]);
  });
});
