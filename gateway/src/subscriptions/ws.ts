// GraphQL over WebSocket (the graphql-transport-ws protocol) on the gateway's /graphql path:
// graphql-ws's protocol state machine (`makeServer`) on a `ws` socket we own, so that we decide
// the heartbeats, the close codes, the message size and what a slow client costs. (graphql-ws's
// own `useServer` is a reference adapter its docs suggest copying; ours adds the token expiry,
// drain and hub wiring.)
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type ExecutionArgs, type FormattedExecutionResult, GraphQLError, type GraphQLSchema, getOperationAST, parse } from 'graphql';
import { CloseCode, makeServer } from 'graphql-ws';
import { type WebSocket, WebSocketServer } from 'ws';
import { MAX_JSON_DEPTH, addressOf, jsonDeeperThan } from '@shop/server';
import type { RateLimiter } from '@shop/cache';
import type { Logger } from '@shop/telemetry';
import type { VerifiedAuthorization } from '../auth';
import type { ResultStream, SubscribeRequest, Subscriber, SubscriptionHub } from './hub';

/** Close codes this gateway uses beyond the protocol's own. */
export const WS_CLOSE = {
  /** The server drains (a restart or a scale-down): reconnect, through the balancer, elsewhere. */
  restarting: 1012,
  /** The connection's token expired: get a new one and reconnect. */
  tokenExpired: 4401,
  /** The connection_init's token did not verify. */
  forbidden: 4403,
} as const;

export interface WsFrontOptions {
  hub: SubscriptionHub;
  logger: Logger;
  verify: (authorization: string | undefined) => Promise<VerifiedAuthorization | undefined>;
  /** Largest message accepted, in bytes (the HTTP body limit). */
  maxPayload: number;
  /** Ping every this many ms; a socket that has not answered the previous ping by then is dropped. @default 15000 */
  keepAliveMs?: number;
  /** How long a client may take to send connection_init. @default 3000 */
  connectionInitWaitTimeoutMs?: number;
  /** Largest number of tokens in a document (the gateway's limit). */
  maxTokens: number;
  /**
   * The gateway's per-client rate limit (`RATE_LIMIT_POINTS`): each subscribe message (a
   * subscription, or a query over the socket) costs a point, as a request does, so an open
   * socket is no way around it. @default none
   */
  rateLimiter?: RateLimiter | undefined;
  /** The API schema (graphql-ws's ExecutionArgs carry one; the hub's pipeline uses Apollo's). */
  schema: () => GraphQLSchema | undefined;
}

interface Extra {
  socket: WebSocket;
  request: IncomingMessage;
  connection: Subscriber['connection'];
  subscriber?: Subscriber;
  expiry?: NodeJS.Timeout;
}

interface OperationContext {
  payload: SubscribeRequest;
  subscriber: Subscriber;
  stream?: ResultStream;
}

/** A formatted result as graphql-ws sends one: each error with the `toJSON` it calls. */
function sendable(result: FormattedExecutionResult): FormattedExecutionResult {
  if (!result.errors) return result;
  return { ...result, errors: result.errors.map((e) => Object.assign({}, e, { toJSON: () => e })) };
}

