// Introspection fields inside fragments: @apollo/gateway's planner fails on them with a 500; the
// gateway refuses them with a coded validation error instead (found by the property test).
import { type GatewayUnderTest, composeFixture, post, startFixtures, startGateway, type Fixtures } from './harness';

describe('introspection fields and fragments', () => {
  let fixtures: Fixtures;
  let gw: GatewayUnderTest;
  beforeAll(async () => {
    fixtures = await startFixtures();
    gw = await startGateway({ sdl: composeFixture() }, fixtures);
  });
  afterAll(async () => {
    await gw?.stop();
    await fixtures?.stop();
  });

  it.each([
    ['a named fragment', '{ books { title } ...F } fragment F on Query { __type(name: "Query") { name } }'],
    ['an inline fragment', '{ ... on Query { __schema { queryType { name } } } }'],
    ['a skipped fragment spread', 'query ($s: Boolean!) { ...F @skip(if: $s) } fragment F on Query { __type(name: "Book") { name } }'],
  ])('refuses them inside %s with a coded validation error, not a 500', async (_name, query) => {
    const res = await post(gw.url, { query, variables: { s: false } });
    // 200 under application/json, as for every validation error (GraphQL over HTTP's legacy media type).
    expect(res.status).toBe(200);
    expect(res.body.data).toBeUndefined();
    expect(res.body.errors?.[0]?.extensions).toMatchObject({
      code: 'GRAPHQL_VALIDATION_FAILED',
      validationErrorCode: 'INTROSPECTION_IN_FRAGMENT',
    });
  });

  it('answers them at the root of the operation, beside other fields', async () => {
    const res = await post(gw.url, { query: '{ __type(name: "Book") { name fields { name } } books { title } }' });
    expect(res.status).toBe(200);
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data?.__type).toMatchObject({ name: 'Book' });
  });
});
