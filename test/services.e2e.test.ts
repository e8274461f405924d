import { DEV_PASSWORD } from '@shop/accounts';
import { SEED_ADMIN, defaultSeedSizes, seedUsers } from '@shop/seed';
import { type Services, startServices } from '@shop/stack';
import { requireService, signIn, tempPostgres } from '@shop/testing';
import { e2eSuite } from './e2e/suite';

const emails = new Map([SEED_ADMIN, ...seedUsers(defaultSeedSizes)].map((u) => [u.id, u.email]));

// The services mode: each subgraph its own process on its own (fresh) PostgreSQL database.
describe('services mode (PostgreSQL, one process per service)', () => {
  let services: Services;
  const databases = ['accounts', 'products', 'inventory', 'reviews', 'orders', 'payments'].map((name) => ({
    name,
    db: tempPostgres(`e2e_${name}`),
  }));

  beforeAll(async () => {
    await requireService('postgres');
    services = await startServices({
      ports: { gateway: 0, accounts: 0, products: 0, inventory: 0, reviews: 0, orders: 0 },
      databaseUrl: (name) => databases.find((d) => d.name === name)!.db.url,
      // No per-client rate limit: the orders race sends over a thousand writes and retries in a few
      // seconds from this one address (1000 per 10 s is the default); the limit has tests of its own.
      env: { LOG_LEVEL: 'warn', SUPERGRAPH_WATCH: 'false', RATE_LIMIT_POINTS: '0' },
      stdio: 'inherit',
    });
  }, 180_000);
  afterAll(async () => {
    await services?.stop();
    await Promise.all(databases.map((d) => d.db.drop()));
  });

  // No issuer in this process: users sign in through the gateway with the development password.
  e2eSuite(
    () => services.gatewayUrl,
    (userId) => signIn(services.gatewayUrl, emails.get(userId)!, DEV_PASSWORD),
  );

  it('gives each service its own database', async () => {
    const urls = new Set(databases.map((d) => d.db.url));
    expect(urls.size).toBe(6);
    for (const name of ['accounts', 'products', 'inventory', 'reviews', 'orders', 'payments'] as const) {
      const ready = await fetch(services.subgraphUrls[name].replace(/graphql$/, 'ready'));
      expect(ready.status).toBe(200);
    }
  });
});
