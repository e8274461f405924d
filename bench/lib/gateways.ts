// The gateways under test and how each is started: one process each, `node --import tsx <entry>`
// (the same Node flags for all three), NODE_ENV=production, logging at warn, no usage reporting.
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePeers, peerPath } from './peers';
import { freePort, graphqlAnswers, spawnNode, stopChild, waitUntil } from './procs';

export type GatewayKind = 'ours' | 'plain' | 'hive';

/** One configured gateway process. */
export interface GatewaySpec {
  /** Stable id in results: ours-off, ours-entity, ours-all, plain, hive, hive-rust, hive-rc. */
  id: string;
  kind: GatewayKind;
  label: string;
  /** What the gateway caches in this configuration, in words. */
  caches: string;
}

export const GATEWAYS = {
  oursOff: { id: 'ours-off', kind: 'ours', label: 'ours', caches: 'none (GATEWAY_CACHE=false); batchers on' },
  // ours-off with OpenTelemetry on: every request traced (the default sampler) and exported over
  // OTLP/HTTP to a sink in the bench's proxy process. Its cost beside ours-off is what tracing costs.
  oursTraced: {
    id: 'ours-traced',
    kind: 'ours',
    label: 'ours (tracing on)',
    caches: 'none (GATEWAY_CACHE=false); every request traced, OTLP/HTTP export',
  },
  oursEntity: { id: 'ours-entity', kind: 'ours', label: 'ours (entity cache)', caches: 'entity cache in Redis (RESPONSE_CACHE=false)' },
  oursAll: { id: 'ours-all', kind: 'ours', label: 'ours (all caches)', caches: 'entity + response cache in Redis' },
  plain: { id: 'plain', kind: 'plain', label: 'plain @apollo/gateway', caches: 'none (it has none)' },
  hive: { id: 'hive', kind: 'hive', label: 'Hive Gateway', caches: 'none' },
  // Hive's strongest configuration that installs here: the Rust query planner and its purpose-built
  // executor (@graphql-hive/router-runtime, HIVE_ROUTER_RUNTIME=true).
  hiveRust: {
    id: 'hive-rust',
    kind: 'hive',
    label: 'Hive Gateway (Rust planner)',
    caches: 'none; Rust query planner (@graphql-hive/router-runtime)',
  },
  hiveCached: { id: 'hive-rc', kind: 'hive', label: 'Hive Gateway (response cache)', caches: 'response cache in Redis' },
} as const satisfies Record<string, GatewaySpec>;

export type SubgraphUrls = Record<string, string>;

export interface StartOptions {
  repoRoot: string;
  workDir: string;
  /** The subgraphs (through the bench proxy), by subgraph name. */
  subgraphs: SubgraphUrls;
  redisUrl: string | undefined;
  /**
   * Ours: `SUBGRAPH_SECRET`, the subgraphs' own, so it signs its subgraph requests and the write
   * mix's signed-in callers reach them verified (the peers cannot sign: theirs arrive anonymous).
   */
  subgraphSecret: string;
  /** Ours: `JWKS_URL`, the set's accounts, against which it verifies the write mix's tokens. */
  jwksUrl: string;
  /** Write a V8 CPU profile to this directory when the process exits (`--cpu-prof`). */
  cpuProfileDir?: string;
  /** ours-traced: `OTEL_EXPORTER_OTLP_ENDPOINT`. */
  otlpEndpoint?: string;
}

export interface RunningGateway {
  spec: GatewaySpec;
  url: string;
  /** Ours only: its Prometheus endpoint, for its own subgraph counters. */
  metricsUrl: string | undefined;
  child: ChildProcess;
  pid: number;
  stop(): Promise<void>;
}

/** The supergraph with every routing URL replaced: Hive reads URLs only from the file. */
export function rewriteSupergraph(sdl: string, subgraphs: SubgraphUrls): string {
  return sdl.replace(/@join__graph\(name: "([^"]+)", url: "[^"]*"\)/g, (whole, name: string) => {
    const url = subgraphs[name];
    return url ? `@join__graph(name: "${name}", url: "${url}")` : whole;
  });
}

/**
 * Starts one gateway and waits until it answers a GraphQL request. A free port can be taken by
 * another process between the probe and the gateway's listen (the bench starts many at once): a
 * gateway that exits with EADDRINUSE is started again on another port, at most three times.
 */
export async function startGateway(spec: GatewaySpec, options: StartOptions): Promise<RunningGateway> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return await startGatewayOn(spec, options, port);
    } catch (err) {
      let log = '';
      try {
        log = readFileSync(gatewayLog(spec, options, port), 'utf8');
      } catch {
        // No log: not a port clash.
      }
      if (attempt >= 3 || !log.includes('EADDRINUSE')) throw err;
    }
  }
}

/** The OpenTelemetry SDK's own variables, as an operator sets them. */
function tracedEnv(options: StartOptions): Record<string, string> {
  if (!options.otlpEndpoint) throw new Error('ours-traced needs the OTLP sink (otlpEndpoint)');
  return { OTEL_EXPORTER_OTLP_ENDPOINT: options.otlpEndpoint, OTEL_SERVICE_NAME: 'gateway' };
}

