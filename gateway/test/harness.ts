// One harness for the gateway's tests: two fixture subgraphs (authors, books) that have nothing to
// do with the shop, so the gateway is shown to run on any supergraph, composed here in-process.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { composeServices } from '@apollo/composition';
import { GraphQLError, parse } from 'graphql';
import pino from 'pino';
import { type RunningServer, type Subgraph, createSubgraph } from '@shop/server';
import { type Telemetry, createTelemetry } from '@shop/telemetry';
import type { FetchRequest } from '../src/fetch';
import { type Gateway, type GatewayOptions, createGateway } from '../src/gateway';

export const silentTelemetry = (service: string): Telemetry => createTelemetry({ service, logger: pino({ level: 'silent' }) });

const LINK = 'extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])';

/** authors as it runs: `bio` is served from the start, but only the v2 supergraph exposes it. */
export const authorsSdl = (withBio: boolean) => `${LINK}
type Author @key(fields: "id") {
  id: ID!
  name: String!
  ${withBio ? 'bio: String' : ''}
}
type Query {
  authors: [Author!]!
  author(id: ID!): Author
}
`;

export const booksSdl = `${LINK}
type Book @key(fields: "id") {
  id: ID!
  title: String!
  author: Author!
}
type Author @key(fields: "id") {
  id: ID!
  books: [Book!]!
}
type Query {
  books: [Book!]!
  "A book by numeric id; anything else is a BAD_USER_INPUT error."
  book(id: ID!): Book
}
`;

const AUTHORS = [
  { id: '1', name: 'Ada', bio: 'Counts things' },
  { id: '2', name: 'Grace', bio: 'Debugs things' },
  { id: '3', name: 'Linus', bio: 'Merges things' },
];
const BOOKS = [
  { id: '1', title: 'Notes', authorId: '1' },
  { id: '2', title: 'More notes', authorId: '1' },
  { id: '3', title: 'Compilers', authorId: '2' },
  { id: '4', title: 'Kernels', authorId: '3' },
  { id: '5', title: 'Patches', authorId: '3' },
];
export const BOOK_COUNT = BOOKS.length;
/** Distinct authors of all books: the representations one `books { author }` query sends. */
export const DISTINCT_BOOK_AUTHORS = new Set(BOOKS.map((b) => b.authorId)).size;

/** Knobs the tests turn on the running fixtures. */
export interface FixtureControl {
  /** Latency of `Query.books`, so that requests are in flight while the gateway reloads. */
  booksLatencyMs: number;
  /** When set, `Query.books` and `Query.book` wait for it: a hung subgraph. */
  booksHang?: Promise<void>;
  /** Every `x-request-id` each subgraph received. */
  requestIds: { authors: string[]; books: string[] };
  /** Requests each subgraph saw abandoned by their client (the gateway) before answering. */
  abandoned: { authors: number; books: number };
  /** Calls of the `Book.author` resolver. */
  bookAuthorCalls: number;
  /** The verified identity (its `sub`, or null when anonymous) of every request each subgraph received. */
  identities: { authors: Array<string | null>; books: Array<string | null> };
}

export interface Fixtures {
  control: FixtureControl;
  urls: { authors: string; books: string };
  subgraphs: { authors: Subgraph; books: Subgraph };
  servers: { authors: RunningServer; books: RunningServer };
  stop(): Promise<void>;
}

interface FixtureContext {
  requestId: string | undefined;
}

/** `gatewaySecret`: the fixtures answer only requests the gateway signed with it. */
export async function startFixtures(options: { gatewaySecret?: string } = {}): Promise<Fixtures> {
  const control: FixtureControl = {
    booksLatencyMs: 0,
    requestIds: { authors: [], books: [] },
    abandoned: { authors: 0, books: 0 },
    bookAuthorCalls: 0,
    identities: { authors: [], books: [] },
  };
  const context =
    (name: 'authors' | 'books') =>
    async ({
      req,
      signal,
      identity,
    }: {
      req: { headers: Record<string, unknown> };
      signal: AbortSignal;
      identity: { sub: string } | undefined;
    }) => {
      const id = req.headers['x-request-id'];
      if (typeof id === 'string') control.requestIds[name].push(id);
      control.identities[name].push(identity?.sub ?? null);
      signal.addEventListener('abort', () => control.abandoned[name]++, { once: true });
      return { requestId: typeof id === 'string' ? id : undefined } satisfies FixtureContext;
    };
  const authors = await createSubgraph({
    telemetry: silentTelemetry('authors'),
    typeDefs: parse(authorsSdl(true)),
    resolvers: {
      Query: {
        authors: () => AUTHORS,
        author: (_: unknown, { id }: { id: string }) => AUTHORS.find((a) => a.id === id) ?? null,
      },
      Author: {
        __resolveReference: (ref: { id: string }) => AUTHORS.find((a) => a.id === ref.id) ?? null,
      },
    },
    context: context('authors'),
    ready: async () => true,
  });
  const books = await createSubgraph({
    telemetry: silentTelemetry('books'),
    typeDefs: parse(booksSdl),
    resolvers: {
      Query: {
        books: async () => {
          if (control.booksHang) await control.booksHang;
          // Simulated work, so reload tests have requests in flight; not a wait for readiness.
          if (control.booksLatencyMs > 0) await delay(control.booksLatencyMs);
          return BOOKS;
        },
        book: async (_: unknown, { id }: { id: string }) => {
          if (control.booksHang) await control.booksHang;
          if (!/^\d+$/.test(id)) {
            throw new GraphQLError(`Book id must be numeric, received ${JSON.stringify(id)}`, {
              extensions: { code: 'BAD_USER_INPUT', field: 'id' },
            });
          }
          return BOOKS.find((b) => b.id === id) ?? null;
        },
      },
      Book: {
        author: (book: { authorId: string }) => {
          control.bookAuthorCalls++;
          return { id: book.authorId };
        },
      },
      Author: {
        books: (author: { id: string }) => BOOKS.filter((b) => b.authorId === author.id),
      },
    },
    context: context('books'),
    ready: async () => true,
  });
  const servers = {
    authors: await authors.listen(0, '127.0.0.1', options),
    books: await books.listen(0, '127.0.0.1', options),
  };
  return {
    control,
    urls: { authors: `${servers.authors.url}/graphql`, books: `${servers.books.url}/graphql` },
    subgraphs: { authors, books },
    servers,
    stop: async () => {
      await Promise.all([authors.stop(), books.stop()]);
    },
  };
}

