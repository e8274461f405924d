// The subscribers of `npm run bench:subscriptions`, in a process of their own (forked with IPC), so
// that their sockets' memory is not counted as the gateway's. Each opens its own WebSocket
// (graphql-transport-ws) and follows one order; every result is recorded with its version and the
// time it arrived (performance.timeOrigin + performance.now(): comparable across processes).
import WebSocket from 'ws';
import { type Client, createClient } from 'graphql-ws';

export interface ClientJob {
  kind: 'subscribe';
  url: string;
  subscriptions: Array<{ orderId: string; token: string }>;
}
export interface Received {
  orderId: string;
  version: number | null;
  at: number;
  errors?: unknown;
}
export type ClientMessage = { kind: 'subscribed'; count: number } | { kind: 'report'; received: Received[]; closedEarly: number };

const now = () => performance.timeOrigin + performance.now();
const FOLLOW =
  'subscription ($id: ID!) { orderUpdated(id: $id) { id version status total lines { quantity product { name inStock } } customer { name } } }';

const clients: Client[] = [];
const received: Received[] = [];
let closedEarly = 0;
const send = (message: ClientMessage) => process.send?.(message);

process.on('message', (message: ClientJob | { kind: 'report' } | { kind: 'stop' }) => {
  if (message.kind === 'subscribe') {
    for (const { orderId, token } of message.subscriptions) {
      const client = createClient({
        url: message.url,
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        connectionParams: { authorization: `Bearer ${token}` },
      });
      clients.push(client);
      client.subscribe<{ orderUpdated: { id: string; version: number } }>(
        { query: FOLLOW, variables: { id: orderId } },
        {
          next: (r) =>
            received.push({ orderId, version: r.data?.orderUpdated.version ?? null, at: now(), ...(r.errors ? { errors: r.errors } : {}) }),
          error: (e) => {
            closedEarly++;
            received.push({ orderId, version: null, at: now(), errors: Array.isArray(e) ? e : String(e) });
          },
          complete: () => undefined,
        },
      );
    }
    send({ kind: 'subscribed', count: clients.length });
  } else if (message.kind === 'report') {
    send({ kind: 'report', received: received.splice(0), closedEarly });
  } else {
    void Promise.all(clients.map(async (c) => c.dispose())).then(() => process.exit(0));
  }
});
