import { type SeedSizes, seedReviews } from '@shop/seed';
import { metricValue } from '@shop/telemetry';
import { type Backend, type GraphQLClient, graphqlClient, testTelemetry } from '@shop/testing';
import { createReviews } from '../src/server';

const sizes: SeedSizes = { users: 40, products: 30, reviews: 600 };

/** reviews' behaviour, run over SQLite (reviews.test.ts) and real PostgreSQL (reviews.int.test.ts). */
export function reviewsSuite(backend: Backend): void {
  describe(`reviews on ${backend.name}`, () => {
    const telemetry = testTelemetry('reviews');
    let client: GraphQLClient;
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
      const running = await subgraph.listen(0, '127.0.0.1');
      client = graphqlClient(`${running.url}/graphql`);
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

    it('bounds first', async () => {
      const res = await client.query(entitiesQuery('Product'), { r: [{ __typename: 'Product', id: 'p00001' }], n: 51 });
      expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    });

    it('adds a review that then comes first, and rejects bad input with codes', async () => {
      const added = await client.query<{ addReview: { id: string; rating: number } }>(
        'mutation { addReview(input: { authorId: "u00002", productId: "p00003", body: "Lovely", rating: 5 }) { id rating body author { id } } }',
      );
      expect(added.errors).toBeUndefined();
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
        ['{ authorId: "u1", productId: "p1", body: "x", rating: 6 }', 'input.rating'],
        ['{ authorId: "u1", productId: "p1", body: "x", rating: 0 }', 'input.rating'],
        ['{ authorId: "u1", productId: "p1", body: "   ", rating: 3 }', 'input.body'],
        ['{ authorId: "", productId: "p1", body: "x", rating: 3 }', 'input.authorId'],
      ] as const) {
        const bad = await client.query(`mutation { addReview(input: ${input}) { id } }`);
        expect(bad.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
      }
      const missing = await client.query('{ review(id: "nope") { id } }');
      expect(missing.data).toEqual({ review: null });
    });
  });
}
