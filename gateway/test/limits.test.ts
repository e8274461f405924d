import { metricValue } from '@shop/telemetry';
import { type Fixtures, type GatewayUnderTest, composeFixture, query, startFixtures, startGateway } from './harness';

// Hostile documents are refused with one clear, coded error before any subgraph sees them: the
// document limits (GraphQL Armor's rules, graphql-js's token limit) and demand control.
let fixtures: Fixtures;
let gw: GatewayUnderTest;

beforeAll(async () => {
  fixtures = await startFixtures();
  gw = await startGateway({ sdl: composeFixture() }, fixtures, {
    limits: { depth: 4, aliases: 3, directives: 4, tokens: 200 },
    cost: false,
  });
});
afterAll(async () => {
  await gw?.stop();
  await fixtures?.stop();
});

/** Requests the fixture subgraphs received so far. */
const subgraphCalls = () => fixtures.control.requestIds.authors.length + fixtures.control.requestIds.books.length;

describe('document limits', () => {
  it('accepts an operation within the limits', async () => {
    const { status, body } = await query(gw.url, '{ books { author { books { title } } } }');
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
  });

  it('refuses one nested too deep, also through fragments, naming the depth and the limit', async () => {
    const before = subgraphCalls();
    const deep = await query(gw.url, 'query Deep { books { author { books { author { name } } } } }');
    // A validation error: 200 in an application/json response (GraphQL over HTTP), and no data.
    expect(deep.status).toBe(200);
    expect(deep.body.data).toBeUndefined();
    expect(deep.body.errors?.[0]?.message).toBe("The operation's depth is 5; the limit is 4.");
    expect(deep.body.errors?.[0]?.extensions).toMatchObject({
      code: 'GRAPHQL_VALIDATION_FAILED',
      validationErrorCode: 'MAX_DEPTH_EXCEEDED',
      limit: 4,
      found: 5,
    });

    const viaFragments = await query(
      gw.url,
      '{ books { ...B } } fragment B on Book { author { ...A } } fragment A on Author { books { author { name } } }',
    );
    expect(viaFragments.body.errors?.[0]?.extensions?.validationErrorCode).toBe('MAX_DEPTH_EXCEEDED');
    expect(subgraphCalls()).toBe(before);
  });

  it('refuses alias batching over the limit, counting aliases hidden in a fragment at each spread', async () => {
    const aliases = await query(gw.url, '{ a: books { title } b: books { title } c: books { title } d: books { title } }');
    expect(aliases.body.errors?.[0]?.message).toBe("The operation's alias count is 4; the limit is 3.");
    expect(aliases.body.errors?.[0]?.extensions?.validationErrorCode).toBe('MAX_ALIASES_EXCEEDED');

    const hidden = await query(gw.url, '{ books { ...T ...T2 } } fragment T on Book { a: title b: title } fragment T2 on Book { ...T }');
    expect(hidden.body.errors?.[0]?.extensions).toMatchObject({ validationErrorCode: 'MAX_ALIASES_EXCEEDED', found: 4 });
  });

  it('refuses an alias with a reserved name before any subgraph is called, and keeps aliases of __typename', async () => {
    const before = subgraphCalls();
    const reserved = await query(gw.url, '{ books { __typename: title } }');
    expect(reserved.status).toBe(200);
    expect(reserved.body.data).toBeUndefined();
    expect(reserved.body.errors?.[0]?.extensions).toMatchObject({
      code: 'GRAPHQL_VALIDATION_FAILED',
      validationErrorCode: 'RESERVED_ALIAS',
    });
    expect(subgraphCalls()).toBe(before);
    const own = await query(gw.url, '{ books { __typename: __typename __kind: __typename __title: title } }');
    expect(own.body.errors).toBeUndefined();
  });

  it('refuses a flood of directives', async () => {
    const flood = await query(
      gw.url,
      '{ books @include(if: true) @include(if: true) @include(if: true) { title @skip(if: false) @skip(if: false) } }',
    );
    expect(flood.status).toBe(200);
    expect(flood.body.data).toBeUndefined();
    expect(flood.body.errors?.[0]?.extensions).toMatchObject({
      code: 'GRAPHQL_VALIDATION_FAILED',
      validationErrorCode: 'MAX_DIRECTIVES_EXCEEDED',
      found: 5,
    });
  });

  it('stops parsing at the token limit, whatever the size of the document', async () => {
    const started = performance.now();
    const huge = await query(gw.url, `{ ${'books { title } '.repeat(50_000)} }`);
    expect(huge.status).toBe(200);
    expect(huge.body.data).toBeUndefined();
    expect(huge.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_PARSE_FAILED');
    expect(huge.body.errors?.[0]?.message).toMatch(/more tha[nt] 200 tokens/); // graphql-js 16 spells it "more that";
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('does not loop on a fragment cycle (graphql-js reports the cycle)', async () => {
    const cycle = await query(gw.url, '{ books { ...A } } fragment A on Book { author { books { ...A } } }');
    expect(cycle.status).toBe(200);
    expect(cycle.body.data).toBeUndefined();
    expect(cycle.body.errors?.map((e) => e.message).join(' ')).toMatch(/Cannot spread fragment "A" within itself/);
  });

  it('counts refusals by limit', async () => {
    const counter = gw.telemetry.metrics.documentsRejected;
    expect(await metricValue(counter, { service: 'gateway', limit: 'depth' })).toBeGreaterThanOrEqual(2);
    expect(await metricValue(counter, { service: 'gateway', limit: 'aliases' })).toBeGreaterThanOrEqual(2);
  });
});

describe('demand control', () => {
  let costly: GatewayUnderTest;
  beforeAll(async () => {
    costly = await startGateway({ sdl: composeFixture() }, fixtures, { cost: { maxCost: 100 } });
  });
  afterAll(() => costly?.stop());

  it('reports the estimate of an admitted operation in extensions.cost', async () => {
    // 10 books (the default size of a list with no @listSize) x (book 1 + author 1).
    const { status, body } = await query(costly.url, '{ books { author { name } } }');
    expect(status).toBe(200);
    expect(body.extensions?.cost).toEqual({ estimated: 20, max: 100, mode: 'enforce' });
  });

  it('refuses an operation over the limit before any subgraph is called', async () => {
    const before = subgraphCalls();
    const requestsBefore = await metricValue(costly.telemetry.metrics.subgraphRequests, { subgraph: 'books' });
    const { status, body } = await query(costly.url, '{ books { author { books { title } } } }');
    // A request error: 200 and no data under application/json (400 under graphql-response+json).
    expect(status).toBe(200);
    expect(body.data).toBeUndefined();
    expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'COST_ESTIMATED_TOO_EXPENSIVE', cost: { estimated: 120, max: 100 } });
    expect(body.errors?.[0]?.message).toContain('the limit is 100');
    expect(subgraphCalls()).toBe(before);
    expect(await metricValue(costly.telemetry.metrics.subgraphRequests, { subgraph: 'books' })).toBe(requestsBefore);
  });

  it('only measures in measure mode, and reports the actual cost when asked', async () => {
    const measuring = await startGateway({ sdl: composeFixture() }, fixtures, {
      cost: { maxCost: 100, mode: 'measure', reportActual: true },
    });
    try {
      const { status, body } = await query(measuring.url, '{ books { author { books { title } } } }');
      expect(status).toBe(200);
      expect(body.errors).toBeUndefined();
      const books = (body.data as { books: Array<{ author: { books: unknown[] } }> }).books;
      // Actual: every book, its author, and each author's books, as returned.
      const actual = books.length * 2 + books.reduce((sum, b) => sum + b.author.books.length, 0);
      expect(body.extensions?.cost).toEqual({ estimated: 120, max: 100, mode: 'measure', actual });
      expect(actual).toBeLessThan(120);
    } finally {
      await measuring.stop();
    }
  });
});
