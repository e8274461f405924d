// GraphQL over Server-Sent Events (the GraphQL over SSE protocol's distinct connections mode:
// one stream per operation) on the gateway's /graphql path, for a request that accepts only
// `text/event-stream`. Each result is an `event: next`, the end an `event: complete`; a refused
// subscription is a stream of one `next` with the errors, then `complete`. Written here rather
// than through graphql-sse's handler: its single-connection mode keeps reservations on one
// replica (it breaks behind a balancer), and its Node adapter buffers what a slow client has not
// read without a bound; we watch the socket's buffer instead.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type FormattedExecutionResult, GraphQLError } from 'graphql';
import { type RequestInfo, readGraphQLParams } from '@shop/server';
import type { VerifiedAuthorization } from '../auth';
import { SLOW_CONSUMER, type SubscriptionHub, isSubscriptionRequest } from './hub';

export interface SseFrontOptions {
  hub: SubscriptionHub;
  verify: (authorization: string | undefined) => Promise<VerifiedAuthorization | undefined>;
  /** Largest request body, in bytes. */
  bodyLimit: number;
  /** Largest number of tokens in a document (the gateway's limit). */
  maxTokens: number;
  /** A `:` comment every this many ms keeps proxies from closing an idle stream. @default 12000 */
  pingMs?: number;
  /** Past this many bytes the client has not read, the stream ends with SLOW_CONSUMER. @default 1 MiB */
  maxBufferedBytes?: number;
}

const frame = (event: 'next' | 'complete', data?: FormattedExecutionResult) =>
  data === undefined ? `event: ${event}\ndata:\n\n` : `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

export function createSseFront(options: SseFrontOptions) {
  const { hub } = options;
  const pingMs = options.pingMs ?? 12_000;
  const maxBuffered = options.maxBufferedBytes ?? 1024 * 1024;
  const open = new Set<ServerResponse>();

  const eventStream = async (req: IncomingMessage, res: ServerResponse, info: RequestInfo): Promise<void> => {
    // Coded 4xx (415, 413, 400) before the stream starts, as for any GraphQL request.
    const params = await readGraphQLParams(req, options.bodyLimit);
    // The HTTP front verified the token; its expiry is read here (the stream ends then).
    const verified = info.identity ? await options.verify(req.headers.authorization) : undefined;
    const connection = { id: randomUUID(), active: 0 };
    const subscriber = { identity: info.identity, connection, logger: info.logger };
    const start = () => {
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      res.write(':\n\n');
    };
    // The answer's headers go once the subscription is checked: a client that has them knows it
    // is refused (one `next` with the errors, then `complete`) or registered (nothing is missed).
    if (!isSubscriptionRequest(params, options.maxTokens)) {
      const result = await hub.execute(params, subscriber, info.requestId);
      start();
      res.end(frame('next', result) + frame('complete'));
      return;
    }
    const outcome = await hub.subscribe(params, subscriber);
    if (outcome.ok && (res.destroyed || req.socket.destroyed)) {
      // The client left during the check: nobody to stream to.
      await outcome.stream.return();
      return;
    }
    start();
    if (!outcome.ok) {
      res.end(frame('next', { errors: outcome.errors.map((e) => e.toJSON()) }) + frame('complete'));
      return;
    }
    open.add(res);
    const ping = setInterval(() => res.write(':\n\n'), pingMs);
    let expiry: NodeJS.Timeout | undefined;
    try {
      const stream = outcome.stream;
      res.once('close', () => void stream.return());
      if (verified?.expiresAt !== undefined) {
        expiry = setTimeout(
          () =>
            void hub.endConnection(
              connection.id,
              new GraphQLError('The access token expired; subscribe again with a new one.', { extensions: { code: 'TOKEN_EXPIRED' } }),
              'token_expired',
            ),
          Math.max(0, Math.min(verified.expiresAt - Date.now(), 2_147_000_000)),
        );
      }
      for await (const result of stream) {
        if (res.writableLength > maxBuffered) {
          await stream.return();
          res.write(
            frame('next', { errors: [{ message: 'The client read too slowly; subscribe again.', extensions: { code: SLOW_CONSUMER } }] }),
          );
          break;
        }
        res.write(frame('next', result));
      }
    } finally {
      clearInterval(ping);
      if (expiry) clearTimeout(expiry);
      if (!res.writableEnded) res.end(frame('complete'));
      open.delete(res);
    }
  };

  return {
    eventStream,
    /** Streams open now. */
    get streams(): number {
      return open.size;
    },
    /** Ends what the hub's closeAll left open (a stream between its check and its first read). */
    close(): void {
      for (const res of open) if (!res.writableEnded) res.end(frame('complete'));
    },
  };
}
