// The response cache and in-flight sharing across writes, on the fixture subgraphs (no cache
// hints: every root field is kept by `responseCacheTtl`).
import { parse } from 'graphql';
import type { ApolloServerPlugin } from '@apollo/server';
import { openCacheStore } from '@shop/cache';
import { metricValue } from '@shop/telemetry';
import { eventually } from '@shop/testing';
import type { GatewayContext } from '../src/gateway';
import type { FetchRequest, FetchResponse } from '../src/fetch';
import { type ChangedEntity, EVERYTHING_CHANGED, evictAfterMutationLayer } from '../src/fetch/evict-after-mutation';
import { inflightLayer } from '../src/fetch/inflight';
import { aliasesOf, entityKeysOf } from '../src/response-cache';
import { CLOCK_KEY, generationKey } from '../src/fetch/generations';
import {
  type Fixtures,
  type GatewayUnderTest,
  type TempDir,
  composeFixture,
  fetchRequest,
  query,
  silentTelemetry,
  startFixtures,
  startGateway,
  tempDir,
} from './harness';

let fixtures: Fixtures;
let dir: TempDir;
let file: string;

beforeAll(async () => {
  fixtures = await startFixtures();
  dir = await tempDir();
  file = await dir.write('supergraph.graphql', composeFixture());
});

afterAll(async () => {
  await fixtures?.stop();
  await dir?.remove();
});

async function requestsDuring(gw: GatewayUnderTest, run: () => Promise<unknown>): Promise<number> {
  const before = await metricValue(gw.telemetry.metrics.subgraphRequests, {});
  await run();
  return (await metricValue(gw.telemetry.metrics.subgraphRequests, {})) - before;
}

describe('a write while a response is being made', () => {
  let gw: GatewayUnderTest;
  /** When set, the next execution waits for it before running: a write lands meanwhile. */
  let during: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    const writeDuring: ApolloServerPlugin<GatewayContext> = {
      async requestDidStart() {
        return {
          async executionDidStart() {
            const write = during;
            during = undefined;
            await write?.();
          },
        };
      },
    };
    gw = await startGateway({ path: file }, fixtures, {
      cacheStore: openCacheStore({ telemetry: silentTelemetry('cache') }),
      responseCacheTtl: { '*': 60 },
      plugins: [writeDuring],
    });
  });
  afterAll(() => gw?.stop());

  it('is served but not kept; the same response made without a write is kept', async () => {
    const q = '{ authors { name } }';
    // Another entity than any in the response: only the write clock can tell.
    during = () => gw.gateway.invalidate([{ typename: 'Book', id: 'not-here' }]);
    expect((await query(gw.url, q)).body.errors).toBeUndefined();
    expect(await requestsDuring(gw, () => query(gw.url, q))).toBe(1);
    // Kept by the run before (no write during it): answered without a subgraph now.
    await eventually(
      () => requestsDuring(gw, () => query(gw.url, q)),
      (n) => n === 0,
    );
    expect(await requestsDuring(gw, () => query(gw.url, q))).toBe(0);
  });
});

