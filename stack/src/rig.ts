// The multi-host rig (issue #19): the services mode across test hosts (hosts.ts), as it runs
// across machines. Two gateway replicas and two products replicas, each on its own host, behind
// HAProxy (haproxy.ts) on a host of its own; accounts, inventory, reviews, orders and payments on
// hosts of their own; a supergraph registry host serving what `npm run supergraph -- publish`
// wrote; PostgreSQL, Redis and RabbitMQ on the machine, reached through forwards on the bridge.
// `runRigScenario` puts a steady load through HAProxy while it kills and restarts replicas and
// rolls out a new supergraph, and reports what the clients saw.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadAccountsAuthConfig } from '@shop/config';
import { balancerConfig, balancerRetries, balancerStates } from './haproxy';
import { type Host, type HostNetwork, createHostNetwork, runHaproxy } from './hosts';
import { stopChild, waitForReady } from './services';
import { REPO_ROOT, SUBGRAPHS, type SubgraphName, jwksUrlOf } from './subgraphs';

const PORTS: Record<SubgraphName | 'gateway', number> = {
  gateway: 4000,
  accounts: 4001,
  products: 4002,
  inventory: 4003,
  reviews: 4004,
  orders: 4005,
  payments: 4006,
};
const REGISTRY_PORT = 4100;
const LB_STATS_PORT = 8404;

export interface RigOptions {
  /** PostgreSQL database URL per subgraph, as this machine reaches it (the rig forwards the server to the hosts). */
  databaseUrl: (name: SubgraphName) => string;
  redisUrl: string;
  amqpUrl: string;
  /** The supergraph.yaml published before the replicas start. */
  supergraphConfig: string;
  /** How often the gateways poll the registry. @default 1000 */
  pollIntervalMs?: number;
  /** Each replica's DRAIN_DELAY_MS. @default 1000 */
  drainDelayMs?: number;
  /** Environment for every process, over the rig's own. @default {} */
  env?: Record<string, string>;
  /** @default 'ignore' */
  stdio?: 'inherit' | 'ignore';
}

/** One process of the rig. */
export interface Replica {
  /** `gateway-1`, `products-2`, `accounts`... */
  name: string;
  service: SubgraphName | 'gateway' | 'registry';
  host: Host;
  /** Its own address, bypassing HAProxy. */
  baseUrl: string;
  /** Its server in HAProxy (`be_gateway/gateway-1`), when it is balanced. */
  balancedAs: string | undefined;
  child: ChildProcess;
}

export interface Rig {
  network: HostNetwork;
  /** The gateway through HAProxy: what clients use. */
  url: string;
  statsUrl: string;
  /** Where the gateways poll for the supergraph. */
  registryUrl: string;
  replicas: Map<string, Replica>;
  /** Publishes the supergraph `config` composes, as CI would: exit code and output. */
  publish(config: string): Promise<{ code: number | null; output: string }>;
  kill(name: string, signal: NodeJS.Signals): Promise<void>;
  restart(name: string): Promise<void>;
  /** Waits until HAProxy has the replica in rotation (`true`) or out of it (`false`). */
  waitInRotation(name: string, up: boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Runs a repository script with node and tsx, on this machine; resolves with its exit code and output. */
function runScript(args: readonly string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, output }));
  });
}

/** `url` with its host and port replaced by `to` (`address:port`). */
function rehost(url: string, to: string): string {
  const u = new URL(url);
  const [hostname, port] = to.split(':');
  u.hostname = hostname ?? u.hostname;
  u.port = port ?? u.port;
  return u.toString();
}

const hostPort = (url: string, fallback: number) => {
  const u = new URL(url);
  return `${u.hostname}:${u.port || fallback}`;
};

