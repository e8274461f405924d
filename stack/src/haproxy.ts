// The load balancer's HAProxy configuration: one HTTP frontend per replicated service, health
// checks on `/ready` (a draining replica answers 503 and leaves the rotation), and retries of
// what is safe to retry. A request whose connection failed never reached a replica and is always
// sent to another. One that was sent and got no answer (the connection closed, or a 502) is sent
// again only when it is positively a query: a GET, or a POST whose JSON carries a `query` text
// that starts with `query` or `{` and does not mention a mutation anywhere. Everything else, a
// mutation, a document sent by id only (APQ, trusted documents), a body HAProxy could not buffer,
// is never sent twice: it may have run before the replica died. deploy/compose/haproxy.cfg uses
// the same retry lines (test/deploy-files.test.ts compares them).

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
    // A WebSocket or SSE subscription is a tunnel once upgraded: idle for up to 1 h between
    // events (the gateway pings every 15 s and 12 s anyway).
    '  timeout tunnel 1h',
    // Buffered, so that a retry can send the body again and the mutation test can read it.
    '  option http-buffer-request',
    '  retries 2',
    // A retry goes to another replica.
    '  option redispatch 1',
    // Not 503 (a replica shedding load: the other is as loaded) nor 504 (a timeout would be waited for again).
    '  retry-on conn-failure empty-response junk-response 502',
    // A check may take 2 s: a replica busy for a moment (swapping in a new supergraph is a burst
    // of CPU that holds its event loop) is not a dead one, and both replicas of a rollout are busy
    // at once. Down after two failed checks, up after two good ones.
    '  timeout check 2s',
    `  default-server check inter ${inter}ms fastinter ${inter}ms downinter ${inter}ms fall 2 rise 2`,
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
      // Sent again only when positively a query (see the top of this file); a connection failure is retried whatever it is.
      '  acl names_mutation req.body -m sub -i mutation',
      `  acl query_text req.body -m reg '"query"[[:space:]]*:[[:space:]]*"[[:space:]]*(query[^_[:alnum:]]|[{])'`,
      '  http-request disable-l7-retry if !METH_GET names_mutation || !METH_GET !query_text',
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

/**
 * How often the balancer has tried a request again so far, over every backend: the stats page's
 * `wretr` (retries) plus `wredis` (redispatches to another replica). Differences between two
 * readings count the retries in between.
 */
export async function balancerRetries(statsUrl: string): Promise<number> {
  const res = await fetch(`${statsUrl}/stats;csv`, { signal: AbortSignal.timeout(2000) });
  const [header, ...rows] = (await res.text()).split('\n').filter(Boolean);
  const columns = (header ?? '').replace(/^# /, '').split(',');
  const at = ['wretr', 'wredis'].map((name) => columns.indexOf(name));
  let total = 0;
  for (const row of rows) {
    const cells = row.split(',');
    if (cells[1] !== 'BACKEND') continue;
    for (const i of at) total += Number(cells[i] ?? 0) || 0;
  }
  return total;
}
