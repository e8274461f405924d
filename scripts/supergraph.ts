// `npm run supergraph`: publishing a supergraph to the gateways that poll for it.
//
//   npm run supergraph -- publish --to <dir>     compose supergraph.yaml, run the schema check
//                                                against what <dir> holds now, and only if it
//                                                passes write <dir>/supergraph.graphql (atomically)
//       [--config supergraph.yaml] [--operations <dir>] [--approvals <file>]
//   npm run supergraph -- serve --dir <dir>      serve <dir>/supergraph.graphql over HTTP with an
//       [--port 4100] [--host 0.0.0.0]           ETag, for SUPERGRAPH_URL=http://<host>:<port>/supergraph.graphql
//
// Any static server that sends an ETag or Last-Modified (nginx, an object store) can stand in for
// `serve`: the gateways only need a conditional GET. Exit code: 0 published (or nothing changed),
// 1 the check failed and nothing was written, 2 usage error.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import path from 'node:path';
import { UsageError, parseCli, readIfExists, runCli } from './lib/cli';
import { composeFromConfig, supergraphFileText } from '@shop/composition';
import { formatReport, runSchemaCheck } from '@shop/schema-check';

const REPO_ROOT = path.resolve(__dirname, '..');
const FILE = 'supergraph.graphql';
const USAGE = [
  'usage: npm run supergraph -- publish --to <dir> [--config supergraph.yaml] [--operations <dir>] [--approvals <file>]',
  '       npm run supergraph -- serve --dir <dir> [--port 4100] [--host 0.0.0.0]',
].join('\n');

/** The ETag a supergraph is served with: its SHA-256, the same digest the gateway's `gateway_supergraph_info` shows the start of. */
export const etagOf = (text: string) => `"${createHash('sha256').update(text).digest('hex')}"`;

async function publish(values: { to?: string; config?: string; operations?: string; approvals?: string }): Promise<number> {
  if (!values.to) throw new UsageError(`publish needs --to <dir>\n${USAGE}`);
  const cwd = process.env.INIT_CWD ?? process.cwd();
  const dir = path.resolve(cwd, values.to);
  const target = path.join(dir, FILE);
  const config = path.resolve(cwd, values.config ?? path.join(REPO_ROOT, 'supergraph.yaml'));
  const published = await readIfExists(target);
  // Against what the gateways serve now: a change that breaks its clients is never published.
  const report = await runSchemaCheck({
    config,
    ...(published === undefined ? {} : { base: { file: target } }),
    ...(values.operations ? { operationsDir: path.resolve(cwd, values.operations) } : {}),
    ...(values.approvals ? { approvalsFile: path.resolve(cwd, values.approvals) } : {}),
  });
  process.stderr.write(formatReport(report));
  if (!report.ok) {
    process.stderr.write(`\nnot published: the schema check failed; ${target} is unchanged\n`);
    return 1;
  }
  const composed = await composeFromConfig(config);
  if (composed.errors) throw new Error(`${config} did not compose the second time`);
  const text = supergraphFileText(composed.supergraphSdl);
  if (text === published) {
    process.stdout.write(`unchanged: ${target} ${etagOf(text)}\n`);
    return 0;
  }
  await mkdir(dir, { recursive: true });
  // Written beside it and renamed over it: a gateway (or `serve`) never reads half a file.
  const temporary = path.join(dir, `.${FILE}.${randomBytes(6).toString('hex')}`);
  await writeFile(temporary, text);
  await rename(temporary, target);
  process.stdout.write(`published: ${target} ${etagOf(text)}\n`);
  return 0;
}

/** The file as last read, re-read only when its size or modification time changes. */
interface Cached {
  mtimeMs: number;
  size: number;
  text: string;
  etag: string;
  lastModified: string;
}

async function serve(values: { dir?: string; port?: string; host?: string }): Promise<number> {
  if (!values.dir) throw new UsageError(`serve needs --dir <dir>\n${USAGE}`);
  const port = Number(values.port ?? 4100);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be a port number\n${USAGE}`);
  const file = path.join(path.resolve(process.env.INIT_CWD ?? process.cwd(), values.dir), FILE);
  let cached: Cached | undefined;
  const current = async (): Promise<Cached | undefined> => {
    const info = await stat(file).catch(() => undefined);
    if (!info) return undefined;
    if (cached && cached.mtimeMs === info.mtimeMs && cached.size === info.size) return cached;
    const text = await readFile(file, 'utf8');
    cached = { mtimeMs: info.mtimeMs, size: info.size, text, etag: etagOf(text), lastModified: info.mtime.toUTCString() };
    return cached;
  };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/health') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    if (req.url !== `/${FILE}`) return void res.writeHead(404).end();
    if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, { allow: 'GET, HEAD' }).end();
    const now = await current();
    if (!now) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('nothing published yet\n');
    const headers = { etag: now.etag, 'last-modified': now.lastModified, 'cache-control': 'no-cache' };
    const asked = req.headers['if-none-match'];
    if (asked && asked.split(',').some((tag) => tag.trim() === now.etag)) return void res.writeHead(304, headers).end();
    res.writeHead(200, { ...headers, 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(now.text) });
    res.end(req.method === 'HEAD' ? undefined : now.text);
  };
  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, values.host ?? '0.0.0.0', resolve));
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  process.stdout.write(`serving ${file} at http://${values.host ?? '0.0.0.0'}:${bound}/${FILE}\n`);
  await new Promise<void>((resolve) => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => server.close(() => resolve()));
  });
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(USAGE, {
    args: argv,
    allowPositionals: true,
    options: {
      to: { type: 'string' },
      dir: { type: 'string' },
      config: { type: 'string' },
      operations: { type: 'string' },
      approvals: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
    },
  });
  const [command, ...rest] = positionals;
  if (rest.length > 0) throw new UsageError(`unexpected ${rest.join(' ')}\n${USAGE}`);
  if (command === 'publish') return publish(values);
  if (command === 'serve') return serve(values);
  throw new UsageError(command ? `unknown command ${command}\n${USAGE}` : USAGE);
}

runCli('supergraph', main);
