// The gateway's own GraphQL explorer: GraphiQL 3 on React 18, every byte served by the gateway
// from node_modules, so it works with no internet and sends nothing to a CDN. The page offers the
// repository's storefront operations (operations/*.graphql) as tabs with example variables, and
// runs subscriptions over graphql-transport-ws with graphql-ws's own browser client.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { type DocumentNode, Kind, type OperationDefinitionNode, parse } from 'graphql';
import { type RouteHandler, sendError } from '@shop/server';

/** Where the page is served. */
export const EXPLORER_PATH = '/explorer';
/** Where its scripts and styles are served, one exact path per file. */
export const EXPLORER_ASSETS_PATH = `${EXPLORER_PATH}/assets`;

/** The repository root: the default operations folder lives there. */
const REPO_ROOT = path.resolve(__dirname, '..', '..');
/** The gateway's own page files (boot script, page styles). */
const STATIC_DIR = path.resolve(__dirname, '..', 'static');

const gzipAsync = promisify(gzip);

export interface ExplorerOptions {
  /**
   * A folder of `*.graphql` files, each offered as a tab: queries first, then mutations, each in
   * file-name order. A folder that does not exist is an error, unless it is the default.
   * @default '<repo root>/operations'
   */
  operationsDir?: string;
  /** The GraphQL endpoint the page sends operations to, on the page's own origin. @default '/graphql' */
  endpoint?: string;
  /** The page title, also shown in GraphiQL's logo slot. @default 'GraphQL explorer' */
  title?: string;
}

/** One operation file, as the explorer offers it. */
export interface ExplorerOperation {
  /** The first operation's name, or the file name without `.graphql` when it has none or does not parse. */
  name: string;
  kind: 'query' | 'mutation' | 'subscription';
  /** The file's path. */
  file: string;
  /** The file's text, comments included. */
  query: string;
  /** The variables editor's text: a JSON object, pretty-printed. */
  variables: string;
}

export interface Explorer {
  /** `/explorer`, one route per asset, and the endpoint path (browser GETs redirect to the page). */
  routes: Record<string, RouteHandler>;
  operations: readonly ExplorerOperation[];
  /** The asset URLs the page loads, with their cache-busting `?v=` query. */
  assetUrls: readonly string[];
}

/**
 * Example variables by operation name, for operation files that carry no `# variables: {...}`
 * comment. Ids follow the seed's scheme, so each example finds data in a seeded store.
 */
export const EXAMPLE_VARIABLES: Readonly<Record<string, Record<string, unknown>>> = {
  HomePage: {},
  ProductPage: { id: 'p00001' },
  UserPage: { id: 'u00001' },
  CategoryListing: { category: 'books' },
  WriteReview: { input: { productId: 'p00001', body: 'Great', rating: 5 } },
  EditProfile: { id: 'u00001', input: { name: 'Ada' } },
};

/** `# variables: {...}` on a line of its own in an operation file. */
const VARIABLES_COMMENT = /^\s*#\s*variables:\s*(.+?)\s*$/m;

/**
 * The variables editor's text for one operation: a `# variables: {...}` comment in the file wins,
 * then {@link EXAMPLE_VARIABLES}, then `{}`. A comment that is not JSON is shown as written, so
 * GraphiQL points at the mistake instead of the explorer hiding it.
 */
export function exampleVariables(name: string, text: string): string {
  const comment = VARIABLES_COMMENT.exec(text)?.[1];
  if (comment !== undefined) {
    try {
      return JSON.stringify(JSON.parse(comment), null, 2);
    } catch {
      return comment;
    }
  }
  return JSON.stringify(EXAMPLE_VARIABLES[name] ?? {}, null, 2);
}

const KIND_ORDER: Record<ExplorerOperation['kind'], number> = { query: 0, mutation: 1, subscription: 2 };