describe('in-flight sharing across a write', () => {
  let gw: GatewayUnderTest;
  beforeAll(async () => {
    // No cache at all: the process's own count of invalidations is what keeps the two apart.
    gw = await startGateway({ path: file }, fixtures, {});
  });
  afterAll(() => gw?.stop());

  it('never lets a request that began after a write join a subgraph request that began before it', async () => {
    let release: () => void = () => undefined;
    fixtures.control.booksHang = new Promise<void>((resolve) => (release = resolve));
    const seen = fixtures.control.requestIds.books.length;
    try {
      const first = query(gw.url, '{ books { title } }');
      await eventually(
        async () => fixtures.control.requestIds.books.length,
        (n) => n > seen,
      );
      await gw.gateway.invalidate([{ typename: 'Book', id: '1' }]);
      const second = query(gw.url, '{ books { title } }');
      // Its own request reaches the subgraph; it would have joined the first without the write.
      await eventually(
        async () => fixtures.control.requestIds.books.length,
        (n) => n > seen + 1,
      );
      expect(fixtures.control.requestIds.books.length).toBe(seen + 2);
      release();
      expect((await first).body.errors).toBeUndefined();
      expect((await second).body.errors).toBeUndefined();
    } finally {
      release();
      delete fixtures.control.booksHang;
    }
  });

  it("keys sharing on the process's count of writes and on the shared write clock", async () => {
    let writes = 0;
    const layer = inflightLayer(() => writes);
    const calls: FetchRequest[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const next = async (req: FetchRequest): Promise<FetchResponse> => {
      calls.push(req);
      await gate;
      return { body: { data: { n: calls.length } }, hint: { maxAge: 0 } };
    };
    const answers = [layer(fetchRequest(), next), layer(fetchRequest(), next)];
    expect(calls).toHaveLength(1); // nothing written: the second joined the first
    writes++;
    answers.push(layer(fetchRequest(), next));
    expect(calls).toHaveLength(2);
    answers.push(layer(fetchRequest({ freshness: 'clock-2' }), next), layer(fetchRequest({ freshness: 'clock-2' }), next));
    expect(calls).toHaveLength(3);
    release();
    await Promise.all(answers);
  });
});

describe('entity keys from the supergraph', () => {
  it('tags each entity by a one-field key every subgraph of it answers, and names the ones it cannot', () => {
    const { keys, untaggable } = entityKeysOf(composeFixture());
    expect(Object.fromEntries(keys)).toEqual({ Author: 'id', Book: 'id' });
    expect([...untaggable]).toEqual([]);
    const sdl = `
      type Edition @join__type(graph: A, key: "isbn year") @join__type(graph: B, key: "isbn year") { isbn: ID! year: Int! }
      type Person @join__type(graph: A, key: "id") @join__type(graph: B, key: "handle") {
        id: ID! @join__field(graph: A)
        handle: String!
      }
      type Money @join__type(graph: A) @join__type(graph: B) { amount: Int! }
    `;
    const parsed = entityKeysOf(sdl);
    // handle is defined in both A and B; id only in A.
    expect(Object.fromEntries(parsed.keys)).toEqual({ Person: 'handle' });
    expect([...parsed.untaggable]).toEqual(['Edition']);
  });
});

describe('what a mutation retires', () => {
  const answer = (body: FetchResponse['body']) => async (): Promise<FetchResponse> => ({ body, hint: { maxAge: 0 } });
  const changedBy = async (body: FetchResponse['body']) => {
    const calls: ChangedEntity[][] = [];
    await evictAfterMutationLayer(async (entities) => void calls.push(entities))(fetchRequest({ mutation: true }), answer(body));
    return calls;
  };

  it('retires what the answer names and what the subgraph declares', async () => {
    expect(
      await changedBy({
        data: { rename: { __typename: 'Book', id: '1' } },
        extensions: { invalidate: [{ __typename: 'Author', id: '2' }] },
      }),
    ).toEqual([
      [
        { typename: 'Book', id: '1' },
        { typename: 'Author', id: '2' },
      ],
    ]);
  });

  it('retires nothing when the subgraph declares that it changed nothing', async () => {
    expect(await changedBy({ data: { signIn: { token: 't' } }, extensions: { invalidate: [] } })).toEqual([[]]);
  });

  it('retires everything when the subgraph declares nothing and its answer names no entity', async () => {
    expect(await changedBy({ data: { touch: true } })).toEqual([[EVERYTHING_CHANGED]]);
  });
});

describe('aliasesOf', () => {
  it('counts aliases through every fragment spread, as the subgraph alias limit does, in linear time', () => {
    expect(aliasesOf(parse('{ a: product(id: "1") { n: name } b: product(id: "2") { name } }'))).toBe(3);
    expect(
      aliasesOf(parse('{ x: product(id: "1") { ...F } y: product(id: "2") { ...F } } fragment F on Product { a: name b: name }')),
    ).toBe(6);
    // 30 levels of fragments that each spread the next twice: 2^30 aliases, counted without expanding them.
    const levels = Array.from({ length: 30 }, (_, i) => `fragment F${i} on Product { a${i}: name ...F${i + 1} ...F${i + 1} }`);
    const deep = parse(`{ product(id: "1") { ...F0 } } ${levels.join(' ')} fragment F30 on Product { z: name }`);
    expect(aliasesOf(deep)).toBe(2 ** 31 - 1);
  });
});

describe('a generation lost after a bump (evicted under memory pressure, or expired)', () => {
  const cacheStore = openCacheStore({ telemetry: silentTelemetry('cache') });
  let gw: GatewayUnderTest;
  beforeAll(async () => {
    gw = await startGateway({ path: file }, fixtures, { cacheStore, responseCacheTtl: { '*': 60 } });
  });
  afterAll(() => gw?.stop());

  /** A write to the entity, then its generation gone from the store, as an eviction would leave it (the entity cache's case: datasource.test.ts). */
  const bumpThenLose = async (g: GatewayUnderTest, typename: string, id: string) => {
    await g.gateway.invalidate([{ typename, id }]);
    await cacheStore.cache('entity').delete(generationKey(`${typename}:${id}`));
  };

  it('keeps responses again once the write clock is gone (a store flushed, restarted or idle past its TTL)', async () => {
    const q = '{ author(id: "3") { name } }';
    await cacheStore.cache('entity').delete(CLOCK_KEY);
    await query(gw.url, q);
    // Without a clock, nothing would be kept until the next write renewed it.
    expect(
      await eventually(
        () => requestsDuring(gw, () => query(gw.url, q)),
        (n) => n === 0,
      ),
    ).toBe(0);
  });

  it('retires a whole response kept before the write', async () => {
    const q = '{ author(id: "2") { name } }';
    expect(
      await eventually(
        () => requestsDuring(gw, () => query(gw.url, q)),
        (n) => n === 0,
      ),
    ).toBe(0);
    await bumpThenLose(gw, 'Author', '2');
    // Had the entry recorded "no generation", the lost one would read the same and it would be served.
    expect(await requestsDuring(gw, () => query(gw.url, q))).toBe(1);
  });
});