const gatewayLog = (spec: GatewaySpec, options: StartOptions, port: number) => join(options.workDir, `${spec.id}-${port}.log`);

async function startGatewayOn(spec: GatewaySpec, options: StartOptions, port: number): Promise<RunningGateway> {
  const supergraphPath = join(options.repoRoot, 'supergraph.graphql');
  const base: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    APOLLO_TELEMETRY_DISABLED: 'true',
  };
  const overrides = Object.fromEntries(Object.entries(options.subgraphs).map(([name, url]) => [`SUBGRAPH_${name.toUpperCase()}_URL`, url]));
  const flags = ['--import', 'tsx', ...(options.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`] : [])];
  let args: string[];
  let env: Record<string, string | undefined>;
  switch (spec.kind) {
    case 'ours': {
      const caches =
        spec.id === 'ours-off' || spec.id === 'ours-traced'
          ? { GATEWAY_CACHE: 'false' }
          : spec.id === 'ours-entity'
            ? { GATEWAY_CACHE: 'true', ENTITY_CACHE: 'true', RESPONSE_CACHE: 'false' }
            : { GATEWAY_CACHE: 'true', ENTITY_CACHE: 'true', RESPONSE_CACHE: 'true' };
      args = [...flags, join(options.repoRoot, 'gateway', 'src', 'index.ts')];
      env = {
        ...base,
        ...overrides,
        ...caches,
        REDIS_URL: spec.id === 'ours-off' || spec.id === 'ours-traced' ? undefined : options.redisUrl,
        ...(spec.id === 'ours-traced' ? tracedEnv(options) : {}),
        SUBGRAPH_SECRET: options.subgraphSecret,
        JWKS_URL: options.jwksUrl,
        SUPERGRAPH_PATH: supergraphPath,
        SUPERGRAPH_WATCH: 'false',
        GATEWAY_PORT: String(port),
        HOST: '127.0.0.1',
        // One load generator on one address, measured for throughput: no per-client limit (the peers have none).
        RATE_LIMIT_POINTS: '0',
      };
      break;
    }
    case 'plain':
      args = [...flags, join(options.repoRoot, 'bench', 'gateways', 'apollo-plain.ts')];
      env = { ...base, ...overrides, SUPERGRAPH_PATH: supergraphPath, GATEWAY_PORT: String(port) };
      break;
    case 'hive': {
      const file = join(options.workDir, `supergraph-${spec.id}-${port}.graphql`);
      writeFileSync(file, rewriteSupergraph(readFileSync(supergraphPath, 'utf8'), options.subgraphs));
      ensurePeers(options.repoRoot, (line) => console.error(line));
      const bin = peerPath(options.repoRoot, '@graphql-hive', 'gateway', 'dist', 'bin.js');
      const config = join(options.repoRoot, 'bench', 'gateways', 'hive.config.ts');
      args = [...flags, bin, 'supergraph', file, '--port', String(port), '--host', '127.0.0.1', '--config-path', config];
      const cached = spec.id === 'hive-rc';
      env = {
        ...base,
        BENCH_HIVE_RESPONSE_CACHE: cached ? 'true' : 'false',
        HIVE_ROUTER_RUNTIME: spec.id === 'hive-rust' ? 'true' : undefined,
        BENCH_REPO_ROOT: options.repoRoot,
        BENCH_HIVE_REDIS_URL: cached ? options.redisUrl : undefined,
      };
      break;
    }
  }
  const child = spawnNode(args, options.repoRoot, { env, logFile: gatewayLog(spec, options, port) });
  const url = `http://127.0.0.1:${port}/graphql`;
  const stop = () => stopChild(child);
  try {
    // Generous: every gateway starts while eight subgraphs seed on the same two cores (a minute or
    // more); ours-traced, which loads the OpenTelemetry SDK too, missed a 60 s limit there.
    await waitUntil(spec.label, child, () => graphqlAnswers(url), 180_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    spec,
    url,
    metricsUrl: spec.kind === 'ours' ? `http://127.0.0.1:${port}/metrics` : undefined,
    child,
    pid: child.pid as number,
    stop,
  };
}

/** Each gateway's versions for the report, by spec id. */
export function gatewayVersions(repoRoot: string): Record<string, string> {
  const version = (pkg: string, from = join(repoRoot, 'node_modules', pkg)) => {
    try {
      return (JSON.parse(readFileSync(join(from, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      return 'unknown';
    }
  };
  const apollo = `@apollo/gateway ${version('@apollo/gateway')}`;
  const hive = `@graphql-hive/gateway ${version('@graphql-hive/gateway', peerPath(repoRoot, '@graphql-hive', 'gateway'))}`;
  const byKind: Record<GatewayKind, string> = {
    ours: `${apollo} + our data source and caches`,
    plain: `${apollo}, @apollo/server ${version('@apollo/server')}`,
    hive,
  };
  return Object.fromEntries(
    Object.values(GATEWAYS).map((g): [string, string] => [
      g.id,
      g.id === GATEWAYS.hiveRust.id
        ? `${hive}, @graphql-hive/router-runtime ${version('@graphql-hive/router-runtime', peerPath(repoRoot, '@graphql-hive', 'router-runtime'))}`
        : byKind[g.kind],
    ]),
  );
}
