// Our compiled result shaping (execute/shape.ts) against @apollo/gateway's own `computeResponse`,
// on the same operations and the same merged data: well-formed data, then data a broken subgraph
// could send (nulls in non-null places, wrong leaf types, unknown enum values and `__typename`s,
// missing `__typename`s), generated from a seeded random source so every run checks the same
// thousands of inputs. Data, errors (messages, paths, codes) and thrown errors must be identical.
import { buildSchema as buildFederationSchema, operationFromDocument } from '@apollo/federation-internals';
import { computeResponse } from '@apollo/gateway/dist/resultShaping';
import { type DocumentNode, type OperationDefinitionNode, buildSchema, parse } from 'graphql';
import { OperationShaper } from '../src/execute/shape';

const SDL = `
scalar JSON
enum Color { RED GREEN }
interface Node { id: ID! }
type Person implements Node { id: ID! name: String! age: Int nick: String friends: [Person!] color: Color tags: [String]! matrix: [[Int]!] grid: [[Color!]] }
type Film implements Node { id: ID! title: String rating: Float director: Person meta: JSON }
union Item = Person | Film
type Query {
  node(id: ID!): Node
  nodes: [Node]
  items: [Item!]!
  person: Person!
  people: [[Person]]
  count: Int!
}
`;
const schema = buildSchema(SDL);
const federationSchema = buildFederationSchema(SDL);

const OPERATIONS: Array<{ query: string; variables?: Record<string, unknown> }> = [
  { query: '{ person { id name age } count }' },
  { query: '{ p: person { n: name name t: __typename friends { name friends { id } } } }' },
  { query: '{ nodes { __typename id ... on Person { name color tags } ... on Film { title rating director { name } meta } } }' },
  { query: '{ items { ... on Person { name } ... on Film { title } __typename } }' },
  {
    query:
      '{ items { kind: __typename ... on Node { id } ... F } } fragment F on Film { title director { ...P } } fragment P on Person { name age }',
  },
  { query: '{ people { name friends { name } } }' },
  { query: '{ person { matrix grid } nodes { ... on Person { matrix grid } } }' },
  {
    query:
      'query Q($a: Boolean!, $b: Boolean = true) { person { name @include(if: $a) age @skip(if: $b) ... on Person @include(if: $b) { nick } } }',
    variables: { a: true },
  },
  {
    query:
      'query Q($a: Boolean!, $b: Boolean = true) { person { name @include(if: $a) age @skip(if: $b) ... on Person @include(if: $b) { nick } } }',
    variables: { a: false, b: false },
  },
  { query: '{ node(id: "1") { id ... on Person { name } ... on Person { age friends { id } } ... on Node { __typename } } }' },
  { query: '{ person { name } __typename alias: __typename }' },
  { query: '{ __typename __schema { queryType { name } } t: __type(name: "Person") { name kind } person { id } }' },
];

/** A small seeded generator (mulberry32): the same inputs on every run. */
function random(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PEOPLE = (id: string) => ({
  __typename: 'Person',
  id,
  name: `N${id}`,
  n: `N${id}`,
  t: 'Person',
  age: 30,
  nick: 'x',
  color: 'RED',
  tags: ['a', null],
  matrix: [[1, null, 3], [4]],
  grid: [['RED', 'GREEN'], null, ['GREEN']],
  friends: [{ __typename: 'Person', id: `${id}f`, name: 'F', friends: [{ __typename: 'Person', id: 'ff' }] }],
});
const FILM = { __typename: 'Film', id: 'f1', title: 'T', rating: 4.5, director: PEOPLE('d'), meta: { any: ['thing'] } };

/** The data a plan could merge for every operation above (keys they do not select are extra, as fetches leave them). */
const BASE = {
  person: PEOPLE('1'),
  p: PEOPLE('1'),
  count: 3,
  nodes: [PEOPLE('2'), FILM, null],
  items: [FILM, PEOPLE('3')],
  people: [[PEOPLE('4'), null], null],
  node: PEOPLE('5'),
};

const WRONG: unknown[] = [
  null,
  null,
  null,
  'text',
  7,
  1.5,
  true,
  {},
  [],
  'BLUE',
  { __typename: 'Nope' },
  { __typename: 'Query' },
  undefined,
];

/** `value` with some of its values replaced by wrong ones, picked by `next`. */
function corrupt(value: unknown, next: () => number, rate: number): unknown {
  if (next() < rate) return WRONG[Math.floor(next() * WRONG.length)];
  if (Array.isArray(value)) return value.map((v) => corrupt(v, next, rate));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      // Sometimes drop the __typename entirely, as a subgraph that forgets it would.
      if (k === '__typename' && next() < rate) continue;
      out[k] = corrupt(v, next, rate);
    }
    return out;
  }
  return value;
}

