import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { type GraphQLResolveInfo, responsePathAsArray } from 'graphql';
import type { DomainError } from './client-errors';

/** Where a request's context collects the errors of fields that answered with part of their data. */
export const PARTIAL = Symbol('partialErrors');

interface PartialError {
  message: string;
  path: (string | number)[];
  extensions: Record<string, unknown>;
}

/**
 * Reports that the field at `info.path` answered with only part of its data (a sharded listing
 * with one shard down): the data goes out, and `error` goes in the response's `errors` at the
 * field's path, as graphql-js reports a failed field, so the client knows what is missing.
 */
export function reportPartial(context: object, info: GraphQLResolveInfo, error: DomainError): void {
  const list = (context as { [PARTIAL]?: PartialError[] })[PARTIAL];
  if (!list) throw new Error('reportPartial needs a context built by createSubgraph');
  list.push({ message: error.message, path: responsePathAsArray(info.path), extensions: error.extensionsForClient() });
}

/** Appends the reported partial errors to the response (see {@link reportPartial}). */
export const partialErrorsPlugin: ApolloServerPlugin<BaseContext> = {
  async requestDidStart() {
    return {
      async willSendResponse({ contextValue, response }) {
        if (response.body.kind !== 'single') return;
        const list = (contextValue as { [PARTIAL]?: PartialError[] })[PARTIAL] ?? [];
        if (list.length === 0) return;
        const result = response.body.singleResult;
        result.errors = [...(result.errors ?? []), ...list];
      },
    };
  },
};
