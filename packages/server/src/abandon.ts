import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { GraphQLError } from 'graphql';

/**
 * Where a request's context carries its client's abort signal (`RequestInfo.signal`). A symbol
 * property, like the request tag: Apollo copies the context per operation, keeping properties.
 */
export const CLIENT_SIGNAL = Symbol('clientSignal');

/** The `extensions.code` of the fields left unresolved because the client went away. */
export const CLIENT_CLOSED_REQUEST = 'CLIENT_CLOSED_REQUEST';

/**
 * Stops resolving a request whose client went away (the gateway gave up on it: timeout, its own
 * client gone): every field not yet started fails at once instead of running its resolver, so no
 * more store queries or loaders run for an answer nobody will read. A field already running
 * finishes; its children do not start. graphql-js 16 takes no abort signal, hence this hook.
 */
export function abandonedRequestPlugin<TContext extends BaseContext>(): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      return {
        async executionDidStart() {
          return {
            willResolveField({ contextValue }) {
              const signal = (contextValue as { [CLIENT_SIGNAL]?: AbortSignal })[CLIENT_SIGNAL];
              if (signal?.aborted) {
                throw new GraphQLError('The client went away; the request was abandoned.', { extensions: { code: CLIENT_CLOSED_REQUEST } });
              }
            },
          };
        },
      };
    },
  };
}
