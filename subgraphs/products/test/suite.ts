import { randomBytes } from 'node:crypto';
import { type SeedSizes, seedProducts } from '@shop/seed';
import { type Identity, type StoreSubgraph, gatewayHeaders } from '@shop/server';
import { type Backend, type GraphQLClient, type GraphQLResponse, graphqlClient, testTelemetry } from '@shop/testing';
import { metricValue } from '@shop/telemetry';
import { type ProductsDB, ProductsRepository } from '../src/data/repository';
import { MAX_PRICE } from '../src/resolvers';
import { createProducts } from '../src/server';
import type { Kysely } from '@shop/store';

/** The key the suite's requests are signed with, as the gateway signs them. */
const SECRET = randomBytes(32).toString('hex');
/** A catalogue manager: a customer whose token carries catalog:write. */
const CATALOGUE: Identity = { sub: 'u00001', roles: ['customer'], scopes: ['catalog:write'] };

type Node = { id: string; category: string };
type Page = { products: { edges: { node: Node }[]; pageInfo: { endCursor: string | null; hasNextPage: boolean } } };

/** products' behaviour, run over SQLite (products.test.ts) and real PostgreSQL (products.int.test.ts). */
export function productsSuite(backend: Backend): void {
  describe(`products on ${backend.name}`, () => {
    const telemetry = testTelemetry('products');
    const sizes: SeedSizes = { users: 0, products: 60, reviews: 0 };
    const seeded = [...seedProducts(sizes)];
    let subgraph: StoreSubgraph<ProductsDB>;
    /** Anonymous (signed, with no identity): reads. */
    let client: GraphQLClient;
    /** As the gateway would send a request from `identity`. */
    let as: (identity: Identity) => GraphQLClient;
    /** Writes, with catalog:write. */
    let writer: GraphQLClient;
    const storeQueries = () => metricValue(telemetry.metrics.storeQueries, { service: 'products' });

    /** Follows `endCursor` until `hasNextPage` is false; returns every node seen, in order. */
    const pageAll = async (first: number, category: string | null): Promise<Node[]> => {
      const q =
        'query($first: Int, $after: String, $category: String) { products(first: $first, after: $after, category: $category) { edges { node { id category } } pageInfo { endCursor hasNextPage } } }';
      const seen: Node[] = [];
      let after: string | null = null;
      for (let i = 0; i < 30; i++) {
        const res: GraphQLResponse<Page> = await client.query<Page>(q, { first, after, category });
        expect(res.errors).toBeUndefined();
        const page: Page['products'] = res.data!.products;
        seen.push(...page.edges.map((e) => e.node));
        after = page.pageInfo.endCursor;
        if (!page.pageInfo.hasNextPage) break;
      }
      return seen;
    };

    beforeAll(async () => {
      subgraph = await createProducts({ telemetry, store: await backend.location(), seed: sizes, pageMax: 25 });
      const url = `${(await subgraph.listen(0, '127.0.0.1', { gatewaySecret: SECRET })).url}/graphql`;
      client = graphqlClient(url, { sign: (body) => gatewayHeaders(SECRET, url, body) });
      as = (identity) => graphqlClient(url, { sign: (body) => gatewayHeaders(SECRET, url, body, { identity }) });
      writer = as(CATALOGUE);
    });
    afterAll(async () => {
      await subgraph?.stop();
      await backend.cleanup();
    });

    it('finds a seeded product by id with its cache hint, and null for an unknown id', async () => {
      const res = await client.query<{ a: Record<string, unknown> | null; b: unknown }>(
        '{ a: product(id: "p00001") { id name description price weight category createdAt } b: product(id: "nope") { id } }',
      );
      expect(res.errors).toBeUndefined();
      expect(res.data?.a).toEqual(seeded[0]);
      expect(res.data?.b).toBeNull();
      expect(res.headers.get('cache-control')).toBe('max-age=60, public');
    });

    it('seeds only an empty table', async () => {
      expect(await new ProductsRepository(subgraph.store, { source: 'products', committed: () => {} }).seed(sizes)).toBe(0);
      expect(await new ProductsRepository(subgraph.store, { source: 'products', committed: () => {} }).count()).toBeGreaterThanOrEqual(60);
    });

    it('pages through products with cursors in id order', async () => {
      const seen = (await pageAll(25, null)).map((p) => p.id);
      expect(seen.slice(0, 60)).toEqual(seeded.map((p) => p.id));
      expect(new Set(seen).size).toBe(seen.length);
      expect([...seen].sort()).toEqual(seen);
    });

    it('pages through one category', async () => {
      const category = seeded[0]!.category;
      const expected = seeded.filter((p) => p.category === category).map((p) => p.id);
      expect(expected.length).toBeGreaterThan(6);
      // Pages of 3 so the cursor and the category filter meet across several pages.
      const seen = await pageAll(3, category);
      expect(seen.every((p) => p.category === category)).toBe(true);
      expect(seen.map((p) => p.id).filter((id) => id.startsWith('p'))).toEqual(expected);
      const none = await client.query<Page>(
        '{ products(category: "no-such-category") { edges { cursor } pageInfo { endCursor hasNextPage } } }',
      );
      expect(none.data?.products).toEqual({ edges: [], pageInfo: { endCursor: null, hasNextPage: false } });
    });

    it('lists featured products in catalogue order, bounded by the page maximum', async () => {
      const top = await client.query<{ a: { id: string }[]; b: { id: string }[] }>(
        '{ a: topProducts { id } b: topProducts(first: 25) { id } }',
      );
      expect(top.errors).toBeUndefined();
      expect(top.data?.a.map((p) => p.id)).toEqual(['p00001', 'p00002', 'p00003', 'p00004', 'p00005']);
      expect(top.data?.b).toHaveLength(25);
      const tooMany = await client.query('{ topProducts(first: 26) { id } }');
      expect(tooMany.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'first' });
    });

    it('rejects a page size outside the bounds and a forged cursor with BAD_USER_INPUT', async () => {
      const tooMany = await client.query('{ products(first: 26) { edges { cursor } } }');
      expect(tooMany.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(tooMany.errors?.[0]?.message).toContain('between 0 and 25');
      const negative = await client.query('{ products(first: -1) { edges { cursor } } }');
      expect(negative.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      const forged = await client.query('{ products(first: 2, after: "garbage") { edges { cursor } } }');
      expect(forged.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' });
    });

    it('resolves a batch of entity references with one store round trip', async () => {
      const before = await storeQueries();
      const representations = Array.from({ length: 40 }, (_, i) => ({ __typename: 'Product', id: `p${String(i + 1).padStart(5, '0')}` }));
      representations.push({ __typename: 'Product', id: 'missing' });
      const res = await client.query<{ _entities: Array<{ id: string; price: number } | null> }>(
        'query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { id name price weight } } }',
        { r: representations },
      );
      expect(res.errors).toBeUndefined();
      expect(res.data?._entities).toHaveLength(41);
      expect(res.data?._entities[0]).toMatchObject({ id: 'p00001', price: seeded[0]!.price });
      expect(res.data?._entities[39]?.id).toBe('p00040');
      expect(res.data?._entities[40]).toBeNull();
      expect((await storeQueries()) - before).toBe(1);
    });

    it('creates and updates products, with coded errors for bad input', async () => {
      const created = await writer.query<{ createProduct: { id: string; name: string; category: string } }>(
        'mutation { createProduct(input: { name: " Kettle ", description: "Boils.", price: 2500, weight: 900, category: "home" }) { id name description price weight category createdAt } }',
      );
      expect(created.errors).toBeUndefined();
      expect(created.data?.createProduct).toMatchObject({
        name: 'Kettle',
        description: 'Boils.',
        price: 2500,
        weight: 900,
        category: 'home',
      });
      const id = created.data!.createProduct.id;

      const updated = await writer.query(
        'mutation($id: ID!) { updateProduct(id: $id, input: { price: 0, name: "Free kettle" }) { name price weight } }',
        { id },
      );
      expect(updated.errors).toBeUndefined();
      expect(updated.data?.updateProduct).toEqual({ name: 'Free kettle', price: 0, weight: 900 });
      const read = await client.query('query($id: ID!) { product(id: $id) { name price category } }', { id });
      expect(read.data?.product).toEqual({ name: 'Free kettle', price: 0, category: 'home' });

      const create = (input: string) => writer.query(`mutation { createProduct(input: { ${input} }) { id } }`);
      const valid = { name: '"A"', description: '""', price: '1', weight: '1', category: '"toys"' };
      const invalid = async (field: keyof typeof valid, value: string) => {
        const res = await create(
          Object.entries({ ...valid, [field]: value })
            .map(([k, v]) => `${k}: ${v}`)
            .join(', '),
        );
        expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: `input.${field}` });
      };
      await invalid('price', '-1');
      await invalid('weight', '0');
      await invalid('name', '"  "');
      await invalid('category', '""');

      const negative = await writer.query('mutation($id: ID!) { updateProduct(id: $id, input: { price: -5 }) { id } }', { id });
      expect(negative.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.price' });

      // Prices above MAX_PRICE are refused where they enter, naming the field, with nothing written.
      const rows = async () => ({
        products: await subgraph.store.db.selectFrom('products').selectAll().orderBy('id').execute(),
        outbox: Number(
          (
            await (subgraph.store.db as unknown as Kysely<{ outbox: { position: number } }>)
              .selectFrom('outbox')
              .select((eb) => eb.fn.countAll<number>().as('n'))
              .executeTakeFirstOrThrow()
          ).n,
        ),
      });
      const before = await rows();
      await invalid('price', String(MAX_PRICE + 1));
      await invalid('price', '2147483647');
      const tooDear = await writer.query('mutation($id: ID!) { updateProduct(id: $id, input: { price: 2147483647 }) { id } }', { id });
      expect(tooDear.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.price' });
      expect(tooDear.errors?.[0]?.message).toContain(`at most ${MAX_PRICE} cents`);
      expect(await rows()).toEqual(before);
      expect((await create(`name: "Dear", description: "", price: ${MAX_PRICE}, weight: 1, category: "toys"`)).errors).toBeUndefined();
      const unknown = await writer.query('mutation { updateProduct(id: "nothing", input: { name: "X" }) { id } }');
      expect(unknown.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
      const unknownEmpty = await writer.query('mutation { updateProduct(id: "nothing", input: {}) { id } }');
      expect(unknownEmpty.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    });

    it('needs catalog:write for every write: UNAUTHENTICATED anonymous, FORBIDDEN without the scope, before input or store', async () => {
      const writes = [
        'mutation { createProduct(input: { name: "Sneaky", description: "", price: 1, weight: 1, category: "toys" }) { id } }',
        // Invalid input and an unknown id: the scope is checked first, so neither is reported.
        'mutation { createProduct(input: { name: " ", description: "", price: -1, weight: 0, category: "" }) { id } }',
        'mutation { updateProduct(id: "p00002", input: { price: 1 }) { id } }',
        'mutation { updateProduct(id: "nothing", input: { price: 1 }) { id } }',
        'mutation { discontinueProduct(id: "p00002") { id } }',
      ];
      const callers: Array<[string, GraphQLClient, string]> = [
        ['anonymous', client, 'UNAUTHENTICATED'],
        ['a customer', as({ sub: 'u00002', roles: ['customer'], scopes: [] }), 'FORBIDDEN'],
        ['another scope', as({ sub: 'u00002', roles: ['customer'], scopes: ['inventory:write', 'orders:admin'] }), 'FORBIDDEN'],
      ];
      const before = await storeQueries();
      for (const [who, caller, code] of callers) {
        for (const write of writes) {
          const res = await caller.query(write);
          expect({ who, write, data: res.data, codes: res.errors?.map((e) => e.extensions?.code) }).toEqual({
            who,
            write,
            data: null,
            codes: [code],
          });
        }
      }
      expect((await storeQueries()) - before).toBe(0);
      const read = await client.query<{ product: { price: number; discontinued: boolean } }>(
        '{ product(id: "p00002") { price discontinued } }',
      );
      expect(read.data?.product).toEqual({ price: seeded[1]!.price, discontinued: false });
      // The scope alone is enough: no role is needed.
      const allowed = await writer.query<{ discontinueProduct: { discontinued: boolean } }>(
        'mutation { discontinueProduct(id: "p00002") { discontinued } }',
      );
      expect(allowed.errors).toBeUndefined();
      expect(allowed.data?.discontinueProduct.discontinued).toBe(true);
    });
  });
}
