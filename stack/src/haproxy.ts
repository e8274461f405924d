// The load balancer's HAProxy configuration: one HTTP frontend per replicated service, health
// checks on `/ready` (a draining replica answers 503 and leaves the rotation), and retries of
// what is safe to retry. A request is retried on another replica when the one it went to refused
// the connection, closed it without an answer, or answered 502/503/504; a request whose body
// names a mutation never is (it may have been applied before the replica died), nor is a body
// HAProxy could not buffer. The same text runs in the multi-host rig and in compose.yaml's image.

export interface BalancedService {
  /** `gateway`, `products`: the frontend and backend are named after it. */
  name: string;
  /** Where the frontend listens, `address:port`. */
  bind: string;
  /** The replicas, `name` and `address:port`. */
  servers: ReadonlyArray<{ name: string; address: string }>;
}

export interface BalancerOptions {
  services: readonly BalancedService[];
  /** Where the stats page listens (`/stats`, `/stats;csv`), `address:port`; none when unset. */
  stats?: string;
  /** How often each replica's `/ready` is checked. @default 250 */
  checkIntervalMs?: number;
  /** A replica's answer may take this long (a query's own deadline is the gateway's). @default 30000 */
  serverTimeoutMs?: number;
}

/** The configuration text. */
export function balancerConfig(options: BalancerOptions): string {
  const inter = options.checkIntervalMs ?? 250;
  const lines = [
    'global',
    '  maxconn 4000',
    'defaults',
    '  mode http',
    '  timeout connect 1s',
    '  timeout client 60s',
    `  timeout server ${options.serverTimeoutMs ?? 30_000}ms`,
    '  timeout http-request 10s',
    '  timeout http-keep-alive 10s',
    // Buffered, so that a retry can send the body again and the mutation test can read it.
    '  option http-buffer-request',
    '  retries 2',
    // A retry goes to another replica.
    '  option redispatch 1',
    '  retry-on conn-failure empty-response junk-response 502 503 504',
    // Down after one failed check, up after two good ones.
    `  default-server check inter ${inter}ms fastinter ${inter}ms downinter ${inter}ms fall 1 rise 2`,
  ];
  if (options.stats) lines.push('frontend stats', `  bind ${options.stats}`, '  stats enable', '  stats uri /stats', '  stats refresh 5s');
  for (const service of options.services) {
    lines.push(
      `frontend fe_${service.name}`,
      `  bind ${service.bind}`,
      `  default_backend be_${service.name}`,
      `backend be_${service.name}`,
      '  balance roundrobin',
      '  option httpchk GET /ready',
      '  http-check expect status 200',
      // Never twice: a body that mentions a mutation (a query that only names one is not retried either, which is safe).
      '  acl mutation req.body -m sub -i mutation',
      '  http-request disable-l7-retry if mutation',
      ...service.servers.map((s) => `  server ${s.name} ${s.address}`),
    );
  }
  return lines.join('\n');
}

/** Each server's state on the stats page (`UP`, `DOWN`, `UP 1/2`, `MAINT`...), keyed `backend/server`. */
export async function balancerStates(statsUrl: string): Promise<Map<string, string>> {
  const res = await fetch(`${statsUrl}/stats;csv`, { signal: AbortSignal.timeout(2000) });
  const text = await res.text();
  const [header, ...rows] = text.split('\n').filter(Boolean);
  const columns = (header ?? '').replace(/^# /, '').split(',');
  const status = columns.indexOf('status');
  const states = new Map<string, string>();
  for (const row of rows) {
    const cells = row.split(',');
    const [backend, server] = cells;
    if (!backend || !server || server === 'FRONTEND' || server === 'BACKEND') continue;
    states.set(`${backend}/${server}`, cells[status] ?? '');
  }
  return states;
}
