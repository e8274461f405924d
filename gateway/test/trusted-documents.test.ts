// Trusted documents: the manifest `npm run documents` builds, and the gateway's three modes.
// `enforce` runs only listed documents (by persistedQuery hash, by documentId, or by identical
// text) and refuses the rest before parsing them; `log` runs everything and logs and counts
// unknown documents; `off` checks nothing. The explorer's tabs run under `enforce`.
import { createHash } from 'node:crypto';
import pino from 'pino';
import { createTelemetry } from '@shop/telemetry';
import {
  MANIFEST_FORMAT,
  type PersistedQueryManifest,
  TrustedDocumentsError,
  buildManifest,
  manifestText,
  operationsFromText,
} from '@shop/composition';
import { PERSISTED_QUERY_HASH_MISMATCH, PERSISTED_QUERY_NOT_IN_LIST } from '../src/trusted-documents';
import {
  type Fixtures,
  type GatewayUnderTest,
  type HttpResult,
  type TempDir,
  composeFixture,
  metricsText,
  post,
  seriesValue,
  startFixtures,
  startGateway,
  tempDir,
} from './harness';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

// Written as a person would: comments, a fragment, odd layout. The manifest holds them printed.
const BOOKS_FILE =
  '# The book list.\nquery Books {\n  books { title author { ...AuthorName } }\n}\n\nfragment AuthorName on Author { name }\n';
const AUTHOR_FILE = '# variables: {"id": "1"}\nquery Author($id: ID!) {\n  author(id: $id) { name }\n}\n';
const UNKNOWN = '{ authors { name } }';

let fixtures: Fixtures;
let dir: TempDir;
let manifestPath: string;
let manifest: PersistedQueryManifest;

/** The listed operation named `name`. */
const listed = (name: string) => {
  const operation = manifest.operations.find((o) => o.name === name);
  if (!operation) throw new Error(`${name} is not in the test manifest`);
  return operation;
};

/** POSTs any JSON body (the harness's `post` types only `{ query, variables }`). */
const send = (url: string, body: Record<string, unknown>): Promise<HttpResult> => post(url, JSON.stringify(body));
const codes = (result: HttpResult) => result.body.errors?.map((e) => e.extensions?.code);
const subgraphCalls = () => fixtures.control.requestIds.authors.length + fixtures.control.requestIds.books.length;
const counted = async (url: string) => {
  const text = await metricsText(url);
  return {
    known: seriesValue(text, 'trusted_documents_total{result="known"}'),
    unknown: seriesValue(text, 'trusted_documents_total{result="unknown"}'),
  };
};
const persisted = (hash: string) => ({ persistedQuery: { version: 1, sha256Hash: hash } });

beforeAll(async () => {
  fixtures = await startFixtures();
  dir = await tempDir();
  await dir.write('operations/Books.graphql', BOOKS_FILE);
  await dir.write('operations/authors/Author.graphql', AUTHOR_FILE);
  manifest = await buildManifest(dir.file('operations'));
  manifestPath = await dir.write('trusted-documents.json', manifestText(manifest));
});

afterAll(async () => {
  await fixtures?.stop();
  await dir?.remove();
});

describe('the manifest', () => {
  it('has one entry per operation, its body printed with the fragments it uses, its id the body hash', () => {
    expect(manifest.format).toBe(MANIFEST_FORMAT);
    expect(manifest.version).toBe(1);
    expect(manifest.operations.map((o) => [o.name, o.type])).toEqual([
      ['Author', 'query'],
      ['Books', 'query'],
    ]);
    const books = listed('Books');
    expect(books.body).toBe(
      'query Books {\n  books {\n    title\n    author {\n      ...AuthorName\n    }\n  }\n}\n\nfragment AuthorName on Author {\n  name\n}',
    );
    for (const operation of manifest.operations) expect(operation.id).toBe(sha256(operation.body));
  });

  it('is the same whatever the layout and comments of the files', () => {
    const relaid = operationsFromText('query   Books{books{title author{...AuthorName}}} fragment AuthorName on Author{name}', 'x.graphql');
    expect(relaid).toEqual([listed('Books')]);
  });

  it('takes only the fragments each operation uses, through other fragments too, sorted by name', () => {
    const text = `query A { books { ...B } }
query Z { authors { ...Unused } }
fragment B on Book { author { ...C } }
fragment C on Author { name }
fragment Unused on Author { id }`;
    const [a, z] = operationsFromText(text, 'two.graphql');
    expect(a?.body).toMatch(/^query A[^]*\n\nfragment B[^]*\n\nfragment C on Author/);
    expect(a?.body).not.toContain('Unused {');
    expect(z?.body).toContain('fragment Unused on Author');
    expect(z?.body).not.toContain('fragment B');
  });

  it('refuses anonymous operations, missing fragments and duplicate names, naming the file', async () => {
    expect(() => operationsFromText('{ books { title } }', 'anon.graphql')).toThrow(/anon\.graphql: every operation needs a name/);
    expect(() => operationsFromText('query Q { books { ...Nope } }', 'q.graphql')).toThrow(/q\.graphql: fragment Nope is not defined/);
    expect(() => operationsFromText('query Q {', 'broken.graphql')).toThrow(/broken\.graphql: Syntax Error/);
    const twice = await tempDir();
    try {
      await twice.write('ops/a.graphql', 'query Same { books { title } }');
      await twice.write('ops/b/b.graphql', 'query Same { authors { name } }');
      await expect(buildManifest(twice.file('ops'))).rejects.toThrow(
        /operation Same is defined in both ops\/a\.graphql and ops\/b\/b\.graphql/,
      );
    } finally {
      await twice.remove();
    }
  });
});

