import { SEED_ADMIN } from '@shop/seed';
import { type Stack, startStack } from '@shop/stack';
import pino from 'pino';
import { e2eSuite } from './e2e/suite';

// The embedded mode: every subgraph and the gateway in this process, on free ports, SQLite in memory.
describe('embedded stack (SQLite)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      ports: { gateway: 0, accounts: 0, products: 0, inventory: 0, reviews: 0, orders: 0 },
      host: '127.0.0.1',
      logger: pino({ level: 'silent' }),
    });
  });
  afterAll(() => stack?.stop());

  // Tokens signed by the stack's own accounts, with the claims accounts would give each user.
  e2eSuite(
    () => stack.gatewayUrl,
    (userId) => stack.token(userId, userId === SEED_ADMIN.id ? { roles: ['customer', 'admin'] } : {}),
  );

  it("carries every service's metrics on the gateway's /metrics", async () => {
    const text = await (await fetch(stack.gatewayUrl.replace(/graphql$/, 'metrics'))).text();
    for (const service of ['accounts', 'products', 'inventory', 'reviews', 'orders']) {
      expect(text).toMatch(new RegExp(`store_queries_total\\{service="${service}"\\} [1-9]`));
    }
    expect(text).toMatch(/gateway_subgraph_requests_total\{subgraph="reviews"\} [1-9]/);
    // payments' worker polls its store in the background: its series are there too.
    expect(text).toMatch(/store_background_queries_total\{service="payments"\} [1-9]/);
  });
});
