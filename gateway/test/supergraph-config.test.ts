// SUPERGRAPH_CONFIG mode: a rover supergraph.yaml composed by the gateway at start and on change.
import { writeFile } from 'node:fs/promises';
import { CompositionFailedError, createGateway } from '../src/gateway';
import { SupergraphConfigError } from '@shop/composition';
import {
  type Fixtures,
  type GatewayUnderTest,
  type TempDir,
  authorsSdl,
  booksSdl,
  metricsText,
  query,
  seriesValue,
  silentTelemetry,
  startFixtures,
  startGateway,
  tempDir,
  waitFor,
} from './harness';

let fixtures: Fixtures;
let dir: TempDir;

beforeAll(async () => {
  fixtures = await startFixtures();
  dir = await tempDir();
});

afterAll(async () => {
  await fixtures?.stop();
  await dir?.remove();
});

const yaml = (urls: { authors: string; books: string }, authorsSchema = 'file: ./schemas/authors.graphql') => `# rover's format
federation_version: =2.14.4
subgraphs:
  authors:
    routing_url: ${urls.authors}
    schema:
      ${authorsSchema}
  books:
    routing_url: ${urls.books}
    schema:
      file: ./schemas/books.graphql
`;

describe('a supergraph.yaml with schema files', () => {
  let gw: GatewayUnderTest;
  let authorsFile: string;
  let booksFile: string;

  beforeAll(async () => {
    authorsFile = await dir.write('schemas/authors.graphql', authorsSdl(false));
    booksFile = await dir.write('schemas/books.graphql', booksSdl);
    const configPath = await dir.write('supergraph.yaml', yaml(fixtures.urls));
    // No overrides: the routing URLs come from the yaml.
    gw = await startGateway({ configPath }, undefined);
  });

  afterAll(async () => {
    await gw?.stop();
  });

  it('is composed at start and serves federated queries', async () => {
    const { body } = await query(gw.url, '{ books { title author { name } } }');
    expect(body.errors).toBeUndefined();
    expect(body.data?.books).toHaveLength(5);
    expect(gw.gateway.supergraphSdl()).toContain(`@join__graph(name: "authors", url: "${fixtures.urls.authors}")`);
  });

  it('is recomposed when a schema file changes', async () => {
    await writeFile(authorsFile, authorsSdl(true));
    await waitFor('bio to validate', async () => (await query(gw.url, '{ authors { bio } }')).body.errors === undefined);
  });

  it('keeps the previous supergraph when a change does not compose', async () => {
    const metric = 'gateway_supergraph_reloads_total{result="failure"}';
    const before = seriesValue(await metricsText(gw.url), metric);
    await writeFile(booksFile, booksSdl.replace('type Book @key(fields: "id")', 'type Book @key(fields: "isbn")'));
    await waitFor('the failed reload', async () => seriesValue(await metricsText(gw.url), metric) > before);
    const { body } = await query(gw.url, '{ books { title author { name bio } } }');
    expect(body.errors).toBeUndefined();
    // Fixing the file recovers without a restart.
    await writeFile(booksFile, booksSdl);
    await waitFor('the successful reload', async () => {
      const text = await metricsText(gw.url);
      return seriesValue(text, 'gateway_supergraph_reloads_total{result="success"}') >= 1 && gw.gateway.supergraphSdl().includes('bio');
    });
  });
});

describe('a supergraph.yaml with subgraph_url', () => {
  it('introspects the running subgraph for its SDL and routes to it', async () => {
    const configPath = await dir.write(
      'introspect.yaml',
      `federation_version: 2
subgraphs:
  authors:
    schema:
      subgraph_url: ${fixtures.urls.authors}
  books:
    routing_url: ${fixtures.urls.books}
    schema:
      sdl: |
${booksSdl
  .split('\n')
  .map((line) => `        ${line}`)
  .join('\n')}
`,
    );
    const gw = await startGateway({ configPath }, undefined, { watch: false });
    try {
      // The running authors subgraph serves bio, so the introspected supergraph has it.
      const { body } = await query(gw.url, '{ books { author { name bio } } }');
      expect(body.errors).toBeUndefined();
    } finally {
      await gw.stop();
    }
  });
});

describe('start-up failures', () => {
  it('a yaml that does not compose rejects, naming the subgraph and the place', async () => {
    await dir.write(
      'schemas/broken-books.graphql',
      booksSdl.replace('@key(fields: "id") {\n  id: ID!\n  title', '@key(fields: "isbn") {\n  id: ID!\n  title'),
    );
    const configPath = await dir.write(
      'broken.yaml',
      yaml(fixtures.urls).replace('./schemas/books.graphql', './schemas/broken-books.graphql'),
    );
    const attempt = createGateway({ telemetry: silentTelemetry('gateway'), supergraph: { configPath } });
    await expect(attempt).rejects.toBeInstanceOf(CompositionFailedError);
    await expect(attempt).rejects.toThrow(/KEY_INVALID_FIELDS: \[books\].*\n {4}at subgraph "books" Book \(.*broken-books\.graphql:2:11\)/);
  });

  it('a schema file that does not exist rejects, naming the subgraph and the file', async () => {
    const configPath = await dir.write('missing.yaml', yaml(fixtures.urls).replace('./schemas/books.graphql', './schemas/nope.graphql'));
    const attempt = createGateway({ telemetry: silentTelemetry('gateway'), supergraph: { configPath } });
    await expect(attempt).rejects.toBeInstanceOf(SupergraphConfigError);
    await expect(attempt).rejects.toThrow(/Subgraph "books": cannot read schema file .*nope\.graphql/);
  });

  it('a supergraph file that is not a supergraph rejects', async () => {
    const path = await dir.write('not-a-supergraph.graphql', 'type Query { a: Int }');
    await expect(createGateway({ telemetry: silentTelemetry('gateway'), supergraph: { path } })).rejects.toThrow(
      /could not load its supergraph/,
    );
  });
});