function firstOperation(text: string): OperationDefinitionNode | undefined {
  let document: DocumentNode;
  try {
    document = parse(text);
  } catch {
    // A file that does not parse is still offered: the editor shows where the syntax error is.
    return undefined;
  }
  return document.definitions.find((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
}

/**
 * Reads every `*.graphql` file in `dir` and its subfolders (one per domain, e.g. `orders/`):
 * queries first, then mutations, each in path order.
 */
export async function loadOperations(dir: string): Promise<ExplorerOperation[]> {
  const files = (await readdir(dir, { recursive: true })).filter((f) => f.endsWith('.graphql')).sort();
  const operations = await Promise.all(
    files.map(async (f): Promise<ExplorerOperation> => {
      const file = path.join(dir, f);
      const query = await readFile(file, 'utf8');
      const operation = firstOperation(query);
      const name = operation?.name?.value ?? path.basename(f, '.graphql');
      return { name, kind: operation?.operation ?? 'query', file, query, variables: exampleVariables(name, query) };
    }),
  );
  // Array.prototype.sort is stable: file-name order holds within each kind.
  return operations.sort((a, b) => KIND_ORDER[a.kind] - KIND_ORDER[b.kind]);
}

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
  gzipped?: Promise<Buffer>;
}

const JS = 'text/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';

/** A package's directory: `require.resolve` of the file itself is refused by the packages' `exports` maps. */
const packageDir = (name: string) => path.dirname(require.resolve(`${name}/package.json`));

/**
 * The page's files, in load order: the UMD globals GraphiQL needs come before it, and graphql-ws's
 * client (the `graphqlWs` global GraphiQL's fetcher runs subscriptions with) before the boot script.
 */
function assetSources(): Array<{ name: string; file: string; type: string }> {
  return [
    { name: 'graphiql.min.css', file: path.join(packageDir('graphiql'), 'graphiql.min.css'), type: CSS },
    { name: 'explorer.css', file: path.join(STATIC_DIR, 'explorer.css'), type: CSS },
    { name: 'react.production.min.js', file: path.join(packageDir('react'), 'umd', 'react.production.min.js'), type: JS },
    {
      name: 'react-dom.production.min.js',
      file: path.join(packageDir('react-dom'), 'umd', 'react-dom.production.min.js'),
      type: JS,
    },
    { name: 'graphiql.min.js', file: path.join(packageDir('graphiql'), 'graphiql.min.js'), type: JS },
    { name: 'graphql-ws.min.js', file: path.join(packageDir('graphql-ws'), 'umd', 'graphql-ws.min.js'), type: JS },
    { name: 'explorer.js', file: path.join(STATIC_DIR, 'explorer.js'), type: JS },
  ];
}

function readAsset(file: string, type: string): Asset {
  let text = readFileSync(file, 'utf8');
  // The source maps are not served (4 MB for GraphiQL alone): drop the comment that would make
  // browser dev tools ask for them and log a 404.
  text = text.replace(/\n?\/\/# sourceMappingURL=\S+\s*$/, '\n').replace(/\/\*# sourceMappingURL=\S+ \*\/\s*$/, '');
  const body = Buffer.from(text, 'utf8');
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"`;
  return { body, type, etag };
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

/** JSON that is safe inside a `<script>` element: no `</script>` or `<!--` can be formed. */
const scriptJson = (value: unknown) => JSON.stringify(value).replace(/</g, '\\u003c');

/**
 * The page's policy: everything from the gateway itself, nothing from anywhere else. Fonts and
 * icons in GraphiQL's CSS are `data:` URLs. `connect-src 'self'` also lets the page open its
 * subscriptions' WebSocket to the gateway: under CSP Level 3 'self' matches ws: and wss: on the
 * page's own host and port (the browser test runs one in Chromium). Inline styles stay allowed: GraphiQL's dialogs set
 * them, and a policy without 'unsafe-inline' blocks them (seen in the browser test's console).
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'self'",
].join('; ');

const isReadMethod = (req: IncomingMessage) => req.method === 'GET' || req.method === 'HEAD';

function methodNotAllowed(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('allow', 'GET, HEAD');
  const where = (req.url ?? EXPLORER_PATH).split('?')[0];
  sendError(res, 405, 'METHOD_NOT_ALLOWED', `${req.method ?? 'GET'} is not allowed on ${where}; use GET`);
}

function assetHandler(asset: Asset): RouteHandler {
  return async (req, res) => {
    if (!isReadMethod(req)) return methodNotAllowed(req, res);
    const gzipped = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
    // Each encoding is its own representation, with its own tag.
    const etag = gzipped ? `${asset.etag.slice(0, -1)}-gz"` : asset.etag;
    const headers: Record<string, string> = {
      'content-type': asset.type,
      // The page asks for each asset with its hash in `?v=`, so a cached copy is never stale.
      'cache-control': 'public, max-age=31536000, immutable',
      etag,
      vary: 'accept-encoding',
      'x-content-type-options': 'nosniff',
    };
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, headers).end();
      return;
    }
    let body = asset.body;
    if (gzipped) {
      // Compressed on first request, once: GraphiQL's 1 MB script is about 300 KB gzipped.
      asset.gzipped ??= gzipAsync(asset.body);
      body = await asset.gzipped;
      headers['content-encoding'] = 'gzip';
    }
    headers['content-length'] = String(body.length);
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}

/** True for what a browser sends when someone types the endpoint into the address bar. */
function isBrowserPageLoad(req: IncomingMessage): boolean {
  if (req.method !== 'GET') return false;
  if (!String(req.headers.accept ?? '').includes('text/html')) return false;
  const params = new URL(req.url ?? '/', 'http://localhost').searchParams;
  return !params.has('query') && !params.has('extensions');
}

async function operationsFrom(options: ExplorerOptions): Promise<ExplorerOperation[]> {
  if (options.operationsDir) {
    try {
      return await loadOperations(path.resolve(options.operationsDir));
    } catch (err) {
      throw new Error(`Cannot read the explorer's operations from ${options.operationsDir}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  try {
    return await loadOperations(path.join(REPO_ROOT, 'operations'));
  } catch (err) {
    // The default folder is optional: a gateway serving another supergraph has none.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/**
 * Builds the explorer's routes. Reads the operations and every asset once, here: a request never
 * touches the disk. Rejects when an asset is missing (graphiql, graphql-ws, react or react-dom not installed)
 * or a configured operations folder cannot be read.
 */
export async function createExplorer(options: ExplorerOptions = {}): Promise<Explorer> {
  const endpoint = options.endpoint ?? '/graphql';
  const title = options.title ?? 'GraphQL explorer';
  const operations = await operationsFrom(options);

  const routes: Record<string, RouteHandler> = {};
  const assetUrls: string[] = [];
  const tags: string[] = [];
  for (const source of assetSources()) {
    const asset = readAsset(source.file, source.type);
    const assetPath = `${EXPLORER_ASSETS_PATH}/${source.name}`;
    routes[assetPath] = assetHandler(asset);
    const url = `${assetPath}?v=${asset.etag.slice(1, 9)}`;
    assetUrls.push(url);
    tags.push(source.type === CSS ? `<link rel="stylesheet" href="${escapeHtml(url)}">` : `<script src="${escapeHtml(url)}"></script>`);
  }

  const tabs = operations.map((o) => ({ query: o.query, variables: o.variables }));
  const version = createHash('sha256').update(JSON.stringify(tabs)).digest('base64url').slice(0, 12);
  const config = { endpoint, title, version, tabs };
  const styles = tags.filter((t) => t.startsWith('<link'));
  const scripts = tags.filter((t) => t.startsWith('<script'));
  // The config is data, not script: `type="application/json"` is never executed, so the policy's
  // `script-src 'self'` holds. The boot script (explorer.js) reads it.
  const html = Buffer.from(
    `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="icon" href="data:,">
${styles.join('\n')}
</head>
<body>
<div id="graphiql">Loading the explorer...</div>
<script type="application/json" id="explorer-config">${scriptJson(config)}</script>
${scripts.join('\n')}
</body>
</html>
`,
    'utf8',
  );

  routes[EXPLORER_PATH] = async (req, res) => {
    if (!isReadMethod(req)) return methodNotAllowed(req, res);
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': String(html.length),
      // Revalidated on every load, so a restarted gateway's new asset hashes are picked up.
      'cache-control': 'no-cache',
      'content-security-policy': CONTENT_SECURITY_POLICY,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
    });
    res.end(req.method === 'HEAD' ? undefined : html);
  };

  // Tried before the GraphQL endpoint: a browser opening it gets the explorer, everything else
  // (clients, `curl`, GET with `?query=`) falls through to GraphQL.
  routes[endpoint] = async (req, res) => {
    if (!isBrowserPageLoad(req)) return false;
    res.writeHead(302, { location: EXPLORER_PATH, 'cache-control': 'no-store', 'content-type': 'text/plain; charset=utf-8' });
    res.end(`See ${EXPLORER_PATH}\n`);
  };

  return { routes, operations, assetUrls };
}