describe('a bad manifest fails start-up with a message naming the file', () => {
  const start = (file: string) =>
    startGateway({ sdl: composeFixture() }, fixtures, { explorer: false, trustedDocuments: { mode: 'enforce', path: file } });

  it.each([
    ['missing', undefined, /Cannot read the trusted documents manifest .*nope\.json.*npm run documents/s],
    ['not JSON', '{"format":', /manifest .*bad\.json is not JSON/],
    [
      'another format',
      JSON.stringify({ format: 'something-else', version: 1, operations: [] }),
      /bad\.json is not a persisted query manifest[^]*format/,
    ],
    [
      'an entry without a body',
      JSON.stringify({ format: MANIFEST_FORMAT, version: 1, operations: [{ id: 'a', name: 'A', type: 'query' }] }),
      /operations\.0\.body/,
    ],
    [
      'a body that does not parse',
      JSON.stringify({ format: MANIFEST_FORMAT, version: 1, operations: [{ id: 'a', name: 'A', type: 'query', body: 'query A {' }] }),
      /operations\.0 \(A\): body does not parse/,
    ],
    [
      'a body that is another operation',
      JSON.stringify({
        format: MANIFEST_FORMAT,
        version: 1,
        operations: [{ id: 'a', name: 'A', type: 'query', body: 'mutation B { x }' }],
      }),
      /body is mutation B, but the entry says query A/,
    ],
    [
      'a duplicate id',
      JSON.stringify({
        format: MANIFEST_FORMAT,
        version: 1,
        operations: [
          { id: 'a', name: 'A', type: 'query', body: 'query A { books { title } }' },
          { id: 'a', name: 'B', type: 'query', body: 'query B { books { title } }' },
        ],
      }),
      /id a is used twice/,
    ],
  ])('%s', async (_what, text, message) => {
    const file = text === undefined ? dir.file('nope.json') : await dir.write('bad.json', text);
    const started = start(file);
    await expect(started).rejects.toThrow(TrustedDocumentsError);
    await expect(started).rejects.toThrow(message);
  });

  it('is not read at all when the mode is off', async () => {
    const gw = await startGateway({ sdl: composeFixture() }, fixtures, {
      explorer: false,
      trustedDocuments: { mode: 'off', path: dir.file('nope.json') },
    });
    await gw.stop();
  });
});