/** Starts the rig: hosts, forwards, registry, subgraphs, gateways, HAProxy. Cleans up if any of it fails. */
export async function startRig(options: RigOptions): Promise<Rig> {
  const network = createHostNetwork();
  const stdio = options.stdio ?? 'ignore';
  const replicas = new Map<string, Replica>();
  const specs = new Map<string, { entry: string[]; env: Record<string, string>; readyUrl: string }>();
  const publishDir = mkdtempSync(path.join(tmpdir(), 'rig-supergraph-'));
  let balancer: ChildProcess | undefined;
  try {
    // The machine's services, as the hosts reach them: forwards on the bridge.
    const pgTarget = hostPort(options.databaseUrl('accounts'), 5432);
    network.forward(35432, pgTarget);
    network.forward(36379, hostPort(options.redisUrl, 6379));
    network.forward(35672, hostPort(options.amqpUrl, 5672));
    await network.startForwards();
    const on = (port: number) => `${network.gatewayIp}:${port}`;
    const databaseUrl = (name: SubgraphName) => {
      const url = options.databaseUrl(name);
      if (hostPort(url, 5432) !== pgTarget) throw new Error('the rig forwards one PostgreSQL server: every database must be on it');
      return rehost(url, on(35432));
    };
    const common: Record<string, string> = {
      AMQP_URL: rehost(options.amqpUrl, on(35672)),
      AMQP_NAMESPACE: `rig-${randomBytes(4).toString('hex')}`,
      REDIS_URL: rehost(options.redisUrl, on(36379)),
      SUBGRAPH_SECRET: randomBytes(32).toString('hex'),
      LOG_LEVEL: 'error',
      DRAIN_DELAY_MS: String(options.drainDelayMs ?? 1000),
      SEED_USERS: '50',
      SEED_PRODUCTS: '50',
      SEED_REVIEWS: '100',
      ...options.env,
    };

    const start = async (name: string) => {
      const spec = specs.get(name);
      const replica = replicas.get(name);
      if (!spec || !replica) throw new Error(`no replica ${name}`);
      replica.child = replica.host.spawn(process.execPath, ['--import', 'tsx', ...spec.entry], spec.env, stdio);
      await waitForReady(spec.readyUrl, replica.child, 120_000);
    };
    const add = (name: string, service: Replica['service'], entry: string[], env: Record<string, string>, balancedAs?: string) => {
      const host = network.addHost(name);
      const port = service === 'registry' ? REGISTRY_PORT : PORTS[service];
      const baseUrl = `http://${host.ip}:${port}`;
      specs.set(name, { entry, env: { ...env, HOST: '0.0.0.0' }, readyUrl: `${baseUrl}/${service === 'registry' ? 'health' : 'ready'}` });
      // The child is set by `start`.
      replicas.set(name, { name, service, host, baseUrl, balancedAs, child: undefined as unknown as ChildProcess });
      return host;
    };

    // The registry, and the first supergraph published into it.
    const published = await runScript(['scripts/supergraph.ts', 'publish', '--to', publishDir, ...publishArgs(options.supergraphConfig)]);
    if (published.code !== 0) throw new Error(`the first publish failed:\n${published.output}`);
    const registry = add(
      'registry',
      'registry',
      ['scripts/supergraph.ts', 'serve', '--dir', publishDir, '--port', String(REGISTRY_PORT)],
      {},
    );
    const registryUrl = `http://${registry.ip}:${REGISTRY_PORT}/supergraph.graphql`;

    // Subgraphs: one host each, products twice (the first seeds its database before the second starts).
    const lb = network.addHost('lb');
    const subgraphUrl: Partial<Record<SubgraphName, string>> = {};
    for (const def of SUBGRAPHS) {
      const names = def.name === 'products' ? ['products-1', 'products-2'] : [def.name];
      for (const name of names) {
        const prefix = def.name.toUpperCase();
        const host = add(
          name,
          def.name,
          [path.join('subgraphs', def.name, 'src', 'index.ts')],
          { ...common, [`${prefix}_PORT`]: String(PORTS[def.name]), [`${prefix}_DATABASE_URL`]: databaseUrl(def.name) },
          def.name === 'products' ? `be_products/${name}` : undefined,
        );
        subgraphUrl[def.name] =
          def.name === 'products' ? `http://${lb.ip}:${PORTS.products}/graphql` : `http://${host.ip}:${PORTS[def.name]}/graphql`;
      }
    }
    const accountsUrl = subgraphUrl.accounts as string;
    const { issuer, audience } = loadAccountsAuthConfig({ ...process.env, ...common });
    const gatewayEnv: Record<string, string> = {
      ...common,
      GATEWAY_PORT: String(PORTS.gateway),
      SUPERGRAPH_URL: registryUrl,
      SUPERGRAPH_POLL_INTERVAL_MS: String(options.pollIntervalMs ?? 1000),
      JWKS_URL: jwksUrlOf(accountsUrl),
      JWT_ISSUER: issuer,
      JWT_AUDIENCE: audience,
      // Every query reaches the subgraphs: a killed replica must show in what clients see.
      GATEWAY_CACHE: 'false',
      RATE_LIMIT_POINTS: '0',
      ...Object.fromEntries(SUBGRAPHS.map((s) => [`SUBGRAPH_${s.name.toUpperCase()}_URL`, subgraphUrl[s.name] as string])),
      ...options.env,
    };
    for (const name of ['gateway-1', 'gateway-2'])
      add(name, 'gateway', [path.join('gateway', 'src', 'index.ts')], gatewayEnv, `be_gateway/${name}`);

    await start('registry');
    await start('products-1');
    await Promise.all([...replicas.keys()].filter((n) => n !== 'registry' && n !== 'products-1' && !n.startsWith('gateway')).map(start));
    await Promise.all(['gateway-1', 'gateway-2'].map(start));

    const servers = (service: string) =>
      [...replicas.values()]
        .filter((r) => r.balancedAs?.startsWith(`be_${service}/`))
        .map((r) => ({ name: r.name, address: `${r.host.ip}:${service === 'gateway' ? PORTS.gateway : PORTS.products}` }));
    balancer = runHaproxy(
      balancerConfig({
        services: [
          { name: 'gateway', bind: `${lb.ip}:8080`, servers: servers('gateway') },
          { name: 'products', bind: `${lb.ip}:${PORTS.products}`, servers: servers('products') },
        ],
        stats: `${lb.ip}:${LB_STATS_PORT}`,
      }),
      `lb-${path.basename(publishDir)}`,
      stdio,
      lb,
    );
    const statsUrl = `http://${lb.ip}:${LB_STATS_PORT}`;
    const rig: Rig = {
      network,
      url: `http://${lb.ip}:8080/graphql`,
      statsUrl,
      registryUrl,
      replicas,
      publish: (config) => runScript(['scripts/supergraph.ts', 'publish', '--to', publishDir, ...publishArgs(config)]),
      async kill(name, signal) {
        const replica = replicas.get(name);
        if (!replica) throw new Error(`no replica ${name}`);
        const { child } = replica;
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill(signal);
        await exited;
      },
      restart: (name) => start(name),
      async waitInRotation(name, up, timeoutMs = 30_000) {
        const replica = replicas.get(name);
        if (!replica?.balancedAs) throw new Error(`${name} is not balanced`);
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const state = (await balancerStates(statsUrl).catch(() => new Map<string, string>())).get(replica.balancedAs) ?? '';
          if (up ? state === 'UP' : state.startsWith('DOWN')) return;
          if (Date.now() > deadline) throw new Error(`${name} not ${up ? 'in' : 'out of'} rotation after ${timeoutMs} ms (${state})`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      },
      async close() {
        if (balancer) await stopChild(balancer, 2000);
        // The gateways first: they would log every failed poll of a registry that stopped before them.
        const stop = (gateways: boolean) =>
          Promise.all(
            [...replicas.values()]
              .filter((r) => (r.service === 'gateway') === gateways)
              .map((r) => (r.child ? stopChild(r.child, 15_000) : Promise.resolve())),
          );
        await stop(true);
        await stop(false);
        await network.close();
        rmSync(publishDir, { recursive: true, force: true });
      },
    };
    for (const name of ['gateway-1', 'gateway-2', 'products-1', 'products-2']) await rig.waitInRotation(name, true);
    return rig;
  } catch (err) {
    if (balancer) await stopChild(balancer, 2000);
    await Promise.all([...replicas.values()].map((r) => (r.child ? stopChild(r.child, 5000) : Promise.resolve())));
    await network.close();
    rmSync(publishDir, { recursive: true, force: true });
    throw err;
  }
}

/** The schema check's inputs are the repository's: its client operations and approvals. */
const publishArgs = (config: string) => [
  '--config',
  config,
  '--operations',
  path.join(REPO_ROOT, 'operations'),
  '--approvals',
  path.join(REPO_ROOT, 'schema-approvals.yaml'),
];

/**
 * A supergraph.yaml (in a new temporary folder) like the repository's, where `subgraph`'s schema
 * lacks `field` (its line, and a one-line description above it): the supergraph of the version
 * before that field was added. Returns the file; the folder goes with `remove`.
 */
export function supergraphConfigWithout(subgraph: SubgraphName, field: string): { file: string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'rig-config-'));
  const lines: string[] = ['federation_version: =2.14.4', 'subgraphs:'];
  for (const def of SUBGRAPHS) {
    let schema = path.join(REPO_ROOT, 'subgraphs', def.name, 'src', 'schema.graphql');
    if (def.name === subgraph) {
      const text = readFileSync(schema, 'utf8').split('\n');
      const at = text.findIndex((l) => new RegExp(`^\\s+${field}\\s*[:(]`).test(l));
      if (at < 0) throw new Error(`${subgraph} has no field ${field}`);
      const from = /^\s+"[^"]*"\s*$/.test(text[at - 1] ?? '') ? at - 1 : at;
      text.splice(from, at - from + 1);
      schema = path.join(dir, `${def.name}.graphql`);
      writeFileSync(schema, text.join('\n'));
    }
    lines.push(`  ${def.name}:`, `    routing_url: http://${def.name}:${PORTS[def.name]}/graphql`, '    schema:', `      file: ${schema}`);
  }
  const file = path.join(dir, 'supergraph.yaml');
  writeFileSync(file, `${lines.join('\n')}\n`);
  return { file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

// ---- the scenario ----------------------------------------------------------------------------

/**
 * The rollout the scenario makes: the supergraph before `Product.reviewCount` was added (what the
 * rig starts with; `remove` deletes its folder), and the repository's, which adds it.
 */
export function rigRollout(): { previous: { file: string; remove: () => void }; next: { config: string; field: string; query: string } } {
  return {
    previous: supergraphConfigWithout('products', 'reviewCount'),
    next: {
      config: path.join(REPO_ROOT, 'supergraph.yaml'),
      field: 'Product.reviewCount',
      query: '{ topProducts(first: 1) { id reviewCount } }',
    },
  };
}

/** The query the load sends: products (through its HAProxy), inventory and reviews. */
export const RIG_QUERY = 'query RigLoad { topProducts(first: 5) { id name price inStock reviews(first: 2) { rating } } }';

interface Sample {
  start: number;
  end: number;
  error: string | undefined;
}

/** What clients saw while one thing happened. */
export interface RigEvent {
  event: string;
  /** From the action until the replica was back in rotation (or every gateway switched). */
  windowMs: number;
  /** Requests that overlapped the window. */
  requests: number;
  errors: number;
  /** Client requests in flight when the action began (on both replicas). */
  inFlightAtStart: number;
  /** Requests HAProxy sent again (to the other replica) during the window: what kept `errors` at 0. */
  retried: number;
  p50Ms: number;
  p99Ms: number;
  errorSamples: string[];
}

export interface RigReport {
  at: string;
  clients: number;
  totalRequests: number;
  totalErrors: number;
  baseline: RigEvent;
  events: RigEvent[];
  /** How long `npm run supergraph -- publish` took (compose, schema check, write). */
  publishMs: number;
  /** Per gateway replica: ms from the end of the publish until it answered a query with the new field. */
  switchMs: Record<string, number>;
  /** The publish of a supergraph that does not compose: refused, and what the registry serves is unchanged. */
  brokenPublishRefused: boolean;
}

const quantile = (sorted: readonly number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;

/**
 * Steady load through HAProxy while, in turn: a gateway replica is SIGKILLed and restarted, a
 * products replica is SIGKILLed and restarted, each is stopped with SIGTERM (a drain) and
 * restarted, and the supergraph `next` composes (one field more) is published. Then a supergraph
 * that does not compose is published, and must be refused.
 */
export async function runRigScenario(rig: Rig, next: { config: string; field: string; query: string }, clients = 8): Promise<RigReport> {
  const samples: Sample[] = [];
  let running = true;
  const client = async () => {
    while (running) {
      const start = performance.now();
      let error: string | undefined;
      try {
        const res = await fetch(rig.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: RIG_QUERY }),
          signal: AbortSignal.timeout(15_000),
        });
        const body = (await res.json()) as { errors?: Array<{ message: string; extensions?: { code?: string } }>; data?: unknown };
        if (res.status !== 200 || body.errors?.length || !body.data)
          error = `${res.status} ${body.errors?.map((e) => e.extensions?.code ?? e.message).join(',') ?? 'no data'}`;
      } catch (err) {
        error = String(err);
      }
      samples.push({ start, end: performance.now(), error });
    }
  };
  const load = Array.from({ length: clients }, client);
  const retries = () => balancerRetries(rig.statsUrl);
  const measure = (event: string, from: number, to: number, retried: number): RigEvent => {
    const overlapping = samples.filter((s) => s.end >= from && s.start <= to);
    const times = overlapping.map((s) => s.end - s.start).sort((a, b) => a - b);
    const errors = overlapping.filter((s) => s.error);
    return {
      event,
      windowMs: Math.round(to - from),
      requests: overlapping.length,
      errors: errors.length,
      inFlightAtStart: samples.filter((s) => s.start <= from && s.end >= from).length,
      retried,
      p50Ms: Math.round(quantile(times, 0.5) * 10) / 10,
      p99Ms: Math.round(quantile(times, 0.99) * 10) / 10,
      errorSamples: [...new Set(errors.map((e) => e.error as string))].slice(0, 5),
    };
  };
  const until = async (count: number) => {
    const target = samples.length + count;
    while (samples.length < target) await new Promise((resolve) => setTimeout(resolve, 20));
  };
  const events: RigEvent[] = [];
  try {
    // Warmed up first: the processes' first requests compile their code paths.
    await until(400);
    const baselineFrom = performance.now();
    const baselineRetries = await retries();
    await until(400);
    const baseline = measure('steady load, nothing happening', baselineFrom, performance.now(), (await retries()) - baselineRetries);

    for (const [name, signal] of [
      ['gateway-1', 'SIGKILL'],
      ['products-1', 'SIGKILL'],
      ['gateway-2', 'SIGTERM'],
      ['products-2', 'SIGTERM'],
    ] as const) {
      const before = await retries();
      const from = performance.now();
      await rig.kill(name, signal);
      await rig.restart(name);
      await rig.waitInRotation(name, true);
      events.push(measure(`${signal} of ${name}, restarted, back in rotation`, from, performance.now(), (await retries()) - before));
      await until(100);
    }

    // The rollout: publish, then ask each replica directly until it knows the new field.
    const rolloutRetries = await retries();
    const from = performance.now();
    const published = await rig.publish(next.config);
    if (published.code !== 0) throw new Error(`publishing the new supergraph failed:\n${published.output}`);
    const publishedAt = performance.now();
    const publishMs = Math.round(publishedAt - from);
    const switchMs: Record<string, number> = {};
    await Promise.all(
      ['gateway-1', 'gateway-2'].map(async (name) => {
        const replica = rig.replicas.get(name) as Replica;
        for (;;) {
          const res = await fetch(`${replica.baseUrl}/graphql`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ query: next.query }),
          }).catch(() => undefined);
          const body = res ? ((await res.json()) as { errors?: unknown[] }) : undefined;
          if (res?.status === 200 && !body?.errors) break;
          if (performance.now() - publishedAt > 60_000) throw new Error(`${name} did not serve ${next.field} within 60 s`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        switchMs[name] = Math.round(performance.now() - publishedAt);
      }),
    );
    await until(100);
    events.push(
      measure(
        `supergraph with ${next.field} published, both gateways switched`,
        from,
        performance.now(),
        (await retries()) - rolloutRetries,
      ),
    );

    // A supergraph that does not compose is never published: the registry serves what it did.
    const before = await fetch(rig.registryUrl);
    const etag = before.headers.get('etag');
    await before.body?.cancel();
    const broken = brokenConfig(next.config);
    const refused = await rig.publish(broken.file).finally(broken.remove);
    const after = await fetch(rig.registryUrl);
    await after.body?.cancel();
    const brokenPublishRefused = refused.code === 1 && after.headers.get('etag') === etag;

    running = false;
    await Promise.all(load);
    return {
      at: new Date().toISOString(),
      clients,
      totalRequests: samples.length,
      totalErrors: samples.filter((s) => s.error).length,
      baseline,
      events,
      publishMs,
      switchMs,
      brokenPublishRefused,
    };
  } finally {
    running = false;
    await Promise.all(load);
  }
}

