import { parse } from 'graphql';
import { type GraphQLClient, graphqlClient, testTelemetry } from '@shop/testing';
import { DomainError, type Subgraph, createSubgraph, declareChanges } from '../src';

const typeDefs = parse(`
  type Query { stock(id: ID!): Int }
  type Item { id: ID! quantity: Int! }
  type Mutation { setStock(id: ID!, quantity: Int!): Item!  renameShelf(shelf: ID!, name: String!): Boolean! }
`);

interface Item {
  id: string;
  quantity: number;
}

describe('declareChanges: mutations name the entities they change, whatever the client selected', () => {
  let subgraph: Subgraph;
  let client: GraphQLClient;
  const stock = new Map<string, number>();
  let renames = 0;

  beforeAll(async () => {
    const Mutation = {
      setStock: async (_: unknown, args: { id: string; quantity: number }): Promise<Item> => {
        if (args.quantity < 0) throw new DomainError('BAD_USER_INPUT', 'quantity must not be negative', 'quantity');
        stock.set(args.id, args.quantity);
        return { id: args.id, quantity: args.quantity };
      },
      renameShelf: (_: unknown, args: { shelf: string; name: string }) => {
        renames++;
        return args.name.length > 0;
      },
    };
    subgraph = await createSubgraph({
      telemetry: testTelemetry('changes'),
      typeDefs,
      resolvers: {
        Query: { stock: (_: unknown, { id }: { id: string }) => stock.get(id) ?? null },
        Mutation: declareChanges(Mutation, {
          setStock: (_, item) => [{ __typename: 'Item', id: item.id }],
          // Returns no entity at all: the change is named from the arguments.
          renameShelf: ({ shelf }) => [
            { __typename: 'Shelf', id: shelf },
            { __typename: 'Shelf', id: shelf },
          ],
        }),
      },
      context: async () => ({}),
      ready: async () => true,
    });
    client = graphqlClient(`${(await subgraph.listen(0, '127.0.0.1')).url}/graphql`);
  });
  afterAll(() => subgraph.stop());

  const invalidateOf = (res: unknown) => (res as { extensions?: { invalidate?: unknown } }).extensions?.invalidate;

  it('lists the changed entity with a selection of only __typename', async () => {
    const res = await client.query('mutation { setStock(id: "i1", quantity: 3) { __typename } }');
    expect(res.errors).toBeUndefined();
    expect(invalidateOf(res)).toEqual([{ __typename: 'Item', id: 'i1' }]);
  });

  it('lists changes named from arguments, once each, and each field of a document', async () => {
    const res = await client.query('mutation { a: renameShelf(shelf: "s1", name: "x") b: setStock(id: "i2", quantity: 1) { quantity } }');
    expect(res.errors).toBeUndefined();
    expect(renames).toBe(1);
    expect(invalidateOf(res)).toEqual([
      { __typename: 'Shelf', id: 's1' },
      { __typename: 'Item', id: 'i2' },
    ]);
  });

  it('lists no entity for a mutation that failed (an empty list), and no list for a query', async () => {
    const failed = await client.query('mutation { setStock(id: "i3", quantity: -1) { id } }');
    expect(failed.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    // A mutation says it changed nothing (an empty list), which is not the same as saying nothing.
    expect(invalidateOf(failed)).toEqual([]);
    const read = await client.query('{ stock(id: "i1") }');
    expect(read.data).toEqual({ stock: 3 });
    expect(invalidateOf(read)).toBeUndefined();
  });

  it('refuses to start a subgraph with a Mutation field that declares nothing', async () => {
    const start = () =>
      createSubgraph({
        telemetry: testTelemetry('undeclared'),
        typeDefs,
        resolvers: {
          Mutation: {
            ...declareChanges(
              { setStock: () => ({ id: 'x', quantity: 0 }) },
              { setStock: (_, item) => [{ __typename: 'Item', id: item.id }] },
            ),
            renameShelf: () => true,
          },
        },
        context: async () => ({}),
        ready: async () => true,
      });
    await expect(start()).rejects.toThrow('undeclared: Mutation.renameShelf must declare the entities it changes');
    // A subgraph that declares none is refused only when asked to be strict.
    await expect(
      createSubgraph({
        telemetry: testTelemetry('strict'),
        typeDefs,
        resolvers: { Mutation: { setStock: () => null, renameShelf: () => true } },
        requireDeclaredChanges: true,
        context: async () => ({}),
        ready: async () => true,
      }),
    ).rejects.toThrow('strict: Mutation.setStock, Mutation.renameShelf must declare');
  });
});