describe('enforce', () => {
  let gw: GatewayUnderTest;
  beforeAll(async () => {
    gw = await startGateway({ sdl: composeFixture() }, fixtures, {
      explorer: false,
      trustedDocuments: { mode: 'enforce', path: manifestPath },
    });
  });
  afterAll(() => gw?.stop());

  it('runs a listed document by its persistedQuery hash (Apollo Client, Apollo Router)', async () => {
    const result = await send(gw.url, { extensions: persisted(listed('Author').id), variables: { id: '2' } });
    expect(result.status).toBe(200);
    expect(result.body.errors).toBeUndefined();
    expect(result.body.data).toEqual({ author: { name: 'Grace' } });
  });

  it('runs a listed document by documentId, bare or sha256:-prefixed, POST or GET', async () => {
    const books = listed('Books');
    const bare = await send(gw.url, { documentId: books.id });
    expect(bare.body.errors).toBeUndefined();
    expect(bare.body.data?.books).toHaveLength(5);
    const prefixed = await send(gw.url, { documentId: `sha256:${listed('Author').id}`, variables: { id: '1' } });
    expect(prefixed.body.data).toEqual({ author: { name: 'Ada' } });
    const search = new URLSearchParams({ documentId: listed('Author').id, variables: JSON.stringify({ id: '3' }) });
    const get = await fetch(`${gw.url}/graphql?${search.toString()}`, { headers: { 'apollo-require-preflight': 'true' } });
    expect(((await get.json()) as HttpResult['body']).data).toEqual({ author: { name: 'Linus' } });
  });

  it('runs a free-text document identical to a listed body (Apollo Router rule)', async () => {
    const result = await send(gw.url, { query: listed('Author').body, variables: { id: '3' } });
    expect(result.body.data).toEqual({ author: { name: 'Linus' } });
  });

  it('refuses an unknown document with PERSISTED_QUERY_NOT_IN_LIST, before any subgraph is called', async () => {
    const calls = subgraphCalls();
    const result = await send(gw.url, { query: UNKNOWN });
    expect(result.status).toBe(400);
    expect(codes(result)).toEqual([PERSISTED_QUERY_NOT_IN_LIST]);
    expect(result.body.data).toBeUndefined();
    expect(subgraphCalls()).toBe(calls);
  });

  it('refuses a listed operation sent with other layout or comments: the text must be the listed one', async () => {
    const result = await send(gw.url, { query: AUTHOR_FILE, variables: { id: '1' } });
    expect(codes(result)).toEqual([PERSISTED_QUERY_NOT_IN_LIST]);
  });

  it('never parses what it refuses: a syntax error is refused as unlisted, not reported', async () => {
    const result = await send(gw.url, { query: 'query Broken { books { title ' });
    expect(result.status).toBe(400);
    expect(codes(result)).toEqual([PERSISTED_QUERY_NOT_IN_LIST]);
  });

  it('refuses an unknown id, whichever way it is sent', async () => {
    for (const body of [{ extensions: persisted(sha256(UNKNOWN)) }, { documentId: sha256(UNKNOWN) }, { documentId: 'sha256:nope' }]) {
      const result = await send(gw.url, body);
      expect(result.status).toBe(400);
      expect(codes(result)).toEqual([PERSISTED_QUERY_NOT_IN_LIST]);
    }
  });

  it('refuses APQ registration: a new document sent with its hash is not stored', async () => {
    const register = await send(gw.url, { query: UNKNOWN, extensions: persisted(sha256(UNKNOWN)) });
    expect(codes(register)).toEqual([PERSISTED_QUERY_NOT_IN_LIST]);
    const byHash = await send(gw.url, { extensions: persisted(sha256(UNKNOWN)) });
    expect(codes(byHash)).toEqual([PERSISTED_QUERY_NOT_IN_LIST]);
  });

  it('refuses a listed id sent with another document', async () => {
    const result = await send(gw.url, { query: UNKNOWN, extensions: persisted(listed('Books').id) });
    expect(result.status).toBe(400);
    expect(codes(result)).toEqual([PERSISTED_QUERY_HASH_MISMATCH]);
    const other = await send(gw.url, { query: UNKNOWN, documentId: listed('Books').id });
    expect(codes(other)).toEqual([PERSISTED_QUERY_HASH_MISMATCH]);
  });

  it('counts what it runs and what it refuses', async () => {
    const before = await counted(gw.url);
    await send(gw.url, { documentId: listed('Books').id });
    await send(gw.url, { query: UNKNOWN });
    await send(gw.url, { query: UNKNOWN });
    expect(await counted(gw.url)).toEqual({ known: before.known + 1, unknown: before.unknown + 2 });
  });
});

