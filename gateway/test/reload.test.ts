import { rename, writeFile } from 'node:fs/promises';
import {
  type Fixtures,
  type GatewayUnderTest,
  type HttpResult,
  type TempDir,
  composeFixture,
  metricsText,
  query,
  seriesValue,
  startFixtures,
  startGateway,
  tempDir,
  waitFor,
} from './harness';

let fixtures: Fixtures;
let dir: TempDir;
let file: string;
let gw: GatewayUnderTest;

beforeAll(async () => {
  fixtures = await startFixtures();
  dir = await tempDir();
  file = await dir.write('supergraph.graphql', composeFixture({ withBio: false }));
  gw = await startGateway({ path: file }, fixtures);
});

afterAll(async () => {
  await gw?.stop();
  await fixtures?.stop();
  await dir?.remove();
});

const BIO = '{ authors { name bio } }';
const bioValidates = async () => {
  const { body } = await query(gw.url, BIO);
  return body.errors === undefined ? body : undefined;
};
const reloads = async (result: 'success' | 'failure') =>
  seriesValue(await metricsText(gw.url), `gateway_supergraph_reloads_total{result="${result}"}`);

describe('a rewritten supergraph file', () => {
  it('is picked up while concurrent requests all succeed', async () => {
    const before = await query(gw.url, BIO);
    expect(before.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');

    // Keep requests in flight across the swap: books answers slowly, four clients loop.
    fixtures.control.booksLatencyMs = 15;
    const results: (HttpResult & { start: number; end: number })[] = [];
    let swappedAt = Number.NaN;
    const unsubscribe = gw.gateway.gateway.onSchemaLoadOrUpdate(() => {
      swappedAt = performance.now();
    });
    let done = false;
    const client = async () => {
      while (!done) {
        const start = performance.now();
        const result = await query(gw.url, '{ books { title author { name } } }');
        results.push({ ...result, start, end: performance.now() });
      }
    };
    const clients = Array.from({ length: 4 }, client);
    try {
      await waitFor('a few requests before the rewrite', async () => results.length >= 8);
      await writeFile(file, composeFixture({ withBio: true }));
      const after = await waitFor('the new field to validate', bioValidates);
      expect(after.data?.authors).toEqual([
        { name: 'Ada', bio: 'Counts things' },
        { name: 'Grace', bio: 'Debugs things' },
        { name: 'Linus', bio: 'Merges things' },
      ]);
      const countAtSwap = results.length;
      await waitFor('requests after the swap', async () => results.length >= countAtSwap + 8);
    } finally {
      done = true;
      await Promise.all(clients);
      unsubscribe();
      fixtures.control.booksLatencyMs = 0;
    }
    // Some requests were in flight when the schema swapped, and they completed normally.
    expect(results.filter((r) => r.start < swappedAt && r.end > swappedAt).length).toBeGreaterThan(0);
    expect(results.length).toBeGreaterThanOrEqual(16);
    const failed = results.filter((r) => r.status !== 200 || r.body.errors !== undefined);
    expect(failed).toEqual([]);
    expect(await reloads('success')).toBe(1);
  });

  it('that is invalid is refused, and the previous supergraph keeps serving', async () => {
    const failuresBefore = await reloads('failure');
    await writeFile(file, 'this is not a supergraph');
    await waitFor('the failed reload', async () => (await reloads('failure')) > failuresBefore);
    expect(await bioValidates()).toBeDefined();

    // Valid GraphQL, but not a supergraph: no @link, no join__Graph.
    await writeFile(file, 'type Query { authors: [String] }');
    await waitFor('the second failed reload', async () => (await reloads('failure')) > failuresBefore + 1);
    expect(await bioValidates()).toBeDefined();
    expect((await query(gw.url, '{ books { title author { name } } }')).body.errors).toBeUndefined();
    expect(gw.gateway.supergraphSdl()).toContain('bio: String');
  });

  it('replaced by a rename (an atomic write) is picked up too', async () => {
    const staged = await dir.write('supergraph.graphql.tmp', composeFixture({ withBio: false }));
    await rename(staged, file);
    await waitFor('bio to be gone', async () => {
      const { body } = await query(gw.url, BIO);
      return body.errors?.[0]?.extensions?.code === 'GRAPHQL_VALIDATION_FAILED';
    });
    expect((await query(gw.url, '{ books { title author { name } } }')).body.errors).toBeUndefined();
  });
});
