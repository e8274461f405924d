import { type Server, type Socket, createServer, connect as tcpConnect } from 'node:net';

/**
 * A TCP proxy between a bus and RabbitMQ that a test can cut (drop every connection and refuse
 * new ones) or stall (hold every byte), so an outage touches only this test's connections.
 */
export interface Proxy {
  url: string;
  /** Connections refused while cut. */
  refused: number;
  cut(): void;
  stall(): void;
  restore(): void;
  close(): Promise<void>;
}

/** Starts a cuttable TCP proxy in front of `target` (a URL with host and port). */
export async function startProxy(target: string): Promise<Proxy> {
  const upstream = new URL(target);
  let mode: 'open' | 'cut' | 'stalled' = 'open';
  const pairs = new Set<{ client: Socket; server: Socket; held: Array<[Socket, Buffer]> }>();
  const proxy = { refused: 0 } as Proxy;
  const server: Server = createServer((client) => {
    if (mode === 'cut') {
      proxy.refused++;
      client.destroy();
      return;
    }
    const pair = { client, server: tcpConnect(Number(upstream.port || 5672), upstream.hostname), held: [] as Array<[Socket, Buffer]> };
    const forward = (from: Socket, to: Socket) =>
      from.on('data', (chunk: Buffer) => {
        if (mode === 'stalled') pair.held.push([to, chunk]);
        else to.write(chunk);
      });
    forward(pair.client, pair.server);
    forward(pair.server, pair.client);
    const end = () => {
      pair.client.destroy();
      pair.server.destroy();
      pairs.delete(pair);
    };
    for (const s of [pair.client, pair.server]) {
      s.on('error', end);
      s.on('close', end);
    }
    pairs.add(pair);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const url = new URL(target);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  const dropAll = () => {
    for (const pair of [...pairs]) {
      pair.client.destroy();
      pair.server.destroy();
    }
  };
  return Object.assign(proxy, {
    url: url.toString(),
    cut: () => {
      mode = 'cut';
      dropAll();
    },
    stall: () => {
      mode = 'stalled';
    },
    restore: () => {
      mode = 'open';
      for (const pair of pairs) for (const [to, chunk] of pair.held.splice(0)) to.write(chunk);
    },
    close: async () => {
      mode = 'cut';
      dropAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}