function apolloShape(document: DocumentNode, variables: Record<string, unknown>, input: Record<string, unknown>) {
  try {
    const operation = operationFromDocument(federationSchema, document, { validate: false });
    const { data, errors } = computeResponse({
      operation,
      variables,
      input,
      introspectionHandling: () => 'introspected',
    });
    return {
      data: JSON.parse(JSON.stringify(data)) as unknown,
      errors: errors.map((e) => ({ message: e.message, path: e.path, code: e.extensions.code })),
    };
  } catch (err) {
    return { thrown: (err as Error).message };
  }
}

function ourShape(document: DocumentNode, variables: Record<string, unknown>, input: Record<string, unknown>) {
  try {
    const operation = document.definitions.find((d): d is OperationDefinitionNode => d.kind === 'OperationDefinition');
    if (!operation) throw new Error('no operation');
    const shaper = new OperationShaper(schema, document, operation);
    // Introspection is graphql-js's own work in both; the stand-in keeps the comparison on shaping.
    (shaper as unknown as { introspect: () => unknown }).introspect = () => 'introspected';
    const { data, errors } = shaper.shape(input, variables, variables);
    return {
      data: JSON.parse(JSON.stringify(data)) as unknown,
      errors: errors.map((e) => ({ message: e.message, path: e.path, code: e.extensions.code })),
    };
  } catch (err) {
    return { thrown: (err as Error).message };
  }
}

/** Variables as the executor hands them over: coerced, defaults applied. */
const withDefaults = (variables: Record<string, unknown> | undefined) => ({ b: true, ...variables });

describe('result shaping: ours against computeResponse', () => {
  it.each(OPERATIONS.map((o, i) => [i, o] as const))('operation %i on well-formed data', (_i, { query, variables }) => {
    const document = parse(query);
    const ours = ourShape(document, withDefaults(variables), structuredClone(BASE));
    expect(ours).toEqual(apolloShape(document, withDefaults(variables), structuredClone(BASE)));
    expect(ours).not.toHaveProperty('thrown');
  });

  it('keeps aliases named like Object.prototype members (`__proto__`, `constructor`) as plain own fields', () => {
    const document = parse('{ person { __proto__: name constructor: age toString: id } }');
    const input = JSON.parse('{"person":{"__proto__":"Ada","constructor":36,"toString":"u1"}}') as Record<string, unknown>;
    const ours = ourShape(document, {}, input);
    expect(ours).toEqual(apolloShape(document, {}, JSON.parse(JSON.stringify(input)) as Record<string, unknown>));
    expect(JSON.stringify(ours)).toBe('{"data":{"person":{"__proto__":"Ada","constructor":36,"toString":"u1"}},"errors":[]}');
    const operation = document.definitions[0] as OperationDefinitionNode;
    const { data } = new OperationShaper(schema, document, operation).shape(input, {}, {});
    const person = (data as { person: object }).person;
    expect(Object.getPrototypeOf(person)).toBe(Object.prototype);
    expect(Object.keys(person)).toEqual(['__proto__', 'constructor', 'toString']);
  });

  it('gives the same data, errors and failures on 6,000 corrupted inputs', () => {
    const next = random(17);
    let differences = 0;
    let withErrors = 0;
    let thrown = 0;
    const firstDifferences: unknown[] = [];
    for (let round = 0; round < 6000; round++) {
      const { query, variables } = OPERATIONS[round % OPERATIONS.length] as (typeof OPERATIONS)[number];
      const document = parse(query);
      const input = corrupt(BASE, next, 0.04 + (round % 5) * 0.03) as Record<string, unknown>;
      const ours = ourShape(document, withDefaults(variables), structuredClone(input));
      const theirs = apolloShape(document, withDefaults(variables), structuredClone(input));
      if ('thrown' in theirs) thrown++;
      else if (theirs.errors.length > 0) withErrors++;
      if (JSON.stringify(ours) !== JSON.stringify(theirs)) {
        differences++;
        if (firstDifferences.length < 3) firstDifferences.push({ query, ours, theirs });
      }
    }
    expect(firstDifferences).toEqual([]);
    expect(differences).toBe(0);
    // The corruption reaches every kind of outcome: shaping errors and data that cannot be shaped.
    expect(withErrors).toBeGreaterThan(1000);
    expect(thrown).toBeGreaterThan(100);
  });
});
