// The nulls the gateway puts in place of a subgraph's data are errors with a path: a subgraph that
// answers null for a non-null field (Apollo reports it only in extensions.valueCompletion), and a
// subgraph that cannot be reached (Apollo reports one error without a path).
import { composeServices } from '@apollo/composition';
import { parse } from 'graphql';
import { type Subgraph, createSubgraph } from '@shop/server';
import { SUBGRAPH_UNAVAILABLE } from '../src/gateway';
import { SUBGRAPH_NON_NULL_VIOLATION, fieldOwners } from '../src/value-completion';
import { type GatewayUnderTest, type GraphQLResponse, query, silentTelemetry, startGateway } from './harness';

const LINK = 'extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])';

const peopleSdl = `${LINK}
type Person @key(fields: "id") {
  id: ID!
  name: String!
}
type Query {
  person(id: ID!): Person
}
`;

// posts refers to people it does not store: p-gone is an author people has never heard of.
const postsSdl = `${LINK}
type Post @key(fields: "id") {
  id: ID!
  title: String!
  author: Person!
  editor: Person
}
type Person @key(fields: "id") {
  id: ID!
  posts: [Post!]
}
type Query {
  post(id: ID!): Post
  posts: [Post!]!
}
`;

const PEOPLE = [
  { id: 'p1', name: 'Ada' },
  { id: 'p2', name: 'Grace' },
];
const POSTS = [
  { id: '1', title: 'Engines', author: 'p1', editor: 'p2' },
  { id: '2', title: 'Ghosts', author: 'p-gone', editor: 'p-gone' },
  { id: '3', title: 'Bugs', author: 'p2', editor: null },
];

async function startSubgraphs(): Promise<{ people: Subgraph; posts: Subgraph; urls: { people: string; posts: string } }> {
  const people = await createSubgraph({
    telemetry: silentTelemetry('people'),
    typeDefs: parse(peopleSdl),
    resolvers: {
      Query: { person: (_: unknown, { id }: { id: string }) => PEOPLE.find((p) => p.id === id) ?? null },
      Person: { __resolveReference: (ref: { id: string }) => PEOPLE.find((p) => p.id === ref.id) ?? null },
    },
    context: async () => ({}),
    ready: async () => true,
  });
  type Post = (typeof POSTS)[number];
  const posts = await createSubgraph({
    telemetry: silentTelemetry('posts'),
    typeDefs: parse(postsSdl),
    resolvers: {
      Query: {
        post: (_: unknown, { id }: { id: string }) => POSTS.find((p) => p.id === id) ?? null,
        posts: () => POSTS,
      },
      Post: {
        author: (post: Post) => ({ id: post.author }),
        editor: (post: Post) => (post.editor ? { id: post.editor } : null),
      },
      Person: { posts: (person: { id: string }) => POSTS.filter((p) => p.author === person.id) },
    },
    context: async () => ({}),
    ready: async () => true,
  });
  const running = { people: await people.listen(0, '127.0.0.1'), posts: await posts.listen(0, '127.0.0.1') };
  return { people, posts, urls: { people: `${running.people.url}/graphql`, posts: `${running.posts.url}/graphql` } };
}

// Nothing listens on port 9: a subgraph there is down.
const DOWN = 'http://127.0.0.1:9/graphql';

const supergraphSdl = composeServices([
  { name: 'people', url: DOWN, typeDefs: parse(peopleSdl) },
  { name: 'posts', url: DOWN, typeDefs: parse(postsSdl) },
]).supergraphSdl;
if (!supergraphSdl) throw new Error('the fixture does not compose');

let subgraphs: Awaited<ReturnType<typeof startSubgraphs>>;
/** Both subgraphs up, with the plugin, and without it (Apollo's own behaviour). */
let gateway: GatewayUnderTest;
let plain: GatewayUnderTest;
/** With the plugin: posts down, then people down. */
let postsDown: GatewayUnderTest;
let peopleDown: GatewayUnderTest;

// No retries and no breaker: one refused connection is the failure, at once.
const start = (urls: { people: string; posts: string }, plugin = true) =>
  startGateway({ sdl: supergraphSdl }, undefined, {
    subgraphUrlOverrides: urls,
    retry: false,
    breaker: false,
    explorer: false,
    // Not under test: cost would add extensions.cost to every response; shedding and rate limits
    // could refuse a request on a busy machine.
    cost: false,
    loadShedding: false,
    rateLimit: false,
    valueCompletion: plugin,
  });

beforeAll(async () => {
  subgraphs = await startSubgraphs();
  gateway = await start(subgraphs.urls);
  plain = await start(subgraphs.urls, false);
  postsDown = await start({ ...subgraphs.urls, posts: DOWN });
  peopleDown = await start({ ...subgraphs.urls, people: DOWN });
});

afterAll(async () => {
  for (const gw of [gateway, plain, postsDown, peopleDown]) await gw?.stop();
  await Promise.all([subgraphs?.people.stop(), subgraphs?.posts.stop()]);
});

const ask = async (gw: GatewayUnderTest, text: string): Promise<GraphQLResponse> => {
  const { status, body } = await query(gw.url, text);
  expect(status).toBe(200);
  return body;
};

