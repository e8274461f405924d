import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { apiSchemaOf } from '@shop/composition';
import { type DocumentNode, Kind, Lexer, type OperationDefinitionNode, Source, TokenKind, getIntrospectionQuery, parse } from 'graphql';
import { defaultDocumentLimits } from '@shop/server';
import { type CostDirectives, actualCost, costDirectivesOf, estimateCost } from '@shop/server';
import { defaultMaxCost } from '../src/gateway';

// Demand control's estimate over the repository's own supergraph: the @listSize rules the
// subgraphs declare, composed into it.
const ROOT = path.resolve(__dirname, '..', '..');
const sdl = readFileSync(path.join(ROOT, 'supergraph.graphql'), 'utf8');
const schema = apiSchemaOf(sdl);
const directives: CostDirectives = costDirectivesOf(sdl);

function costOf(source: string, variables: Record<string, unknown> = {}, dirs = directives): number {
  const document = parse(source);
  return estimateCost(schema, document, operationOf(document), variables, dirs);
}
const operationOf = (document: DocumentNode) =>
  document.definitions.find((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION) as OperationDefinitionNode;

function operationFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name);
    if (statSync(file).isDirectory()) return operationFiles(file);
    return name.endsWith('.graphql') ? [file] : [];
  });
}

describe('cost directives from the supergraph', () => {
  it('reads the @listSize rules the subgraphs declare', () => {
    expect(directives.listSize.get('Query.topProducts')).toEqual({ slicingArguments: ['first'], requireOneSlicingArgument: true });
    expect(directives.listSize.get('Query.users')).toEqual({
      slicingArguments: ['first'],
      sizedFields: ['edges'],
      requireOneSlicingArgument: true,
    });
    expect(directives.listSize.get('Order.lines')).toEqual({ assumedSize: 20, requireOneSlicingArgument: true });
  });

  it('reads @cost on types, fields and arguments, under an imported alias too', () => {
    const custom = costDirectivesOf(`
      schema @link(url: "https://specs.apollo.dev/link/v1.0") @link(url: "https://specs.apollo.dev/cost/v0.1", import: [{ name: "@cost", as: "@weight" }, "@listSize"]) { query: Query }
      directive @weight(weight: Int!) on ARGUMENT_DEFINITION | FIELD_DEFINITION | OBJECT
      type Query { a(x: Int @weight(weight: 3)): A @weight(weight: 7) }
      type A @weight(weight: 2) { id: ID }
    `);
    expect(custom.fieldWeight.get('Query.a')).toBe(7);
    expect(custom.typeWeight.get('A')).toBe(2);
    expect(custom.argumentWeight.get('Query.a(x:)')).toBe(3);
  });
});

