import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { type Span, recordError, trace, tracer } from '@shop/tracing';

/** Ends `span` when Apollo's end hook runs, with an error status when it reports errors. */
const endWith =
  (span: Span) =>
  async (err?: Error | readonly Error[]): Promise<void> => {
    const first = Array.isArray(err) ? (err as readonly Error[])[0] : (err as Error | undefined);
    if (first) recordError(span, first);
    span.end();
  };

/**
 * The spans OpenTelemetry's GraphQL conventions expect of a GraphQL server, for the gateway and
 * every subgraph (Apollo Server has no instrumentation of its own): `graphql.parse` and
 * `graphql.validate` under the request's span, and the operation's type and name on that span
 * once known. Added only when tracing is on.
 */
export function tracingPlugin<TContext extends BaseContext>(): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      return {
        async parsingDidStart() {
          return endWith(tracer.startSpan('graphql.parse'));
        },
        async validationDidStart() {
          return endWith(tracer.startSpan('graphql.validate'));
        },
        async didResolveOperation({ operation, operationName }) {
          const span = trace.getActiveSpan();
          if (!span || !operation) return;
          span.setAttribute('graphql.operation.type', operation.operation);
          if (operationName) span.setAttribute('graphql.operation.name', operationName);
        },
      };
    },
  };
}