export function createWsFront(options: WsFrontOptions) {
  const { hub, logger } = options;
  const keepAliveMs = options.keepAliveMs ?? 15_000;
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxPayload,
    // Deflate costs hundreds of KB per socket: 1,000 subscribers would pay for it in memory.
    perMessageDeflate: false,
    handleProtocols: (protocols) => (protocols.has('graphql-transport-ws') ? 'graphql-transport-ws' : false),
  });
  const sockets = new Set<WebSocket>();

  const server = makeServer<Record<string, unknown> | undefined, Extra>({
    connectionInitWaitTimeout: options.connectionInitWaitTimeoutMs ?? 3_000,
    // A browser cannot set headers on a WebSocket: the token comes in connection_init's payload
    // (`authorization: "Bearer ..."`), or in the upgrade's Authorization header.
    onConnect: async (ctx) => {
      const { extra } = ctx;
      const fromPayload = ctx.connectionParams?.authorization;
      const header = typeof fromPayload === 'string' ? fromPayload : extra.request.headers.authorization;
      let verified: VerifiedAuthorization | undefined;
      try {
        verified = await options.verify(header);
      } catch (err) {
        extra.socket.close(WS_CLOSE.forbidden, `UNAUTHENTICATED: ${(err as Error).message}`.slice(0, 120));
        return false;
      }
      extra.subscriber = {
        identity: verified?.identity,
        connection: extra.connection,
        logger: logger.child({ connection: extra.connection.id }),
      };
      if (verified?.expiresAt !== undefined) {
        const left = verified.expiresAt - Date.now();
        // At the token's expiry every subscription ends with TOKEN_EXPIRED, then the socket closes.
        extra.expiry = setTimeout(
          () => {
            void hub
              .endConnection(
                extra.connection.id,
                new GraphQLError('The access token expired; subscribe again with a new one.', { extensions: { code: 'TOKEN_EXPIRED' } }),
                'token_expired',
              )
              .then(() => extra.socket.close(WS_CLOSE.tokenExpired, 'TOKEN_EXPIRED'));
          },
          Math.max(0, Math.min(left, 2_147_000_000)),
        );
      }
      return true;
    },
    onSubscribe: async (ctx, _id, payload) => {
      const subscriber = ctx.extra.subscriber;
      if (!subscriber) return [new GraphQLError('Not connected.', { extensions: { code: 'UNAUTHENTICATED' } })];
      if (options.rateLimiter) {
        const verdict = await options.rateLimiter.consume(addressOf(ctx.extra.request));
        if (!verdict.allowed)
          return [
            new GraphQLError('Too many requests from this client; retry later.', {
              extensions: { code: 'RATE_LIMITED', retryAfterMs: verdict.retryAfterMs },
            }),
          ];
      }
      let document;
      try {
        document = parse(payload.query, { noLocation: true, maxTokens: options.maxTokens });
      } catch (err) {
        return [new GraphQLError((err as Error).message, { extensions: { code: 'GRAPHQL_PARSE_FAILED' } })];
      }
      const request: SubscribeRequest = {
        query: payload.query,
        variables: payload.variables,
        operationName: payload.operationName,
        extensions: payload.extensions,
      };
      const context: OperationContext = { payload: request, subscriber };
      if (getOperationAST(document, payload.operationName)?.operation === 'subscription') {
        const outcome = await hub.subscribe(request, subscriber);
        // Refused (limits, validation, authorization, the owner's check): an `error` message.
        if (!outcome.ok) return [...outcome.errors];
        context.stream = outcome.stream;
      }
      const schema = options.schema();
      return {
        schema: schema as GraphQLSchema,
        document,
        variableValues: payload.variables,
        operationName: payload.operationName,
        contextValue: context,
      } satisfies ExecutionArgs;
    },
    subscribe: (args) => {
      const stream = (args.contextValue as OperationContext).stream as ResultStream;
      // graphql-ws sends `error.toJSON()`: our results are formatted already (Apollo's, the hub's).
      return {
        [Symbol.asyncIterator]() {
          return this;
        },
        next: async () => {
          const step = await stream.next();
          return step.done ? step : { done: false, value: sendable(step.value) };
        },
        return: async () => {
          await stream.return();
          return { done: true, value: undefined };
        },
        throw: async () => {
          await stream.return();
          return { done: true, value: undefined };
        },
      } as never;
    },
    // A query or mutation over the socket: run once through the same pipeline, as over HTTP.
    execute: async (args) => {
      const context = args.contextValue as OperationContext;
      return sendable(
        await hub.execute(context.payload, context.subscriber, `${context.subscriber.connection.id}:${randomUUID()}`),
      ) as never;
    },
  });

  const accept = (socket: WebSocket, request: IncomingMessage) => {
    sockets.add(socket);
    const extra: Extra = { socket, request, connection: { id: randomUUID(), active: 0 } };
    let awaitingPong = false;
    // The verdict waits for this turn's I/O (setImmediate runs after the poll phase): on a busy
    // loop the timer can run before a pong that already arrived is read.
    const ping = setInterval(
      () =>
        setImmediate(() => {
          if (socket.readyState !== socket.OPEN) return;
          if (awaitingPong) {
            socket.terminate();
            return;
          }
          awaitingPong = true;
          socket.ping();
        }),
      keepAliveMs,
    );
    socket.on('pong', () => {
      awaitingPong = false;
    });
    socket.once('error', (err) => {
      logger.warn({ err: err.message }, 'websocket error');
      socket.close(CloseCode.InternalServerError, 'Internal server error');
    });
    const closed = server.opened(
      {
        protocol: socket.protocol,
        send: (data) =>
          new Promise<void>((resolve, reject) => {
            if (socket.readyState !== socket.OPEN) return resolve();
            socket.send(data, (err) => (err ? reject(err) : resolve()));
          }),
        close: (code, reason) => socket.close(code, reason),
        onMessage: (cb) =>
          // The server's sockets have binaryType 'nodebuffer': a message is one Buffer (read as is, not copied).
          socket.on('message', (data: Buffer) => {
            const text = data.toString('utf8');
            // As for an HTTP body: JSON nested past 64 levels is refused before anything parses it.
            if (jsonDeeperThan(text, MAX_JSON_DEPTH)) {
              socket.close(CloseCode.BadRequest, `The message nests JSON deeper than ${MAX_JSON_DEPTH} levels`);
              return;
            }
            cb(text).catch((err: unknown) => {
              logger.error({ err }, 'websocket message failed');
              socket.close(CloseCode.InternalServerError, 'Internal server error');
            });
          }),
      },
      extra,
    );
    socket.once('close', (code, reason) => {
      clearInterval(ping);
      if (extra.expiry) clearTimeout(extra.expiry);
      sockets.delete(socket);
      void closed(code, String(reason));
    });
  };

  return {
    upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
      wss.handleUpgrade(req, socket, head, (ws) => accept(ws, req));
    },
    /** Connections open now. */
    get connections(): number {
      return sockets.size;
    },
    /** Closes every socket with 1012 (the server drains) and waits until they are closed (at most `graceMs`). */
    async close(graceMs = 2_000): Promise<void> {
      const open = [...sockets];
      await Promise.race([
        Promise.all(
          open.map(
            (socket) =>
              new Promise<void>((resolve) => {
                if (socket.readyState === socket.CLOSED) return resolve();
                socket.once('close', () => resolve());
                socket.close(WS_CLOSE.restarting, 'SERVER_RESTARTING');
              }),
          ),
        ),
        new Promise((resolve) => setTimeout(resolve, graceMs).unref()),
      ]);
      for (const socket of sockets) socket.terminate();
      wss.close();
    },
  };
}
