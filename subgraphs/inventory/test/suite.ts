import { randomBytes } from 'node:crypto';
import { type SeedSizes, productId, seedStock } from '@shop/seed';
import { type Identity, type StoreSubgraph, gatewayHeaders } from '@shop/server';
import { type Backend, type GraphQLClient, graphqlClient, testTelemetry } from '@shop/testing';
import { metricValue } from '@shop/telemetry';
import { type InventoryDB, StockRepository } from '../src/data/repository';
import { shippingEstimate } from '../src/domain';
import { createInventory } from '../src/server';

/** The key the suite's requests are signed with, as the gateway signs them. */
const SECRET = randomBytes(32).toString('hex');
/** A warehouse manager: a customer whose token carries inventory:write. */
const WAREHOUSE: Identity = { sub: 'u00001', roles: ['customer'], scopes: ['inventory:write'] };

type Stock = {
  id: string;
  inStock: boolean;
  quantityAvailable: number;
  quantityOnHand: number;
  quantityReserved: number;
  shippingEstimate: number | null;
};
const ENTITIES =
  'query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { id inStock quantityAvailable quantityOnHand quantityReserved shippingEstimate } } }';

/** inventory's behaviour, run over SQLite (inventory.test.ts) and real PostgreSQL (inventory.int.test.ts). */
export function inventorySuite(backend: Backend): void {
  describe(`inventory on ${backend.name}`, () => {
    const telemetry = testTelemetry('inventory');
    const sizes: SeedSizes = { users: 0, products: 60, reviews: 0 };
    const seeded = new Map([...seedStock(sizes)].map((s) => [s.productId, s.quantity]));
    let subgraph: StoreSubgraph<InventoryDB>;
    /** Anonymous (signed, with no identity): reads. */
    let client: GraphQLClient;
    /** As the gateway would send a request from `identity`. */
    let as: (identity: Identity) => GraphQLClient;
    /** Writes, with inventory:write. */
    let writer: GraphQLClient;
    const storeQueries = () => metricValue(telemetry.metrics.storeQueries, { service: 'inventory' });
    const entities = (r: object[]) => client.query<{ _entities: Array<Stock | null> }>(ENTITIES, { r });

    beforeAll(async () => {
      subgraph = await createInventory({ telemetry, store: await backend.location(), seed: sizes });
      const url = `${(await subgraph.listen(0, '127.0.0.1', { gatewaySecret: SECRET })).url}/graphql`;
      client = graphqlClient(url, { sign: (body) => gatewayHeaders(SECRET, url, body) });
      as = (identity) => graphqlClient(url, { sign: (body) => gatewayHeaders(SECRET, url, body, { identity }) });
      writer = as(WAREHOUSE);
    });
    afterAll(async () => {
      await subgraph?.stop();
      await backend.cleanup();
    });

    it('seeds only an empty table', async () => {
      expect(await new StockRepository(subgraph.store).seed(sizes)).toBe(0);
      expect(await new StockRepository(subgraph.store).count()).toBe(60);
      expect([...seeded.values()].some((q) => q === 0)).toBe(true);
    });

    it('resolves 40 representations with their required fields in one store round trip', async () => {
      const representations = Array.from({ length: 40 }, (_, i) => ({
        __typename: 'Product',
        id: productId(i + 1),
        price: i % 2 === 0 ? 150_000 : 2_500 + i,
        weight: 1_000 + i * 37,
      }));
      representations.push({ __typename: 'Product', id: 'p99999', price: 99_999, weight: 1_200 });
      const before = await storeQueries();
      const res = await entities(representations);
      expect(res.errors).toBeUndefined();
      expect((await storeQueries()) - before).toBe(1);
      expect(res.data?._entities).toEqual(
        representations.map((r) => {
          const quantity = seeded.get(r.id) ?? 0;
          // Nothing reserved yet: everything on hand is available.
          return {
            id: r.id,
            inStock: quantity > 0,
            quantityAvailable: quantity,
            quantityOnHand: quantity,
            quantityReserved: 0,
            shippingEstimate: shippingEstimate(r.price, r.weight),
          };
        }),
      );
      // The unknown product has no stock record: none on hand, and still a shipping estimate.
      expect(res.data?._entities[40]).toEqual({
        id: 'p99999',
        inStock: false,
        quantityAvailable: 0,
        quantityOnHand: 0,
        quantityReserved: 0,
        shippingEstimate: 600,
      });
      // Stock changes often: a short hint, so shared caches keep it briefly.
      expect(res.headers.get('cache-control')).toBe('max-age=30, public');
    });

    it('computes shippingEstimate from the required fields alone, with no store access', async () => {
      const before = await storeQueries();
      const res = await client.query<{ _entities: Array<{ shippingEstimate: number | null }> }>(
        'query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { shippingEstimate } } }',
        {
          r: [
            { __typename: 'Product', id: 'p00001', price: 150_000, weight: 1_200 },
            { __typename: 'Product', id: 'p00002', price: 100_000, weight: 50_000 },
            { __typename: 'Product', id: 'p00003', price: 99_999, weight: 1_200 },
            { __typename: 'Product', id: 'p00004', price: 500, weight: 1_000 },
            { __typename: 'Product', id: 'p00005', price: 500, weight: 1_001 },
            // Without the @requires fields (no gateway in front), there is no estimate.
            { __typename: 'Product', id: 'p00006' },
          ],
        },
      );
      expect(res.errors).toBeUndefined();
      expect(res.data?._entities.map((e) => e.shippingEstimate)).toEqual([0, 0, 600, 550, 600, null]);
      expect((await storeQueries()) - before).toBe(0);
    });

    // One transaction: begin, the conditional upsert (which returns the record), StockChanged in
    // the outbox (its aggregate's next version, then the row), commit.
    const SET_STOCK_ROUND_TRIPS = 5;

    it('sets stock by one upsert in one transaction with its StockChanged, and later requests see it', async () => {
      const set = 'mutation($id: ID!, $q: Int!) { setStock(productId: $id, quantity: $q) { id inStock quantityAvailable } }';
      let before = await storeQueries();
      const created = await writer.query(set, { id: 'p77777', q: 7 });
      expect(created.errors).toBeUndefined();
      expect(created.data?.setStock).toEqual({ id: 'p77777', inStock: true, quantityAvailable: 7 });
      expect((await storeQueries()) - before).toBe(SET_STOCK_ROUND_TRIPS);

      before = await storeQueries();
      const emptied = await writer.query(set, { id: 'p00001', q: 0 });
      expect(emptied.data?.setStock).toEqual({ id: 'p00001', inStock: false, quantityAvailable: 0 });
      expect((await storeQueries()) - before).toBe(SET_STOCK_ROUND_TRIPS);
      // Idempotent: the same command twice leaves the same state.
      expect((await writer.query(set, { id: 'p00001', q: 0 })).data?.setStock).toEqual(emptied.data?.setStock);

      const read = await entities([
        { __typename: 'Product', id: 'p77777', price: 100, weight: 10 },
        { __typename: 'Product', id: 'p00001', price: 100, weight: 10 },
      ]);
      expect(read.data?._entities.map((e) => e?.quantityAvailable)).toEqual([7, 0]);
      expect(await new StockRepository(subgraph.store).count()).toBe(61);
    });

    it('rejects a negative quantity and an empty product id with BAD_USER_INPUT, touching no store', async () => {
      const before = await storeQueries();
      const negative = await writer.query('mutation { setStock(productId: "p00002", quantity: -1) { id } }');
      expect(negative.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'quantity' });
      const empty = await writer.query('mutation { setStock(productId: "", quantity: 1) { id } }');
      expect(empty.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'productId' });
      expect((await storeQueries()) - before).toBe(0);
      const unchanged = await entities([{ __typename: 'Product', id: 'p00002', price: 1, weight: 1 }]);
      expect(unchanged.data?._entities[0]?.quantityAvailable).toBe(seeded.get('p00002'));
    });

    it('needs inventory:write for setStock: UNAUTHENTICATED anonymous, FORBIDDEN without the scope, touching no store', async () => {
      const set = 'mutation($q: Int!) { setStock(productId: "p00003", quantity: $q) { id quantityAvailable } }';
      const before = await storeQueries();
      const cases: Array<[GraphQLClient, string]> = [
        [client, 'UNAUTHENTICATED'],
        [as({ sub: 'u00002', roles: ['customer'], scopes: [] }), 'FORBIDDEN'],
        [as({ sub: 'u00002', roles: ['customer', 'admin'], scopes: ['catalog:write'] }), 'FORBIDDEN'],
      ];
      for (const [caller, code] of cases) {
        // An invalid quantity too: the scope is checked before the input.
        for (const q of [3, -1]) {
          const res = await caller.query(set, { q });
          expect(res.data).toBeNull();
          expect(res.errors?.map((e) => e.extensions?.code)).toEqual([code]);
        }
      }
      expect((await storeQueries()) - before).toBe(0);
      const allowed = await writer.query(set, { q: 3 });
      expect(allowed.errors).toBeUndefined();
      expect(allowed.data?.setStock).toEqual({ id: 'p00003', quantityAvailable: 3 });
    });
  });
}
