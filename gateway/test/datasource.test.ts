import type { GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import { GraphQLDataSourceRequestKind } from '@apollo/gateway/dist/datasources/types';
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
  return { ds, sent: fake.sent, telemetry, entityCache, mutations, fetchUsers };
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
    expect(mutations).toEqual([]); // the echo carries no entities
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

describe('stableStringify', () => {
  it('is JSON with object keys sorted at every depth, undefined members left out, array order kept', () => {
    const a = { id: '1', __typename: 'User', key: { b: [2, { y: 1, x: null }], a: 'é"' }, gone: undefined };
    const b = { key: { a: 'é"', b: [2, { x: null, y: 1 }] }, __typename: 'User', id: '1' };
    expect(stableStringify(a)).toBe(stableStringify(b));
    expect(stableStringify(a)).toBe('{"__typename":"User","id":"1","key":{"a":"é\\"","b":[2,{"x":null,"y":1}]}}');
    expect(JSON.parse(stableStringify(a))).toEqual(b);
    expect(stableStringify([1, [2, 3]])).not.toBe(stableStringify([1, [3, 2]]));
    expect([stableStringify(null), stableStringify(undefined), stableStringify('s'), stableStringify(2), stableStringify({})]).toEqual([
      'null',
      'null',
      '"s"',
      '2',
      '{}',
    ]);
  });
});
