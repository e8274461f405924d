import { randomBytes } from 'node:crypto';
import { type SeedSizes, seedReviews } from '@shop/seed';
import { type Identity, gatewayHeaders } from '@shop/server';
import { metricValue } from '@shop/telemetry';
import { type Backend, type GraphQLClient, graphqlClient, testTelemetry } from '@shop/testing';
import { createReviews } from '../src/server';

const sizes: SeedSizes = { users: 40, products: 30, reviews: 600 };
/** The key the suite's requests are signed with, as the gateway signs them. */
const SECRET = randomBytes(32).toString('hex');
const customer = (sub: string): Identity => ({ sub, roles: ['customer'], scopes: [] });

/** reviews' behaviour, run over SQLite (reviews.test.ts) and real PostgreSQL (reviews.int.test.ts). */
export function reviewsSuite(backend: Backend): void {
  describe(`reviews on ${backend.name}`, () => {
    const telemetry = testTelemetry('reviews');
    /** Anonymous (signed, with no identity). */
    let client: GraphQLClient;
    /** As the gateway would send a request from `identity`. */
    let as: (identity: Identity) => GraphQLClient;
    let stop: () => Promise<void>;
    const storeQueries = () => metricValue(telemetry.metrics.storeQueries, { service: 'reviews' });
    const seeded = [...seedReviews(sizes)];
    /** The expected newest-first list for a parent, computed from the generator, not the store. */
    const newest = (key: 'productId' | 'authorId', id: string, n: number) =>
      seeded
        .filter((r) => r[key] === id)
        .sort((a, b) => (a.createdAt === b.createdAt ? b.id.localeCompare(a.id) : b.createdAt.localeCompare(a.createdAt)))
        .slice(0, n)
        .map((r) => r.id);

    beforeAll(async () => {
      const subgraph = await createReviews({ telemetry, store: await backend.location(), seed: sizes, pageMax: 50 });
      const url = `${(await subgraph.listen(0, '127.0.0.1', { gatewaySecret: SECRET })).url}/graphql`;
      client = graphqlClient(url, { sign: (body) => gatewayHeaders(SECRET, url, body) });
      as = (identity) => graphqlClient(url, { sign: (body) => gatewayHeaders(SECRET, url, body, { identity }) });
      stop = () => subgraph.stop();
    });
    afterAll(async () => {
      await stop?.();
      await backend.cleanup();
    });

    const entitiesQuery = (type: 'Product' | 'User') =>
      `query($r: [_Any!]!, $n: Int) { _entities(representations: $r) { ... on ${type} { id reviews(first: $n) { id rating author { id } product { id } } } } }`;
    type Entities = { _entities: Array<{ id: string; reviews: Array<{ id: string; author: { id: string }; product: { id: string } }> }> };

    it("lists each product's newest reviews for many products in one store round trip", async () => {
      const ids = Array.from({ length: 30 }, (_, i) => `p${String(i + 1).padStart(5, '0')}`);
      const before = await storeQueries();
      const res = await client.query<Entities>(entitiesQuery('Product'), { r: ids.map((id) => ({ __typename: 'Product', id })), n: 5 });
      expect(res.errors).toBeUndefined();
      expect((await storeQueries()) - before).toBe(1);
      const lists = res.data!._entities;
      ids.forEach((id, i) => {
        expect(lists[i]?.reviews.map((r) => r.id)).toEqual(newest('productId', id, 5));
        expect(lists[i]?.reviews.every((r) => r.product.id === id)).toBe(true);
      });
      // The skew is real: the first product has far more reviews than it returns.
      expect(seeded.filter((r) => r.productId === 'p00001').length).toBeGreaterThan(50);
    });

    it("lists a user's reviews newest first", async () => {
      const res = await client.query<Entities>(entitiesQuery('User'), {
        r: [
          { __typename: 'User', id: 'u00001' },
          { __typename: 'User', id: 'nobody' },
        ],
        n: 3,
      });
      expect(res.errors).toBeUndefined();
      expect(res.data!._entities[0]?.reviews.map((r) => r.id)).toEqual(newest('authorId', 'u00001', 3));
      expect(res.data!._entities[1]?.reviews).toEqual([]);
    });

    it('answers a parent named twice in one batch, and first: 0, without another round trip each', async () => {
      const before = await storeQueries();
      const res = await client.query<Entities>(entitiesQuery('Product'), {
        r: [
          { __typename: 'Product', id: 'p00002' },
          { __typename: 'Product', id: 'p00001' },
          { __typename: 'Product', id: 'p00002' },
        ],
        n: 2,
      });
      expect(res.errors).toBeUndefined();
      expect((await storeQueries()) - before).toBe(1);
      expect(res.data!._entities.map((e) => e.reviews.map((r) => r.id))).toEqual([
        newest('productId', 'p00002', 2),
        newest('productId', 'p00001', 2),
        newest('productId', 'p00002', 2),
      ]);
      const none = await client.query<Entities>(entitiesQuery('Product'), { r: [{ __typename: 'Product', id: 'p00001' }], n: 0 });
      expect(none.data!._entities[0]?.reviews).toEqual([]);
    });

    it('bounds first', async () => {
      const res = await client.query(entitiesQuery('Product'), { r: [{ __typename: 'Product', id: 'p00001' }], n: 51 });
      expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    });

    it('adds a review by the caller that then comes first, and rejects bad input with codes', async () => {
      const author = as(customer('u00002'));
      const added = await author.query<{ addReview: { id: string; rating: number; author: { id: string } } }>(
        'mutation { addReview(input: { productId: "p00003", body: "Lovely", rating: 5 }) { id rating body author { id } } }',
      );
      expect(added.errors).toBeUndefined();
      expect(added.data?.addReview.author).toEqual({ id: 'u00002' });
      // The product's and the author's lists changed: the gateway's caches are told to evict them.
      expect((added as unknown as { extensions?: { invalidate?: unknown } }).extensions?.invalidate).toEqual([
        { __typename: 'Product', id: 'p00003' },
        { __typename: 'User', id: 'u00002' },
        { __typename: 'Review', id: added.data!.addReview.id },
      ]);
      const res = await client.query<Entities>(entitiesQuery('Product'), { r: [{ __typename: 'Product', id: 'p00003' }], n: 1 });
      expect(res.data!._entities[0]?.reviews[0]?.id).toBe(added.data!.addReview.id);
      const review = await client.query<{ review: { body: string } | null }>('query($id: ID!) { review(id: $id) { body } }', {
        id: added.data!.addReview.id,
      });
      expect(review.data?.review?.body).toBe('Lovely');

      for (const [input, field] of [
        ['{ productId: "p1", body: "x", rating: 6 }', 'input.rating'],
        ['{ productId: "p1", body: "x", rating: 0 }', 'input.rating'],
        ['{ productId: "p1", body: "   ", rating: 3 }', 'input.body'],
        ['{ productId: "", body: "x", rating: 3 }', 'input.productId'],
      ] as const) {
        const bad = await author.query(`mutation { addReview(input: ${input}) { id } }`);
        expect(bad.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
      }
      const missing = await client.query('{ review(id: "nope") { id } }');
      expect(missing.data).toEqual({ review: null });
    });

    it('writes a review only as the signed-in caller: UNAUTHENTICATED anonymous, no author to choose', async () => {
      const before = await storeQueries();
      const anonymous = await client.query('mutation { addReview(input: { productId: "p00004", body: "Who am I", rating: 2 }) { id } }');
      expect(anonymous.data).toBeNull();
      expect(anonymous.errors?.map((e) => e.extensions?.code)).toEqual(['UNAUTHENTICATED']);
      expect((await storeQueries()) - before).toBe(0);
      // The input has no author: naming one is a validation error, not a way to write as someone else.
      const impersonating = await as(customer('u00005')).query(
        'mutation { addReview(input: { authorId: "u00006", productId: "p00004", body: "As you", rating: 2 }) { id } }',
      );
      expect(impersonating.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
      // Anyone signed in may review (no scope, no role): the token's subject is the author.
      const admin = await as({ sub: 'admin', roles: ['customer', 'admin'], scopes: ['catalog:write'] }).query<{
        addReview: { author: { id: string } };
      }>('mutation { addReview(input: { productId: "p00004", body: "Staff pick", rating: 5 }) { author { id } } }');
      expect(admin.errors).toBeUndefined();
      expect(admin.data?.addReview.author).toEqual({ id: 'admin' });
    });
  });
}
