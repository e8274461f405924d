// index.ts as a process: it starts from the environment, serves, stops on SIGTERM, and fails
// loudly at start-up.
import { type ChildProcess, spawn } from 'node:child_process';
import { type Socket, createServer } from 'node:net';
import path from 'node:path';
import { type Fixtures, type TempDir, composeFixture, query, startFixtures, tempDir, waitFor } from './harness';

const GATEWAY_DIR = path.resolve(__dirname, '..');

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function startIndex(env: Record<string, string>): Started {
  // `node --import tsx`, not `npx tsx`: a signal to npx would not reach the node child.
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/index.ts'], {
    cwd: GATEWAY_DIR,
    // Only what the test sets, plus PATH: the gateway must not depend on anything else here.
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

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

it('serves the supergraph from the environment, then stops cleanly on SIGTERM', async () => {
  const file = await dir.write('supergraph.graphql', composeFixture());
  const started = startIndex({
    GATEWAY_PORT: '0',
    HOST: '127.0.0.1',
    SUPERGRAPH_PATH: file,
    SUBGRAPH_AUTHORS_URL: fixtures.urls.authors,
    SUBGRAPH_BOOKS_URL: fixtures.urls.books,
    LOG_LEVEL: 'info',
  });
  try {
    const url = await waitFor(
      'the gateway to log its URL',
      async () => /"url":"(http:\/\/[^"]+)\/graphql"/.exec(started.output())?.[1],
      30_000,
    );
    expect((await fetch(`${url}/ready`)).status).toBe(200);
    const { body } = await query(url, '{ books { title author { name } } }');
    expect(body.errors).toBeUndefined();
    started.child.kill('SIGTERM');
    expect(await started.exited).toBe(0);
  } finally {
    started.child.kill('SIGKILL');
  }
});

it('exits non-zero, naming the variable, on a bad environment', async () => {
  const started = startIndex({ GATEWAY_PORT: 'eighty' });
  expect(await started.exited).not.toBe(0);
  expect(started.output()).toContain('GATEWAY_PORT');
});

it('exits non-zero, naming the file, when the supergraph cannot be read', async () => {
  const missing = dir.file('missing.graphql');
  const started = startIndex({ SUPERGRAPH_PATH: missing, GATEWAY_PORT: '0' });
  expect(await started.exited).not.toBe(0);
  expect(started.output()).toContain(missing);
});

it('traced, with its OTLP collector frozen: answers every request, and SIGTERM still exits promptly', async () => {
  // A collector that accepts connections and never answers: the exporter's requests hang.
  const sockets: Socket[] = [];
  const frozen = createServer((socket) => void sockets.push(socket));
  await new Promise<void>((resolve) => frozen.listen(0, '127.0.0.1', resolve));
  const { port } = frozen.address() as { port: number };
  const file = await dir.write('supergraph-traced.graphql', composeFixture());
  const started = startIndex({
    GATEWAY_PORT: '0',
    HOST: '127.0.0.1',
    SUPERGRAPH_PATH: file,
    SUBGRAPH_AUTHORS_URL: fixtures.urls.authors,
    SUBGRAPH_BOOKS_URL: fixtures.urls.books,
    LOG_LEVEL: 'info',
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
    OTEL_BSP_SCHEDULE_DELAY: '50',
  });
  try {
    const url = await waitFor(
      'the gateway to log its URL',
      async () => /"url":"(http:\/\/[^"]+)\/graphql"/.exec(started.output())?.[1],
      30_000,
    );
    for (let round = 0; round < 10; round++) {
      const bodies = await Promise.all(Array.from({ length: 10 }, () => query(url, '{ books { title author { name } } }')));
      for (const { body } of bodies) expect(body.errors).toBeUndefined();
    }
    // Tracing was on: the exporter reached the collector (and waits there).
    await waitFor('an export to the frozen collector', async () => (sockets.length > 0 ? true : undefined), 10_000);
    // The drain, then at most 3 s for the export (the exporter's own timeout would be 10 s).
    const stopping = Date.now();
    started.child.kill('SIGTERM');
    expect(await started.exited).toBe(0);
    expect(Date.now() - stopping).toBeLessThan(8_000);
  } finally {
    started.child.kill('SIGKILL');
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => frozen.close(() => resolve()));
  }
});
