// The fixed part of the bench: two sets of the four subgraphs (A with their hot caches off, B
// with them on), each a process on its own SQLite files, seeded once; the proxy in front of
// all of them; and the data the workloads need (cursors, the staleness checker's reviews).
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { firstLine, freePort, pin, spawnNode, stopChild, waitUntil } from './procs';
import { post } from './load';
import { openAccountsRepository, scopesFor } from '@shop/accounts';
import { SEED_ADMIN } from '@shop/seed';
import { sqliteFileFor } from '@shop/store';
import { createTelemetry } from '@shop/telemetry';
import { type BenchTokens, CHECK_CANDIDATES, type CheckTarget, type WorkloadData, sliceUsers } from './workloads';

export const SUBGRAPH_NAMES = ['accounts', 'products', 'inventory', 'reviews'] as const;
export type SubgraphSetName = 'A' | 'B';

export interface SubgraphSet {
  name: SubgraphSetName;
  /** Direct URLs (for setup); gateways use the proxy's. */
  direct: Record<string, string>;
  /** Through the bench proxy: what every gateway is given. */
  proxied: Record<string, string>;
  children: ChildProcess[];
}

export interface Proxy {
  child: ChildProcess;
  setDelay(set: SubgraphSetName, ms: number): Promise<void>;
  /** Subgraph requests and representations so far, summed over one set's subgraphs. */
  counts(set: SubgraphSetName): Promise<{ requests: number; representations: number }>;
  /** The OTLP/HTTP endpoint the traced gateway exports to (the proxy's sink; `/v1/traces` is appended by the exporter). */
  otlpEndpoint: string;
  /** What the sink has received so far. */
  otlpReceived(): Promise<{ requests: number; bytes: number }>;
}

function spawnSet(
  name: SubgraphSetName,
  ports: Record<string, number>,
  repoRoot: string,
  workDir: string,
  seed: boolean,
  subgraphSecret: string,
  profileDir: string | undefined,
): { children: ChildProcess[]; ready: Promise<void> } {
  const children: ChildProcess[] = [];
  const ready: Promise<void>[] = [];
  for (const subgraph of SUBGRAPH_NAMES) {
    const port = ports[subgraph] as number;
    const profile = profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-name', `${name}-${subgraph}.cpuprofile`] : [];
    const child = spawnNode([...profile, '--import', 'tsx', join(repoRoot, 'subgraphs', subgraph, 'src', 'index.ts')], repoRoot, {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        NODE_ENV: 'production',
        LOG_LEVEL: 'warn',
        HOST: '127.0.0.1',
        [`${subgraph.toUpperCase()}_PORT`]: String(port),
        // Both sets open the same SQLite files (WAL mode allows it); only one set is driven at a
        // time, and set B starts on the data set A seeded, so the data is the same for both.
        DATA_DIR: join(workDir, 'subgraphs'),
        // Caches off means off everywhere; with caches on, the subgraphs' by-id caches are in
        // their own memory, so the bench's Redis counts only the gateway's commands.
        HOT_CACHE: name === 'B' ? 'true' : 'false',
        SEED: seed ? 'true' : 'false',
        // The peers (plain Apollo, Hive) cannot sign subgraph requests: the subgraphs answer unsigned
        // ones as anonymous, which is all the reads need. Ours signs with the secret, so the write
        // mix's signed-in callers (measured through ours only) reach the subgraphs verified.
        SUBGRAPH_ALLOW_UNSIGNED: 'true',
        SUBGRAPH_SECRET: subgraphSecret,
      },
      logFile: join(workDir, `subgraph-${name}-${subgraph}.log`),
    });
    children.push(child);
    ready.push(
      waitUntil(`subgraph ${subgraph} (set ${name})`, child, async () => (await fetch(`http://127.0.0.1:${port}/ready`)).ok, 180_000),
    );
  }
  return { children, ready: Promise.all(ready).then(() => undefined) };
}