/**
 * Composes the fixture supergraph. The routing URLs default to a port nothing listens on, so a
 * passing test proves the gateway used `subgraphUrlOverrides`.
 */
export function composeFixture(options: { withBio?: boolean; urls?: { authors: string; books: string } } = {}): string {
  const urls = options.urls ?? { authors: 'http://127.0.0.1:9/authors', books: 'http://127.0.0.1:9/books' };
  const result = composeServices([
    { name: 'authors', url: urls.authors, typeDefs: parse(authorsSdl(options.withBio ?? false)) },
    { name: 'books', url: urls.books, typeDefs: parse(booksSdl) },
  ]);
  if (result.errors) throw new Error(`fixture does not compose: ${result.errors.map((e) => e.message).join('; ')}`);
  return result.supergraphSdl;
}

export interface TempDir {
  dir: string;
  file(name: string): string;
  write(name: string, text: string): Promise<string>;
  remove(): Promise<void>;
}

export async function tempDir(): Promise<TempDir> {
  const dir = await mkdtemp(path.join(tmpdir(), 'gateway-test-'));
  return {
    dir,
    file: (name) => path.join(dir, name),
    write: async (name, text) => {
      const file = path.join(dir, name);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, text);
      return file;
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

export interface GatewayUnderTest {
  gateway: Gateway;
  telemetry: Telemetry;
  server: RunningServer;
  url: string;
  stop(): Promise<void>;
}

/** Starts a gateway on port 0 with the fixtures' URLs as overrides. */
export async function startGateway(
  supergraph: GatewayOptions['supergraph'],
  fixtures: Fixtures | undefined,
  options: Partial<GatewayOptions> = {},
): Promise<GatewayUnderTest> {
  const telemetry = silentTelemetry('gateway');
  const gateway = await createGateway({
    telemetry,
    supergraph,
    subgraphUrlOverrides: fixtures ? fixtures.urls : {},
    watchDebounceMs: 20,
    ...options,
  });
  const server = await gateway.listen(0, '127.0.0.1');
  return { gateway, telemetry, server, url: server.url, stop: () => gateway.stop() };
}

export interface GraphQLResponse {
  data?: Record<string, unknown> | null;
  errors?: { message: string; extensions?: Record<string, unknown>; path?: (string | number)[] }[];
  extensions?: Record<string, unknown>;
}

export interface HttpResult {
  status: number;
  headers: Headers;
  body: GraphQLResponse;
}

/** POSTs to `/graphql`: a string body is sent as is (for malformed JSON), an object as JSON. */
export async function post(
  baseUrl: string,
  body: string | { query: string; variables?: Record<string, unknown> },
  headers: Record<string, string> = {},
): Promise<HttpResult> {
  const response = await fetch(`${baseUrl}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, headers: response.headers, body: (await response.json()) as GraphQLResponse };
}

export const query = (baseUrl: string, text: string, variables?: Record<string, unknown>) =>
  post(baseUrl, { query: text, ...(variables ? { variables } : {}) });

/**
 * Polls `check` until it returns something other than undefined/false, at most `timeoutMs`.
 * Bounded polling, never a fixed sleep: the test goes on as soon as the condition holds.
 */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    await delay(25);
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${lastError instanceof Error ? lastError.message : JSON.stringify(lastError)}` : ''}`,
  );
}

/** The value of one series in a Prometheus text exposition, 0 when absent. */
export function seriesValue(metricsText: string, series: string): number {
  const line = metricsText.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

export async function metricsText(baseUrl: string): Promise<string> {
  const response = await fetch(`${baseUrl}/metrics`);
  return response.text();
}

/** One subgraph request as the fetch layers see it (an ordinary query), with `overrides` over it. */
export function fetchRequest(overrides: Partial<FetchRequest> = {}): FetchRequest {
  return {
    query: '{ books { title } }',
    operationName: undefined,
    variables: {},
    representations: undefined,
    selectionKey: undefined,
    repKeys: undefined,
    mutation: false,
    requestId: 'r1',
    identity: undefined,
    headers: {},
    signal: undefined,
    deadline: undefined,
    cachePolicy: undefined,
    ...overrides,
  };
}
