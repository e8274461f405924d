import { type Services, startServices } from '@shop/stack';
import { requireService, tempPostgres } from '@shop/testing';
import { e2eSuite } from './e2e/suite';

// The services mode: each subgraph its own process on its own (fresh) PostgreSQL database.
describe('services mode (PostgreSQL, one process per service)', () => {
  let services: Services;
  const databases = ['accounts', 'products', 'inventory', 'reviews', 'orders'].map((name) => ({ name, db: tempPostgres(`e2e_${name}`) }));

  beforeAll(async () => {
    await requireService('postgres');
    services = await startServices({
      ports: { gateway: 0, accounts: 0, products: 0, inventory: 0, reviews: 0, orders: 0 },
      databaseUrl: (name) => databases.find((d) => d.name === name)!.db.url,
      env: { LOG_LEVEL: 'warn', SUPERGRAPH_WATCH: 'false' },
      stdio: 'inherit',
    });
  }, 180_000);
  afterAll(async () => {
    await services?.stop();
    await Promise.all(databases.map((d) => d.db.drop()));
  });

  e2eSuite(() => services.gatewayUrl);

  it('gives each service its own database', async () => {
    const urls = new Set(databases.map((d) => d.db.url));
    expect(urls.size).toBe(5);
    for (const name of ['accounts', 'products', 'inventory', 'reviews', 'orders'] as const) {
      const ready = await fetch(services.subgraphUrls[name].replace(/graphql$/, 'ready'));
      expect(ready.status).toBe(200);
    }
  });
});
