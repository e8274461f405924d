import { type Fixtures, type GatewayUnderTest, composeFixture, query, startFixtures, startGateway } from './harness';

// Hostile documents are refused with a clear, coded error before any subgraph sees them.
let fixtures: Fixtures;
let gw: GatewayUnderTest;

beforeAll(async () => {
  fixtures = await startFixtures();
  gw = await startGateway({ sdl: composeFixture() }, fixtures, { limits: { depth: 4, aliases: 3 } });
});
afterAll(async () => {
  await gw?.stop();
  await fixtures?.stop();
});

describe('query limits', () => {
  it('accepts an operation within the limits', async () => {
    const { status, body } = await query(gw.url, '{ books { author { books { title } } } }');
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
  });

  it('refuses one nested too deep, also through fragments, naming the depth and the limit', async () => {
    const deep = await query(gw.url, 'query Deep { books { author { books { author { name } } } } }');
    expect(deep.status).toBe(400);
    expect(deep.body.errors?.[0]?.message).toBe('Operation "Deep" is 5 levels deep; the limit is 4.');
    expect(deep.body.errors?.[0]?.extensions).toMatchObject({ code: 'GRAPHQL_VALIDATION_FAILED', validationErrorCode: 'MAX_DEPTH_EXCEEDED' });

    const viaFragments = await query(gw.url, '{ books { ...B } } fragment B on Book { author { ...A } } fragment A on Author { books { author { name } } }');
    expect(viaFragments.body.errors?.[0]?.extensions?.validationErrorCode).toBe('MAX_DEPTH_EXCEEDED');
  });

  it('refuses alias batching over the limit', async () => {
    const aliases = await query(gw.url, '{ a: books { title } b: books { title } c: books { title } d: books { title } }');
    expect(aliases.body.errors?.[0]?.message).toBe('The operation uses 4 aliases; the limit is 3.');
    expect(aliases.body.errors?.[0]?.extensions?.validationErrorCode).toBe('MAX_ALIASES_EXCEEDED');
  });

  it('does not loop on a fragment cycle (graphql-js reports the cycle)', async () => {
    const cycle = await query(gw.url, '{ books { ...A } } fragment A on Book { author { books { ...A } } }');
    expect(cycle.status).toBe(400);
    expect(cycle.body.errors?.map((e) => e.message).join(' ')).toMatch(/Cannot spread fragment "A" within itself/);
  });
});