describe('log', () => {
  let gw: GatewayUnderTest;
  const lines: Array<Record<string, unknown>> = [];
  beforeAll(async () => {
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    gw = await startGateway({ sdl: composeFixture() }, fixtures, {
      telemetry: createTelemetry({ service: 'gateway', logger }),
      explorer: false,
      trustedDocuments: { mode: 'log', path: manifestPath },
    });
  });
  afterAll(() => gw?.stop());

  const unknownLogs = () => lines.filter((l) => l.trustedDocuments === 'unknown');

  it('runs an unknown document, logs its hash and operation name (not the document) and counts it', async () => {
    const before = await counted(gw.url);
    const text = 'query AllAuthors { authors { name } }';
    const result = await send(gw.url, { query: text });
    expect(result.body.errors).toBeUndefined();
    expect(result.body.data?.authors).toHaveLength(3);
    expect(await counted(gw.url)).toEqual({ known: before.known, unknown: before.unknown + 1 });
    const logged = unknownLogs().at(-1);
    expect(logged).toMatchObject({ hash: sha256(text), operationName: 'AllAuthors', level: 40 });
    expect(JSON.stringify(logged)).not.toContain('authors {');
  });

  it('runs listed documents by id and by text, counted as known and not logged', async () => {
    const before = await counted(gw.url);
    const logs = unknownLogs().length;
    expect((await send(gw.url, { documentId: listed('Books').id })).body.errors).toBeUndefined();
    expect((await send(gw.url, { extensions: persisted(listed('Author').id), variables: { id: '1' } })).body.data).toEqual({
      author: { name: 'Ada' },
    });
    expect((await send(gw.url, { query: listed('Author').body, variables: { id: '2' } })).body.data).toEqual({ author: { name: 'Grace' } });
    expect(await counted(gw.url)).toEqual({ known: before.known + 3, unknown: before.unknown });
    expect(unknownLogs()).toHaveLength(logs);
  });

  it('keeps APQ: an unlisted document can be registered and then run by hash', async () => {
    const text = 'query AuthorIds { authors { id } }';
    const miss = await send(gw.url, { extensions: persisted(sha256(text)) });
    expect(codes(miss)).toEqual(['PERSISTED_QUERY_NOT_FOUND']);
    expect((await send(gw.url, { query: text, extensions: persisted(sha256(text)) })).body.errors).toBeUndefined();
    const hit = await send(gw.url, { extensions: persisted(sha256(text)) });
    expect(hit.body.data?.authors).toEqual([{ id: '1' }, { id: '2' }, { id: '3' }]);
  });

  it('refuses an unknown documentId: there is nothing to run', async () => {
    const result = await send(gw.url, { documentId: sha256(UNKNOWN) });
    expect(result.status).toBe(400);
    expect(codes(result)).toEqual([PERSISTED_QUERY_NOT_IN_LIST]);
  });
});

describe('off', () => {
  it('checks nothing: any document runs, a documentId is not read, nothing is counted', async () => {
    const gw = await startGateway({ sdl: composeFixture() }, fixtures, {
      explorer: false,
      trustedDocuments: { mode: 'off', path: manifestPath },
    });
    try {
      expect((await send(gw.url, { query: UNKNOWN })).body.data?.authors).toHaveLength(3);
      expect(codes(await send(gw.url, { documentId: listed('Books').id }))).toEqual(['BAD_REQUEST']);
      expect(await metricsText(gw.url)).not.toContain('trusted_documents_total');
    } finally {
      await gw.stop();
    }
  });
});

describe('the explorer under enforce', () => {
  interface Tab {
    query: string;
    variables: string;
  }

  it('runs every tab (the operation files themselves, comments included) and refuses an edited one', async () => {
    const gw = await startGateway({ sdl: composeFixture() }, fixtures, {
      explorer: { operationsDir: dir.file('operations') },
      trustedDocuments: { mode: 'enforce', path: manifestPath },
    });
    try {
      const html = await (await fetch(`${gw.url}/explorer`)).text();
      const json = /<script type="application\/json" id="explorer-config">(.*?)<\/script>/s.exec(html)?.[1] ?? '{}';
      const tabs = (JSON.parse(json) as { tabs?: Tab[] }).tabs ?? [];
      expect(tabs.map((t) => t.query).sort()).toEqual([AUTHOR_FILE, BOOKS_FILE].sort());
      for (const tab of tabs) {
        // What GraphiQL sends: the editor's text as `query`, with the variables editor's JSON.
        const result = await send(gw.url, { query: tab.query, variables: JSON.parse(tab.variables) as Record<string, unknown> });
        expect(result.body.errors).toBeUndefined();
        expect(result.body.data).toBeTruthy();
      }
      const edited = await send(gw.url, { query: AUTHOR_FILE.replace('name', 'name id'), variables: { id: '1' } });
      expect(codes(edited)).toEqual([PERSISTED_QUERY_NOT_IN_LIST]);
    } finally {
      await gw.stop();
    }
  });
});
