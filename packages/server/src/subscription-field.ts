import { GraphQLError } from 'graphql';

/**
 * A `Subscription` field's resolvers in a subgraph. The gateway runs subscriptions (it holds the
 * connections and hears the bus): it sends the field as an ordinary operation, once to check the
 * subscriber and once per event with the event signed in the request (`RequestInfo.subscriptionEvent`),
 * and Apollo Server executes a posted subscription operation with `resolve`. `subscribe` is
 * never called on that path; anything that would subscribe to the schema directly gets a coded
 * SUBSCRIPTION_TRANSPORT_REQUIRED instead of an event stream the subgraph does not have.
 */
export function subscriptionField<TArgs, TContext, TResult>(service: string, resolve: (args: TArgs, ctx: TContext) => TResult) {
  return {
    subscribe: (): never => {
      throw new GraphQLError(`Subscribe through the gateway: ${service} resolves Subscription fields per event`, {
        extensions: { code: 'SUBSCRIPTION_TRANSPORT_REQUIRED' },
      });
    },
    resolve: (_: unknown, args: TArgs, ctx: TContext): TResult => resolve(args, ctx),
  };
}
