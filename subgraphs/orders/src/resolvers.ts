import { GraphQLError, GraphQLScalarType, Kind } from 'graphql';
import { randomUUID } from 'node:crypto';
import { type Invalidation, badInput, declareChanges, encodeCursor, pageRequest, quote } from '@shop/server';
import type { Context } from './context';
import type { OrderCommand } from './domain';
import type { MutationResolvers, Resolvers } from './generated/graphql';
import type { OrderModel } from './model';

/** ISO 8601 in, normalised to UTC with milliseconds (the event store's format) so comparisons hold. */
function parseDateTime(value: unknown): string {
  const ms = typeof value === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) {
    throw new GraphQLError(`DateTime must be an ISO 8601 date and time, e.g. 2025-01-31T12:00:00.000Z; received ${quote(value)}`, {
      extensions: { code: 'BAD_USER_INPUT' },
    });
  }
  return new Date(ms).toISOString();
}

const DateTime = new GraphQLScalarType({
  name: 'DateTime',
  serialize: (value) => String(value),
  parseValue: parseDateTime,
  parseLiteral: (ast) => parseDateTime(ast.kind === Kind.STRING ? ast.value : undefined),
});

const ORDER_ID = /^[A-Za-z0-9_-]{1,64}$/;

function checkVersion(expectedVersion: number | null | undefined): number | undefined {
  if (expectedVersion == null) return undefined;
  if (!Number.isInteger(expectedVersion) || expectedVersion < 0)
    throw badInput('expectedVersion', `expectedVersion must be a whole number >= 0; received ${expectedVersion}`);
  return expectedVersion;
}

/** Runs a command and returns the order it left. */
async function run(ctx: Context, orderId: string, command: OrderCommand, expectedVersion?: number | null): Promise<OrderModel> {
  const { order } = await ctx.orders.execute(orderId, command, {
    expectedVersion: checkVersion(expectedVersion),
    correlationId: ctx.requestId,
  });
  return order;
}

/** A command changed the order and its customer's order list (`User.orders`). */
const orderChanged = (_: unknown, order: OrderModel): Invalidation[] => [
  { __typename: 'Order', id: order.id },
  { __typename: 'User', id: order.customerId },
];

/** `User.orders` cursors name the last order shown: its creation time and id. */
const cursorKey = (o: OrderModel) => `${o.createdAt}|${o.id}`;

const Mutation = {
  createOrder: async (_, { customerId, id }, ctx) => {
    if (id != null && !ORDER_ID.test(id)) throw badInput('id', `id must be 1-64 letters, digits, - or _; received ${quote(id)}`);
    const orderId = id ?? randomUUID();
    const customer = customerId.trim();
    // An empty id is the decider's BAD_USER_INPUT; any other must be a user accounts created.
    if (customer) await ctx.orders.requireCustomer(customer);
    return run(ctx, orderId, { type: 'CreateOrder', orderId, customerId: customer });
  },
  addOrderLine: async (_, { orderId, productId, quantity, expectedVersion }, ctx) =>
    run(ctx, orderId, { type: 'AddOrderLine', productId, quantity, unitPrice: await ctx.orders.priceOf(productId) }, expectedVersion),
  removeOrderLine: (_, { orderId, productId, expectedVersion }, ctx) =>
    run(ctx, orderId, { type: 'RemoveOrderLine', productId }, expectedVersion),
  placeOrder: (_, { orderId, expectedVersion }, ctx) => run(ctx, orderId, { type: 'PlaceOrder' }, expectedVersion),
  cancelOrder: (_, { orderId, reason, expectedVersion }, ctx) =>
    run(ctx, orderId, { type: 'CancelOrder', reason: reason?.trim() || null }, expectedVersion),
} satisfies MutationResolvers;

export const resolvers: Resolvers = {
  DateTime,
  Query: {
    order: async (_, { id, asOf }, { loaders, orders }) => {
      if (asOf == null) return loaders.order.load(id);
      const order = await orders.asOf(id, asOf);
      return order ? { ...order, asOf } : null;
    },
  },
  // Every command changes the order and its customer's list, whatever the client selected.
  Mutation: declareChanges(Mutation, {
    createOrder: orderChanged,
    addOrderLine: orderChanged,
    removeOrderLine: orderChanged,
    placeOrder: orderChanged,
    cancelOrder: orderChanged,
  }),
  Order: {
    __resolveReference: (ref, { loaders }) => loaders.order.load(ref.id),
    // Other services own users and products: answer with references, never a store read.
    customer: (order) => ({ id: order.customerId }),
    // The events up to the version shown: a time-travel state lists only its past.
    history: async (order, _, { loaders }) => ((await loaders.history.load(order.id)) ?? []).filter((e) => e.version <= order.version),
  },
  OrderLine: {
    product: (line) => ({ id: line.productId }),
    lineTotal: (line) => line.quantity * line.unitPrice,
  },
  User: {
    __resolveReference: (ref) => ({ id: ref.id }),
    orders: async (user, { first, after }, { loaders, pageMax }) => {
      const page = pageRequest(first, after, pageMax);
      let cursor: { createdAt: string; id: string } | undefined;
      if (page.after !== undefined) {
        const split = page.after.indexOf('|');
        if (split < 0) throw badInput('after', `after is not a cursor issued by this API; received ${quote(after)}`);
        cursor = { createdAt: page.after.slice(0, split), id: page.after.slice(split + 1) };
      }
      const rows: OrderModel[] = (await loaders.customerOrders.load({ customerId: user.id, limit: page.first + 1, after: cursor })) ?? [];
      const edges = rows.slice(0, page.first).map((node) => ({ cursor: encodeCursor(cursorKey(node)), node }));
      return { edges, pageInfo: { endCursor: edges.at(-1)?.cursor ?? null, hasNextPage: rows.length > page.first } };
    },
  },
};
