// The explorer served by the gateway itself: the page, its assets (all local, nothing external),
// the operations offered as tabs, the browser redirect on /graphql, and the EXPLORER and
// INTROSPECTION switches. No browser here: test/explorer.e2e.test.ts drives a real one.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { apiSchemaOf } from '@shop/composition';
import { type GraphQLSchema, type OperationDefinitionNode, parse } from 'graphql';
import { getVariableValues } from 'graphql/execution/values';
import { EXAMPLE_VARIABLES, createExplorer, exampleVariables, loadOperations } from '../src/explorer';
import { INTROSPECTION_DISABLED } from '../src/gateway';
import { type Fixtures, type GatewayUnderTest, type TempDir, composeFixture, query, startFixtures, startGateway, tempDir } from './harness';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const BROWSER = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

const BOOKS_OPERATION = '# The book list.\nquery Books {\n  books { title author { name } }\n}\n';
const BOOK_OPERATION = '# variables: {"id": "3"}\nquery Book($id: ID!) {\n  book(id: $id) { title }\n}\n';
const AUTHOR_BOOKS_OPERATION = '# variables: {"id": "1"}\nquery AuthorBooks($id: ID!) {\n  book(id: $id) { author { name } }\n}\n';
const RENAME_OPERATION = 'mutation Rename($id: ID!) {\n  rename(id: $id)\n}\n';

let fixtures: Fixtures;
let dir: TempDir;
let gw: GatewayUnderTest;

beforeAll(async () => {
  fixtures = await startFixtures();
  dir = await tempDir();
  // File names chosen so that name order and the tab order (queries first) differ.
  await dir.write('operations/a-rename.graphql', RENAME_OPERATION);
  await dir.write('operations/b-books.graphql', BOOKS_OPERATION);
  await dir.write('operations/c-book.graphql', BOOK_OPERATION);
  await dir.write('operations/notes.txt', 'not an operation');
  // A domain's subfolder is read too.
  await dir.write('operations/authors/a-author-books.graphql', AUTHOR_BOOKS_OPERATION);
  gw = await startGateway({ sdl: composeFixture() }, fixtures, { explorer: { operationsDir: dir.file('operations') } });
});

afterAll(async () => {
  await gw?.stop();
  await fixtures?.stop();
  await dir?.remove();
});

interface PageConfig {
  endpoint: string;
  title: string;
  version: string;
  tabs: { query: string; variables: string }[];
}

async function page(baseUrl: string) {
  const response = await fetch(`${baseUrl}/explorer`);
  const html = await response.text();
  const json = /<script type="application\/json" id="explorer-config">(.*?)<\/script>/s.exec(html)?.[1];
  const config = (json ? JSON.parse(json) : undefined) as PageConfig | undefined;
  const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1] ?? '').filter((u) => !u.startsWith('data:'));
  return { response, html, config, assets };
}