const unavailable = (serviceName: string, path: (string | number)[]) => ({
  message: expect.stringContaining(`Subgraph "${serviceName}" is unavailable`),
  path,
  extensions: expect.objectContaining({ code: SUBGRAPH_UNAVAILABLE, serviceName }),
});

describe('fieldOwners', () => {
  it('reads which subgraphs resolve each field from the join directives', () => {
    const owners = fieldOwners(supergraphSdl);
    expect(owners.get('Person.name')).toEqual(new Set(['people']));
    expect(owners.get('Person.posts')).toEqual(new Set(['posts']));
    // A key field every subgraph that declares the type can resolve.
    expect(owners.get('Person.id')).toEqual(new Set(['people', 'posts']));
    expect(owners.get('Query.post')).toEqual(new Set(['posts']));
  });
});

describe('a subgraph that answers null for a non-null field', () => {
  const text = '{ post(id: "2") { title author { name } } }';

  it('without the plugin: Apollo nulls the post and says so only in extensions.valueCompletion', async () => {
    const body = await ask(plain, text);
    expect(body.data).toEqual({ post: null });
    expect(body.errors).toBeUndefined();
    expect(body.extensions?.valueCompletion).toEqual([expect.objectContaining({ path: ['post', 'author', 'name'] })]);
  });

  it('with it: an error at the path of the non-null field, with its subgraph, and no valueCompletion', async () => {
    const body = await ask(gateway, text);
    expect(body).toEqual({
      data: { post: null },
      errors: [
        {
          message: 'Cannot return null for non-nullable field Person.name.',
          path: ['post', 'author', 'name'],
          extensions: { code: SUBGRAPH_NON_NULL_VIOLATION, serviceName: 'people' },
        },
      ],
    });
  });

  it('in a list: one error per item, each at its index; the other items keep their data', async () => {
    const body = await ask(gateway, '{ posts { id editor { name } } }');
    expect(body.data).toEqual({
      posts: [
        { id: '1', editor: { name: 'Grace' } },
        { id: '2', editor: null },
        { id: '3', editor: null },
      ],
    });
    // Post 3 has no editor: posts said so, nothing is missing, no error.
    expect(body.errors).toEqual([
      {
        message: 'Cannot return null for non-nullable field Person.name.',
        path: ['posts', 1, 'editor', 'name'],
        extensions: { code: SUBGRAPH_NON_NULL_VIOLATION, serviceName: 'people' },
      },
    ]);
  });

  it('a complete answer is left as it was', async () => {
    const text2 = '{ post(id: "1") { title author { name } } }';
    expect(await ask(gateway, text2)).toEqual(await ask(plain, text2));
    expect(await ask(gateway, text2)).toEqual({ data: { post: { title: 'Engines', author: { name: 'Ada' } } } });
  });
});

describe('a subgraph that is down', () => {
  it("costs only its own fields: the entity's other fields answer, the error is at the null", async () => {
    const body = await ask(postsDown, '{ person(id: "p1") { name posts { title } } }');
    expect(body.data).toEqual({ person: { name: 'Ada', posts: null } });
    expect(body.errors).toEqual([unavailable('posts', ['person', 'posts'])]);
  });

  it('at the root: the error is at the root field', async () => {
    const body = await ask(postsDown, '{ post(id: "1") { title } person(id: "p2") { name } }');
    expect(body.data).toEqual({ post: null, person: { name: 'Grace' } });
    expect(body.errors).toEqual([unavailable('posts', ['post'])]);
  });

  it('a reference it could not resolve: the error is at the non-null field under the null', async () => {
    const body = await ask(peopleDown, '{ post(id: "1") { title editor { name } } }');
    expect(body.data).toEqual({ post: { title: 'Engines', editor: null } });
    expect(body.errors).toEqual([unavailable('people', ['post', 'editor', 'name'])]);
  });

  it('in a list: an error at every item it owed', async () => {
    const body = await ask(peopleDown, '{ posts { id editor { id name } } }');
    expect(body.data).toEqual({
      posts: [
        { id: '1', editor: null },
        { id: '2', editor: null },
        { id: '3', editor: null },
      ],
    });
    // Post 3's editor is a null posts chose; with people down the gateway cannot tell it from a
    // missing one, so it is reported too (an error too many rather than a silent null).
    expect(body.errors).toEqual([
      unavailable('people', ['posts', 0, 'editor', 'name']),
      unavailable('people', ['posts', 1, 'editor', 'name']),
      unavailable('people', ['posts', 2, 'editor', 'name']),
    ]);
  });

  it('without the plugin the same failure is one error without a path', async () => {
    const plainDown = await start({ ...subgraphs.urls, posts: DOWN }, false);
    try {
      const body = await ask(plainDown, '{ person(id: "p1") { name posts { title } } }');
      expect(body.data).toEqual({ person: { name: 'Ada', posts: null } });
      expect(body.errors).toEqual([
        {
          message: expect.stringContaining('Subgraph "posts" is unavailable'),
          extensions: expect.objectContaining({ code: SUBGRAPH_UNAVAILABLE, serviceName: 'posts' }),
        },
      ]);
    } finally {
      await plainDown.stop();
    }
  });
});