describe('the estimate', () => {
  it('costs objects 1, scalars 0, and multiplies lists by their slicing argument', () => {
    expect(costOf('{ product(id: "p1") { name price } }')).toBe(1);
    expect(costOf('{ topProducts(first: 7) { name } }')).toBe(7);
    // The argument's default (5) when it is not given.
    expect(costOf('{ topProducts { name } }')).toBe(5);
    // Nested lists multiply: 3 products x (1 + 4 reviews x (1 + author 1)).
    expect(costOf('{ topProducts(first: 3) { reviews(first: 4) { author { name } } } }')).toBe(3 * (1 + 4 * (1 + 1)));
  });

  it('reads list sizes from variables, and their defaults', () => {
    const source = 'query Q($n: Int = 4) { topProducts(first: $n) { name } }';
    expect(costOf(source, { n: 9 })).toBe(9);
    expect(costOf(source)).toBe(4);
  });

  it('puts a connection size on its sized fields (edges), not on the connection', () => {
    // users: 1 (connection) + edges 6 x (1 edge + 1 node) + pageInfo 1.
    expect(costOf('{ users(first: 6) { edges { node { name } } pageInfo { hasNextPage } } }')).toBe(1 + 6 * 2 + 1);
  });

  it('uses assumedSize for lists with no slicing argument', () => {
    expect(costOf('{ order(id: "o1") { lines { quantity product { name } } } }')).toBe(1 + 20 * (1 + 1));
  });

  it('stays a finite number for absurd list sizes (refused, never Infinity or NaN)', () => {
    const source = 'query Q($n: Int) { topProducts(first: $n) { name reviews(first: $n) { body } } }';
    expect(costOf(source, { n: 1.7976931348623157e308 })).toBe(Number.MAX_SAFE_INTEGER);
    // A huge list of free items (scalars) is free, not NaN.
    expect(costOf('query Q($n: Int) { topProducts(first: $n) { __typename } }', { n: 0 })).toBe(0);
  });

  it('charges 10 for a mutation', () => {
    expect(costOf('mutation { setStock(productId: "p1", quantity: 1) { id } }')).toBe(10 + 1);
  });

  it('leaves out what @skip/@include leave out, when the condition is known', () => {
    const source = 'query Q($x: Boolean!) { topProducts(first: 10) @include(if: $x) { name } product(id: "p") { name } }';
    expect(costOf(source, { x: false })).toBe(1);
    expect(costOf(source, { x: true })).toBe(11);
  });

  it('gives a document served again (the same parsed operation) the estimate of a fresh one, for every set of variables', () => {
    const source = `query Q($x: Boolean!, $n: Int = 4, $m: Int) {
      topProducts(first: $n) @include(if: $x) { name reviews(first: $m) { body } }
      product(id: "p") { name }
    }`;
    const served = parse(source);
    const sets: Array<Record<string, unknown>> = [
      { x: true, n: 2, m: 3 },
      { x: false, n: 2, m: 3 },
      { x: true, n: 2, m: 7 },
      { x: true, m: 3 },
      { x: true, n: null, m: 3 },
      { x: false, n: 9 },
      { x: true, n: 2, m: 3 },
    ];
    const kept = sets.map((variables) => estimateCost(schema, served, operationOf(served), variables, directives));
    const fresh = sets.map((variables) => costOf(source, variables));
    expect(kept).toEqual(fresh);
    // The sets really differ in cost: the kept estimates are not one number repeated.
    expect(new Set(fresh).size).toBeGreaterThanOrEqual(4);
    // Other directives (a reloaded supergraph) are estimated afresh, not read from what was kept.
    const heavier = costDirectivesOf(sdl);
    heavier.typeWeight.set('Product', 100);
    expect(estimateCost(schema, served, operationOf(served), sets[0] as Record<string, unknown>, heavier)).toBeGreaterThan(
      kept[0] as number,
    );
  });

  it('costs fragments once however often they are spread: 30 double spreads in linear time', () => {
    const n = 30;
    let doc = 'query { ...F0 }\n';
    for (let i = 0; i < n; i++) doc += `fragment F${i} on Query { ...F${i + 1} ...F${i + 1} }\n`;
    doc += `fragment F${n} on Query { topProducts(first: 1) { name } }`;
    const started = performance.now();
    const cost = costOf(doc);
    expect(performance.now() - started).toBeLessThan(50);
    // Each level doubles what it spreads (the estimate counts every spread, as the cost spec does).
    expect(cost).toBe(2 ** n);
  });

  it('refuses the four nested lists of the issue far above the limit', () => {
    const cost = costOf(
      '{ topProducts(first:100){ reviews(first:100){ author { reviews(first:100){ product { reviews(first:100){ author { name } } } } } } } }',
    );
    expect(cost).toBeGreaterThan(100 ** 4);
    expect(cost).toBeGreaterThan(defaultMaxCost);
  });

  it('admits every storefront operation in operations/ with room to spare under the default limit', () => {
    const costs: Record<string, number> = {};
    for (const file of operationFiles(path.join(ROOT, 'operations'))) {
      const document = parse(readFileSync(file, 'utf8'));
      for (const definition of document.definitions) {
        if (definition.kind !== Kind.OPERATION_DEFINITION) continue;
        costs[definition.name?.value ?? file] = estimateCost(schema, document, definition, {}, directives);
      }
    }
    expect(Object.keys(costs).length).toBeGreaterThanOrEqual(9);
    const dearest = Math.max(...Object.values(costs));
    // "Room to spare": the dearest operation at its default sizes uses under a tenth of the limit.
    expect(dearest * 10).toBeLessThanOrEqual(defaultMaxCost);
    console.log(`storefront operation costs (limit ${defaultMaxCost}): ${JSON.stringify(costs)}`);
  });
});

describe('the token limit', () => {
  const tokens = (text: string) => {
    const lexer = new Lexer(new Source(text));
    let n = 0;
    while (lexer.advance().kind !== TokenKind.EOF) n++;
    return n;
  };

  it('admits every storefront operation and a full introspection query with room to spare', () => {
    const counts: Record<string, number> = Object.fromEntries(
      operationFiles(path.join(ROOT, 'operations')).map((file) => [path.relative(ROOT, file), tokens(readFileSync(file, 'utf8'))]),
    );
    counts.introspection = tokens(
      getIntrospectionQuery({
        descriptions: true,
        specifiedByUrl: true,
        directiveIsRepeatable: true,
        schemaDescription: true,
        inputValueDeprecation: true,
      }),
    );
    // "Room to spare": the longest at most a fifth of MAX_QUERY_TOKENS' default.
    expect(Math.max(...Object.values(counts)) * 5).toBeLessThanOrEqual(defaultDocumentLimits.tokens);
    console.log(`tokens per document (limit ${defaultDocumentLimits.tokens}): ${JSON.stringify(counts)}`);
  });
});

describe('the actual cost', () => {
  it('counts what came back, not the estimated list sizes', () => {
    const document = parse('{ topProducts(first: 10) { name reviews(first: 5) { author { name } } } }');
    const data = {
      topProducts: [
        { name: 'a', reviews: [{ author: { name: 'x' } }] },
        { name: 'b', reviews: [] },
      ],
    };
    // 2 products + 1 review + 1 author.
    expect(actualCost(schema, document, operationOf(document), data, directives)).toBe(4);
    expect(estimateCost(schema, document, operationOf(document), {}, directives)).toBe(10 * (1 + 5 * 2));
  });
});