/** A copy of `config` whose products schema has a field of a type that does not exist: it does not compose. */
function brokenConfig(config: string): { file: string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'rig-broken-'));
  const yaml = readFileSync(config, 'utf8');
  const products = /products:[\s\S]*?file:\s*(\S+)/.exec(yaml)?.[1];
  if (!products) throw new Error(`no products schema in ${config}`);
  const source = path.resolve(path.dirname(config), products);
  const schema = path.join(dir, 'products.graphql');
  writeFileSync(schema, readFileSync(source, 'utf8').replace(/type Query \{/, 'type Query {\n  broken: TypeThatDoesNotExist'));
  const file = path.join(dir, 'supergraph.yaml');
  writeFileSync(file, yaml.replace(products, schema).replace(/file: \.\//g, `file: ${path.dirname(config)}/`));
  return { file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The report as a Markdown table, for docs/deployment.md. */
export function formatRigReport(report: RigReport): string {
  const row = (e: RigEvent) =>
    `| ${e.event} | ${(e.windowMs / 1000).toFixed(1)} s | ${e.requests} | ${e.retried} | ${e.errors} | ${e.p50Ms} ms | ${e.p99Ms} ms |`;
  return [
    `${report.clients} clients sending queries through HAProxy without pause; ${report.totalRequests} requests, ${report.totalErrors} errors in all (run of ${report.at}).`,
    '',
    '| What happened | Window | Requests | Sent again by HAProxy | Client errors | p50 | p99 |',
    '| --- | --: | --: | --: | --: | --: | --: |',
    row(report.baseline),
    ...report.events.map(row),
    '',
    `The publish (compose, schema check against what was published, write) took ${report.publishMs} ms. Time from its end until each gateway replica answered a query with the new field: ${Object.entries(
      report.switchMs,
    )
      .sort()
      .map(([name, ms]) => `${name} ${ms} ms`)
      .join(', ')}.`,
    `A supergraph that does not compose: ${report.brokenPublishRefused ? 'refused by the publish, and the registry kept serving the one before' : 'NOT refused'}.`,
  ].join('\n');
}
