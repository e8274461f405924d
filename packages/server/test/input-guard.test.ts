import { buildSubgraphSchema } from '@apollo/subgraph';
import { type DocumentNode, type GraphQLError, Kind, type OperationDefinitionNode, parse } from 'graphql';
import { checkRequestInput, defaultInputLimits, inputGuardPlugin } from '../src';

const schema = buildSubgraphSchema({
  typeDefs: parse(`
    extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])
    type User @key(fields: "id") { id: ID! name: String! }
    input UserInput { name: String! tags: [String!] friendIds: [ID!] }
    type Query { user(id: ID!): User  search(text: String, after: String): [User!]! }
    type Mutation { createUser(input: UserInput!): User!  createUsers(inputs: [UserInput!]!): [User!]! }
  `),
  resolvers: {},
});

/** The first problem with a request, as `[field, message]`, or undefined. */
function check(query: string, variables?: Record<string, unknown>, limits = defaultInputLimits): GraphQLError | undefined {
  const document = parse(query);
  const operation = document.definitions.find((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  return checkRequestInput(schema, document, operation, variables, limits);
}

const NUL = '\u0000';

describe('checkRequestInput', () => {
  it('lets ordinary input through', () => {
    expect(check('{ user(id: "u00001") { name } search(text: "ünïcode ✓") { id } }')).toBeUndefined();
    expect(
      check('mutation ($i: UserInput!) { createUser(input: $i) { id } }', { i: { name: 'Ada', tags: ['a'], friendIds: ['u1'] } }),
    ).toBeUndefined();
    expect(check('query ($t: String) { search(text: $t) { id } }', { t: 'x'.repeat(10_000) })).toBeUndefined();
  });

  it('refuses a NUL character in a literal argument, naming the argument and quoting nothing', () => {
    const error = check(`{ user(id: "u\\u0000") { name } }`);
    expect(error?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'id', http: { status: 400 } });
    expect(error?.message).toBe('Argument "id" contains a NUL character (\\u0000), which is not allowed.');
  });

  it('refuses a NUL character inside a variable, at any depth, naming the path', () => {
    const error = check('mutation ($i: [UserInput!]!) { createUsers(inputs: $i) { id } }', {
      i: [{ name: 'ok' }, { name: 'ok', tags: ['fine', `bad${NUL}`] }],
    });
    expect(error?.extensions?.field).toBe('$i[1].tags[1]');
    expect(error?.message).toBe('Variable "$i[1].tags[1]" contains a NUL character (\\u0000), which is not allowed.');
  });

  it('refuses a NUL character in a field of a literal input object and in a variable default', () => {
    expect(check(`mutation { createUser(input: { name: "a\\u0000" }) { id } }`)?.extensions?.field).toBe('input.name');
    expect(check(`query ($t: String = "\\u0000") { search(text: $t) { id } }`)?.message).toMatch(
      /^The default of variable "\$t" contains a NUL/,
    );
  });

  it('refuses strings over maxStringLength and IDs over maxIdLength, saying the limit', () => {
    const long = check('query ($t: String) { search(text: $t) { id } }', { t: 'x'.repeat(100_000) });
    expect(long?.message).toBe('Variable "$t" is 100000 characters long; the limit is 10000.');
    expect(long?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: '$t', limit: 10_000 });
    const id = check(`{ user(id: "${'u'.repeat(129)}") { name } }`);
    expect(id?.message).toBe('Argument "id" is an ID of 129 characters; the limit is 128.');
    expect(check(`{ user(id: "${'u'.repeat(128)}") { name } }`)).toBeUndefined();
    // IDs inside input objects and lists too; a single value given for a list counts as its item.
    expect(
      check('mutation ($i: UserInput!) { createUser(input: $i) { id } }', { i: { name: 'a', friendIds: ['x'.repeat(200)] } })?.extensions
        ?.field,
    ).toBe('$i.friendIds[0]');
    expect(
      check('mutation ($i: UserInput!) { createUser(input: $i) { id } }', { i: { name: 'a', friendIds: 'x'.repeat(200) } })?.extensions
        ?.field,
    ).toBe('$i.friendIds');
    expect(
      check('query ($t: String) { search(text: $t) { id } }', { t: 'x'.repeat(50) }, { maxStringLength: 49, maxIdLength: 10 })?.extensions
        ?.limit,
    ).toBe(49);
  });

  it('checks _entities representations, key fields of type ID by the ID limit', () => {
    const query = 'query ($r: [_Any!]!) { _entities(representations: $r) { ... on User { name } } }';
    expect(check(query, { r: [{ __typename: 'User', id: 'u1' }] })).toBeUndefined();
    expect(check(query, { r: [{ __typename: 'User', id: 'u'.repeat(129) }] })?.extensions?.field).toBe('$r[0].id');
    expect(check(query, { r: [{ __typename: 'User', id: `u${NUL}` }] })?.extensions?.field).toBe('$r[0].id');
    expect(check(query, { r: [{ __typename: 'User', id: 'u1', [`k${NUL}`]: 1 }] })?.message).toMatch(
      /^A field name in variable "\$r\[0\]" contains a NUL/,
    );
  });

  it('walks a deeply nested value without overflowing the stack', () => {
    let deep: unknown = `x${NUL}`;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    const query = 'query ($r: [_Any!]!) { _entities(representations: $r) { ... on User { name } } }';
    expect(check(query, { r: deep })?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});

describe('inputGuardPlugin', () => {
  /** Runs the plugin's didResolveOperation as Apollo would for one request; returns what it throws. */
  async function guard(
    plugin: ReturnType<typeof inputGuardPlugin>,
    document: DocumentNode,
    variables?: Record<string, unknown>,
  ): Promise<unknown> {
    const operation = document.definitions.find((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
    const listener = await plugin.requestDidStart?.({} as never);
    try {
      await listener?.didResolveOperation?.({ schema, document, operation, request: { variables } } as never);
      return undefined;
    } catch (err) {
      return err;
    }
  }

  it('refuses a repeated hostile document every time, each with an error of its own, and still checks each request variables', async () => {
    const plugin = inputGuardPlugin();
    const hostile = parse(`{ user(id: "u\\u0000") { name } }`);
    const first = (await guard(plugin, hostile)) as GraphQLError;
    const second = (await guard(plugin, hostile)) as GraphQLError;
    expect(first.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'id' });
    expect(second.message).toBe(first.message);
    expect(second).not.toBe(first);
    // The same parsed document (its literals known clean) with a clean, then a hostile, variable.
    const withVariable = parse('query ($t: String) { search(text: $t) { id } }');
    expect(await guard(plugin, withVariable, { t: 'fine' })).toBeUndefined();
    expect(((await guard(plugin, withVariable, { t: NUL })) as GraphQLError).extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: '$t',
    });
  });
});