/** Every absolute URL in a text (`http://`, `https://`, any `scheme://`) or protocol-relative one (`//host`). */
const absoluteUrls = (text: string) => [...text.matchAll(/(?:[a-z][a-z\d+.-]*:)?\/\/[^\s"'<>)]+/gi)].map((m) => m[0]);

describe('GET /explorer', () => {
  it('is an HTML page that fetches nothing from another origin', async () => {
    const { response, html, assets } = await page(gw.url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(response.headers.get('cache-control')).toBe('no-cache');
    expect(absoluteUrls(html).filter((u) => !u.startsWith(gw.url))).toEqual([]);
    expect(assets.length).toBeGreaterThanOrEqual(5);
    for (const url of assets) expect(url).toMatch(/^\/explorer\/assets\/[\w.-]+\?v=[\w-]+$/);
    // The browser enforces it too: scripts, styles, fonts and fetches from this origin only.
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toMatch(/https?:|\*/);
  });

  it('loads React, ReactDOM, GraphiQL, the graphql-ws client and the boot script, in that order', async () => {
    const { assets } = await page(gw.url);
    const scripts = assets.filter((u) => u.includes('.js'));
    expect(scripts.map((u) => u.split('?')[0])).toEqual([
      '/explorer/assets/react.production.min.js',
      '/explorer/assets/react-dom.production.min.js',
      '/explorer/assets/graphiql.min.js',
      '/explorer/assets/graphql-ws.min.js',
      '/explorer/assets/explorer.js',
    ]);
  });

  it('offers the operations as tabs, queries first, with example variables, pointed at /graphql', async () => {
    const { config } = await page(gw.url);
    expect(config?.endpoint).toBe('/graphql');
    expect(config?.tabs).toEqual([
      { query: AUTHOR_BOOKS_OPERATION, variables: '{\n  "id": "1"\n}' },
      { query: BOOKS_OPERATION, variables: '{}' },
      { query: BOOK_OPERATION, variables: '{\n  "id": "3"\n}' },
      { query: RENAME_OPERATION, variables: '{}' },
    ]);
    expect(config?.version).toMatch(/^[\w-]{12}$/);
  });

  it('answers HEAD without a body and refuses other methods with a coded 405', async () => {
    const head = await fetch(`${gw.url}/explorer`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    const post = await fetch(`${gw.url}/explorer`, { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect(((await post.json()) as { errors: { extensions: { code: string } }[] }).errors[0]?.extensions.code).toBe('METHOD_NOT_ALLOWED');
  });
});

describe('explorer assets', () => {
  it('are served with their content type and a long cache lifetime', async () => {
    const { assets } = await page(gw.url);
    for (const url of assets) {
      const response = await fetch(`${gw.url}${url}`, { headers: { 'accept-encoding': 'identity' } });
      expect({ url, status: response.status }).toEqual({ url, status: 200 });
      expect(response.headers.get('content-type')).toBe(
        url.includes('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8',
      );
      expect(response.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      const text = await response.text();
      expect(text.length).toBeGreaterThan(100);
      // Source maps are not served, so nothing may ask for them.
      expect(text).not.toMatch(/sourceMappingURL/);
    }
  });

  it('are the installed packages, GraphiQL 3 on React 18, and graphql-ws', async () => {
    const graphiql = await (await fetch(`${gw.url}/explorer/assets/graphiql.min.js`)).text();
    expect(graphiql).toContain('createFetcher');
    const react = await (await fetch(`${gw.url}/explorer/assets/react.production.min.js`)).text();
    expect(react).toMatch(/version="18\./);
    // graphql-ws's browser build, which defines the `graphqlWs` global the boot script subscribes with.
    const graphqlWs = await (await fetch(`${gw.url}/explorer/assets/graphql-ws.min.js`)).text();
    expect(graphqlWs).toContain('.graphqlWs={}');
    expect(graphqlWs).toContain('graphql-transport-ws');
  });

  it('reference nothing outside the page: every CSS url() is a data: URL, no @import', async () => {
    const { assets } = await page(gw.url);
    const styles = assets.filter((u) => u.includes('.css'));
    expect(styles).toHaveLength(2);
    for (const url of styles) {
      const css = await (await fetch(`${gw.url}${url}`)).text();
      expect(css).not.toMatch(/@import/i);
      const refs = [...css.matchAll(/url\(\s*['"]?([^'")]*)/gi)].map((m) => m[1] ?? '');
      expect(refs.filter((ref) => !ref.startsWith('data:'))).toEqual([]);
    }
  });

  it('are gzipped for clients that accept it, and revalidate with their ETag', async () => {
    const url = `${gw.url}/explorer/assets/graphiql.min.js`;
    const plain = Buffer.from(await (await fetch(url, { headers: { 'accept-encoding': 'identity' } })).arrayBuffer());
    // node:http rather than fetch: fetch decompresses and hides the encoded size.
    const gzipped = await new Promise<{ encoding: string | undefined; body: Buffer }>((resolve, reject) => {
      void import('node:http').then(({ get }) =>
        get(url, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ encoding: res.headers['content-encoding'], body: Buffer.concat(chunks) }));
        }).on('error', reject),
      );
    });
    expect(gzipped.encoding).toBe('gzip');
    expect(gzipped.body.length).toBeLessThan(plain.length / 2);
    expect(gunzipSync(gzipped.body).equals(plain)).toBe(true);

    for (const encoding of ['gzip', 'identity']) {
      const headers = { 'accept-encoding': encoding };
      const etag = (await fetch(url, { headers })).headers.get('etag') ?? '';
      expect(etag).toMatch(encoding === 'gzip' ? /^"[\w-]+-gz"$/ : /^"[\w-]+"$/);
      const again = await fetch(url, { headers: { ...headers, 'if-none-match': etag } });
      expect(again.status).toBe(304);
    }
  });
});

describe('GET /graphql', () => {
  it('sends a browser to the explorer', async () => {
    const response = await fetch(`${gw.url}/graphql`, { headers: BROWSER, redirect: 'manual' });
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toBe('/explorer');
  });

  it('stays GraphQL for a client, GET with a query and POST alike', async () => {
    // No preflight header needed: a GET runs queries only (see the CSRF rule in @shop/server's http.ts).
    const get = await fetch(`${gw.url}/graphql?query=${encodeURIComponent('{ __typename }')}`);
    expect(get.status).toBe(200);
    expect(((await get.json()) as { data: unknown }).data).toEqual({ __typename: 'Query' });

    const post = await query(gw.url, '{ books { title } }');
    expect(post.status).toBe(200);
    expect(post.body.errors).toBeUndefined();
  });

  it('does not redirect a browser GET that carries a query', async () => {
    const response = await fetch(`${gw.url}/graphql?query=${encodeURIComponent('{ __typename }')}`, {
      headers: BROWSER,
      redirect: 'manual',
    });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { data: unknown }).data).toEqual({ __typename: 'Query' });
  });

  it('answers introspection, which the docs pane needs', async () => {
    const { status, body } = await query(gw.url, '{ __schema { queryType { name } } }');
    expect(status).toBe(200);
    expect(body.data).toEqual({ __schema: { queryType: { name: 'Query' } } });
  });
});

describe('with the explorer and introspection off', () => {
  let off: GatewayUnderTest;
  beforeAll(async () => {
    off = await startGateway({ sdl: composeFixture() }, fixtures, { explorer: false, introspection: false });
  });
  afterAll(() => off?.stop());

  it('/explorer and its assets are coded 404s', async () => {
    for (const url of ['/explorer', '/explorer/assets/graphiql.min.js']) {
      const response = await fetch(`${off.url}${url}`, { headers: BROWSER });
      expect(response.status).toBe(404);
      expect(((await response.json()) as { errors: { extensions: { code: string } }[] }).errors[0]?.extensions.code).toBe('NOT_FOUND');
    }
  });

  it('a browser GET /graphql is not redirected, and gets no landing page from a CDN', async () => {
    const response = await fetch(`${off.url}/graphql`, { headers: BROWSER, redirect: 'manual' });
    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
    expect(await response.text()).not.toMatch(/https?:\/\//);
  });

  it('an introspection query is a GRAPHQL_VALIDATION_FAILED error that names the setting', async () => {
    const { status, body } = await query(off.url, '{ __schema { queryType { name } } }');
    // A validation error: 200 in an application/json response (GraphQL over HTTP), and no data.
    expect(status).toBe(200);
    expect(body.data).toBeUndefined();
    expect(body.errors).toHaveLength(1);
    const error = body.errors?.[0];
    expect(error?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(error?.extensions?.validationErrorCode).toBe(INTROSPECTION_DISABLED);
    expect(error?.message).toMatch(/Introspection is disabled.*__schema.*INTROSPECTION=true/);

    const typeQuery = await query(off.url, '{ __type(name: "Book") { name } }');
    expect(typeQuery.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('still answers ordinary queries, __typename included', async () => {
    const { status, body } = await query(off.url, '{ __typename books { title } }');
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
  });
});

describe('start-up', () => {
  it('fails, naming the folder, when a configured operations folder is missing', async () => {
    const missing = dir.file('no-such-folder');
    await expect(startGateway({ sdl: composeFixture() }, fixtures, { explorer: { operationsDir: missing } })).rejects.toThrow(
      `Cannot read the explorer's operations from ${missing}`,
    );
  });
});

describe('example variables', () => {
  it('come from a `# variables:` comment first, then the table, then {}', () => {
    expect(exampleVariables('ProductPage', '# variables: {"id":"p00042"}\nquery ProductPage { x }')).toBe('{\n  "id": "p00042"\n}');
    expect(exampleVariables('ProductPage', 'query ProductPage { x }')).toBe('{\n  "id": "p00001"\n}');
    expect(exampleVariables('Unknown', 'query Unknown { x }')).toBe('{}');
  });

  it('show a comment that is not JSON as written, for GraphiQL to flag', () => {
    expect(exampleVariables('X', '#variables: {id: 1}\nquery X { x }')).toBe('{id: 1}');
  });

  it('are valid input for every operation in the repository, against the committed supergraph', async () => {
    const operations = await loadOperations(path.join(REPO_ROOT, 'operations'));
    const schema: GraphQLSchema = apiSchemaOf(await readFile(path.join(REPO_ROOT, 'supergraph.graphql'), 'utf8'));
    expect(operations.length).toBeGreaterThan(0);
    for (const operation of operations) {
      // Each has example variables: a `# variables:` comment in its file or an EXAMPLE_VARIABLES entry.
      expect({
        operation: operation.name,
        has: /^\s*#\s*variables:/m.test(operation.query) || operation.name in EXAMPLE_VARIABLES,
      }).toEqual({
        operation: operation.name,
        has: true,
      });
      const definition = parse(operation.query).definitions[0] as OperationDefinitionNode;
      const coerced = getVariableValues(schema, definition.variableDefinitions ?? [], JSON.parse(operation.variables));
      expect({ operation: operation.name, errors: coerced.errors?.map((e) => e.message) }).toEqual({
        operation: operation.name,
        errors: undefined,
      });
    }
  });
});

describe('the default operations folder', () => {
  it("is the repository's operations/, queries before mutations before subscriptions", async () => {
    const explorer = await createExplorer();
    expect(explorer.operations.map((o) => `${o.kind} ${o.name}`)).toEqual([
      'query CategoryListing',
      'query HomePage',
      'query ProductPage',
      'query UserPage',
      'query CheckoutProgress',
      'query CustomerOrders',
      'query OrderHistory',
      'mutation EditProfile',
      'mutation SignIn',
      'mutation WriteReview',
      'mutation AddToOrder',
      'mutation Checkout',
      'subscription FollowOrder',
    ]);
    expect(explorer.operations[0]?.variables).toBe('{\n  "category": "books"\n}');
  });
});
