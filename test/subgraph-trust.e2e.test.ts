// Subgraphs of a running embedded stack answer only the gateway: called directly, without its
// signature, `_entities`, `_service`, introspection and mutations are 401 UNAUTHENTICATED, while
// the same stack's gateway answers, and a request signed with the stack's secret is answered. A
// signed request is no pass: each subgraph still checks the caller it carries (#14, item 3).
import { seedOrderId } from '@shop/orders';
import { type Identity, gatewayHeaders } from '@shop/server';
import { SUBGRAPHS, type Stack, startStack } from '@shop/stack';
import pino from 'pino';

const DIRECT: Array<[string, string]> = [
  ['_entities', '{ _entities(representations: [{ __typename: "User", id: "u00001" }]) { ... on User { email } } }'],
  ['_service', '{ _service { sdl } }'],
  ['introspection', '{ __schema { types { name } } }'],
  ['a mutation', 'mutation { updateUser(id: "u00001", input: { name: "Mallory" }) { name } }'],
];

describe('subgraphs of the embedded stack trust only its gateway', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      ports: { gateway: 0, accounts: 0, products: 0, inventory: 0, reviews: 0, orders: 0 },
      host: '127.0.0.1',
      seed: { users: 5, products: 5, reviews: 10 },
      logger: pino({ level: 'silent' }),
    });
  });
  afterAll(() => stack?.stop());

  const post = (url: string, query: string, headers: Record<string, string> = {}) =>
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ query }) });

  it.each(SUBGRAPHS.map((s) => s.name))('%s refuses unsigned _entities, _service, introspection and mutations with 401', async (name) => {
    for (const [, query] of DIRECT) {
      const res = await post(stack.subgraphUrls[name], query);
      expect(res.status).toBe(401);
      const body = (await res.json()) as { data?: unknown; errors?: Array<{ extensions?: { code?: string } }> };
      expect(body.data).toBeUndefined();
      expect(body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
    // The probes stay open.
    expect((await fetch(stack.subgraphUrls[name].replace(/graphql$/, 'ready'))).status).toBe(200);
  });

  it('binds its subgraphs to 127.0.0.1 alone', async () => {
    // Bound to every interface, a subgraph would answer on 127.0.0.2 too (Linux routes 127/8 to lo).
    for (const s of SUBGRAPHS) {
      const other = new URL(stack.subgraphUrls[s.name].replace(/graphql$/, 'health'));
      other.hostname = '127.0.0.2';
      await expect(fetch(other)).rejects.toThrow();
    }
    expect((await fetch(stack.gatewayUrl.replace(/graphql$/, 'health'))).status).toBe(200);
  });

  it('left the user unchanged, and the gateway still answers', async () => {
    const res = await post(stack.gatewayUrl, '{ user(id: "u00001") { id name } topProducts(first: 2) { name reviews(first: 1) { id } } }');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { data?: { user?: { name: string } }; errors?: unknown };
    expect(body.errors).toBeUndefined();
    expect(body.data?.user?.name).not.toBe('Mallory');
  });

  it('answers a request signed with the stack secret', async () => {
    const url = stack.subgraphUrls.accounts;
    const body = JSON.stringify({ query: '{ _service { sdl } }' });
    const headers = gatewayHeaders(stack.subgraphSecret, url, body);
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    expect(res.status).toBe(200);
    const json = (await res.json()) as { data?: { _service?: { sdl?: string } } };
    expect(json.data?._service?.sdl).toContain('type User');
  });

  it("checks the caller of a signed request: anonymous writes and strangers' private fields are refused", async () => {
    type Answer = {
      status: number;
      data?: Record<string, unknown> | null;
      errors?: Array<{ path?: unknown[]; extensions?: { code?: string } }>;
    };
    const signed = async (name: 'accounts' | 'orders', query: string, identity?: Identity): Promise<Answer> => {
      const url = stack.subgraphUrls[name];
      const body = JSON.stringify({ query });
      const headers = gatewayHeaders(stack.subgraphSecret, url, body, identity ? { identity } : {});
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
      return { status: res.status, ...((await res.json()) as Omit<Answer, 'status'>) };
    };
    const stranger: Identity = { sub: 'u00002', roles: ['customer'], scopes: [] };
    const write = await signed('accounts', DIRECT[3]![1]);
    expect(write).toMatchObject({ status: 200, data: null, errors: [{ extensions: { code: 'UNAUTHENTICATED' } }] });
    const email = await signed('accounts', DIRECT[0]![1], stranger);
    expect(email.data).toEqual({ _entities: [{ email: null }] });
    expect(email.errors?.map((e) => e.extensions?.code)).toEqual(['UNAUTHORIZED_FIELD_OR_TYPE']);
    // Seed order 1 is u00001's.
    const seeded = seedOrderId(1);
    const order = await signed('orders', `{ order(id: "${seeded}") { id } }`, stranger);
    expect(order.data).toEqual({ order: null });
    expect(order.errors?.map((e) => e.extensions?.code)).toEqual(['UNAUTHORIZED_FIELD_OR_TYPE']);
    const own = await signed('orders', `{ order(id: "${seeded}") { id } }`, { ...stranger, sub: 'u00001' });
    expect(own).toMatchObject({ data: { order: { id: seeded } } });
  });
});