export interface Subgraphs {
  sets: Record<SubgraphSetName, SubgraphSet>;
  proxy: Proxy;
  /** Resolves once every subgraph is seeded and ready; then pins them and the proxy to `restCpus`. */
  ready: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts the proxy first (its ports are known at once, so gateways can start meanwhile), then
 * both subgraph sets behind it. `ready` says when the subgraphs can answer.
 */
export async function startSubgraphs(
  repoRoot: string,
  workDir: string,
  restCpus: string | undefined,
  subgraphSecret: string,
  profileDir?: string,
): Promise<Subgraphs> {
  const started: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(started.map((c) => stopChild(c)));
  };
  try {
    const ports = {} as Record<SubgraphSetName, Record<string, number>>;
    for (const set of ['A', 'B'] as const) {
      ports[set] = {};
      for (const subgraph of SUBGRAPH_NAMES) ports[set][subgraph] = await freePort();
    }
    const routes = (['A', 'B'] as const).flatMap((set) =>
      SUBGRAPH_NAMES.map((subgraph) => ({ name: `${set}.${subgraph}`, port: 0, target: `http://127.0.0.1:${ports[set][subgraph]}` })),
    );
    const proxyChild = spawnNode(['--import', 'tsx', join(repoRoot, 'bench', 'children', 'proxy.ts')], repoRoot, {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'production', BENCH_PROXY_ROUTES: JSON.stringify(routes) },
      logFile: join(workDir, 'proxy.log'),
      pipeStdout: true,
    });
    started.push(proxyChild);
    const report = JSON.parse(await firstLine(proxyChild, 60_000)) as { control: number; routes: Record<string, number> };
    const sets = {} as Record<SubgraphSetName, SubgraphSet>;
    for (const name of ['A', 'B'] as const) {
      sets[name] = {
        name,
        direct: Object.fromEntries(SUBGRAPH_NAMES.map((s) => [s, `http://127.0.0.1:${ports[name][s]}/graphql`])),
        proxied: Object.fromEntries(SUBGRAPH_NAMES.map((s) => [s, `http://127.0.0.1:${report.routes[`${name}.${s}`]}/graphql`])),
        children: [],
      };
    }
    // Set A seeds the stores; set B opens them once they are seeded.
    const first = spawnSet('A', ports.A, repoRoot, workDir, true, subgraphSecret, profileDir);
    sets.A.children.push(...first.children);
    started.push(...first.children);
    const ready = first.ready
      .then(() => {
        const second = spawnSet('B', ports.B, repoRoot, workDir, false, subgraphSecret, profileDir);
        sets.B.children.push(...second.children);
        started.push(...second.children);
        return second.ready;
      })
      .then(() => {
        if (restCpus) for (const child of started) pin(child.pid as number, restCpus);
      });
    // Observed by the caller; this keeps an early failure from going unhandled meanwhile.
    ready.catch(() => undefined);
    const control = `http://127.0.0.1:${report.control}`;
    const proxy: Proxy = {
      child: proxyChild,
      async setDelay(set, ms) {
        const res = await fetch(`${control}/delay/${set}/${ms}`, { method: 'PUT' });
        if (!res.ok) throw new Error(`proxy refused the delay: HTTP ${res.status}`);
      },
      otlpEndpoint: control,
      async otlpReceived() {
        return (await (await fetch(`${control}/otlp`)).json()) as { requests: number; bytes: number };
      },
      async counts(set) {
        const all = (await (await fetch(`${control}/counts`)).json()) as Record<string, { requests: number; representations: number }>;
        let requests = 0;
        let representations = 0;
        for (const [route, c] of Object.entries(all)) {
          if (!route.startsWith(`${set}.`)) continue;
          requests += c.requests;
          representations += c.representations;
        }
        return { requests, representations };
      },
    };
    return { sets, proxy, ready, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Access tokens for the write mix, signed as accounts' signIn signs them: the bench opens the
 * subgraphs' own accounts store (its current key, the default issuer and audience), so ours
 * verifies them against accounts' JWKS. They outlive a whole run (an access token's default 15
 * minutes would not). The admin, and as customers every write slice's users and checkers.
 */
export async function benchTokens(workDir: string): Promise<BenchTokens> {
  const { accounts, close } = await openAccountsRepository({
    telemetry: createTelemetry({ service: 'accounts', logLevel: 'warn' }),
    store: { sqlitePath: sqliteFileFor(join(workDir, 'subgraphs'), 'accounts') },
    auth: { accessTokenTtlS: 24 * 3600 },
  });
  try {
    const admin = (
      await accounts.issuer.issue({ sub: SEED_ADMIN.id, roles: ['customer', 'admin'], scopes: scopesFor(['customer', 'admin']) })
    ).token;
    const users: Record<string, string> = {};
    // One slice per gateway of a cell, at most one per staleness checker (4).
    for (let index = 0; index < 4; index++) {
      const { users: authors, checkUser } = sliceUsers(index);
      for (const user of [...authors, checkUser]) {
        users[user] ??= (await accounts.issuer.issue({ sub: user, roles: ['customer'], scopes: [] })).token;
      }
    }
    return { admin, users };
  } finally {
    await close();
  }
}

/** One staleness checker per gateway of the widest cell (off/small: ours, ours-traced and three peers). */
const CHECKERS = 5;

/**
 * Every cursor of `users` and `products` (read page by page from the owning subgraph), for each
 * staleness checker a product and a seeded review of it, and the write mix's tokens.
 */
export async function workloadData(sets: SubgraphSet[], workDir: string): Promise<{ data: WorkloadData; checks: CheckTarget[] }> {
  const [first] = sets;
  if (!first) throw new Error('no subgraph set');
  const cursors = async (url: string, field: 'users' | 'products') => {
    const out: string[] = [];
    let after: string | null = null;
    for (;;) {
      type Page = Record<string, { edges: Array<{ cursor: string }>; pageInfo: { endCursor: string | null; hasNextPage: boolean } }>;
      const page: Page = await post<Page>(url, {
        query: `query Page($after: String) { ${field}(first: 100, after: $after) { edges { cursor } pageInfo { endCursor hasNextPage } } }`,
        variables: { after },
      });
      const connection = page[field];
      if (!connection) break;
      out.push(...connection.edges.map((e) => e.cursor));
      if (!connection.pageInfo.hasNextPage || !connection.pageInfo.endCursor) break;
      after = connection.pageInfo.endCursor;
    }
    // The last few pages would hold fewer than a full page of the deep query's root list.
    return out.slice(0, Math.max(1, out.length - 10));
  };
  const data: WorkloadData = {
    userCursors: await cursors(first.direct.accounts as string, 'users'),
    productCursors: await cursors(first.direct.products as string, 'products'),
    tokens: await benchTokens(workDir),
  };
  // Products near the end of the catalogue have few reviews, so the checkers take the first
  // candidates that have one (asked of both sets: they share their stores).
  const checks: CheckTarget[] = [];
  for (const product of CHECK_CANDIDATES) {
    const ids = await Promise.all(
      sets.map(async (set) => {
        const found = await post<{ _entities: Array<{ reviews: Array<{ id: string }> } | null> }>(set.direct.reviews as string, {
          query: 'query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { reviews(first: 100) { id } } } }',
          variables: { r: [{ __typename: 'Product', id: product }] },
        });
        return found._entities[0]?.reviews.map((r) => r.id) ?? [];
      }),
    );
    const oldest = ids[0]?.at(-1);
    if (oldest && ids.every((list) => list.includes(oldest))) checks.push({ product, review: oldest });
    if (checks.length === CHECKERS) break;
  }
  if (checks.length < CHECKERS)
    throw new Error(
      `only ${checks.length} of ${CHECK_CANDIDATES.join(', ')} have a seeded review; the staleness checkers need ${CHECKERS}`,
    );
  return { data, checks };
}
