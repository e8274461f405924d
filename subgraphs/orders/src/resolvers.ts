import { GraphQLError, GraphQLScalarType, Kind } from 'graphql';
import {
  DomainError,
  type Invalidation,
  type Scope,
  badInput,
  declareChanges,
  encodeCursor,
  isOwnerOr,
  notFound,
  pageRequest,
  quote,
  reportPartial,
  requireIdentity,
  requireOwnerOr,
  requireScope,
  subscriptionField,
  unauthorizedField,
} from '@shop/server';
import { slotOf } from '@shop/eventstore';
import type { OrderCursor, OrdersRepository } from './data/repository';
import { newOrderId, orderIdFor, slotOfId } from './sharding/ids';
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

/** The scope that reads and changes every customer's orders (support staff, admins). */
const ORDERS_ADMIN: Scope = 'orders:admin';

/**
 * Runs a command on an existing order for its customer or an orders:admin caller, and returns the
 * order it left. The checks, in order, so that a caller learns no more than they may:
 * anonymous → UNAUTHENTICATED (before any store access); an unknown order → NOT_FOUND (an order id
 * is no secret; what the order holds is); someone else's → FORBIDDEN, decided on the loaded
 * stream before its version, its status or the command's input (a line's product and price) are
 * looked at, so a stranger never sees CONCURRENCY_CONFLICT (which would tell the version),
 * ORDER_NOT_DRAFT (the status) or a product error.
 */
async function run(
  ctx: Context,
  what: string,
  orderId: string,
  command: OrderCommand | ((shard: OrdersRepository) => Promise<OrderCommand>),
  expectedVersion?: number | null,
): Promise<OrderModel> {
  const caller = requireIdentity(ctx.viewer, what);
  const { order } = await ctx.orders.execute(orderId, command, {
    expectedVersion: checkVersion(expectedVersion),
    correlationId: ctx.requestId,
    authorize: (current) => requireOwnerOr(caller, current.customerId, ORDERS_ADMIN, what),
  });
  return order;
}

/** An order the caller may read, as it is; else null at its path with UNAUTHORIZED_FIELD_OR_TYPE. */
function visible<T extends OrderModel>(ctx: Context, order: T | null): T | null {
  if (order && !isOwnerOr(ctx.viewer, order.customerId, ORDERS_ADMIN)) throw unauthorizedField('Order');
  return order;
}

/** A command changed the order and its customer's order list (`User.orders`). */
const orderChanged = (_: unknown, order: OrderModel): Invalidation[] => [
  { __typename: 'Order', id: order.id },
  { __typename: 'User', id: order.customerId },
];

/** Order list cursors (`User.orders`, `Query.orders`) name the last order shown: its creation time and id. */
const cursorKey = (o: OrderModel) => `${o.createdAt}|${o.id}`;

function parseOrderCursor(key: string | undefined, sent: string | null | undefined): OrderCursor | undefined {
  if (key === undefined) return undefined;
  const split = key.indexOf('|');
  if (split < 0) throw badInput('after', `after is not a cursor issued by this API; received ${quote(sent)}`);
  return { createdAt: key.slice(0, split), id: key.slice(split + 1) };
}

/** A page of orders as a connection: `more` says whether orders follow the last one. */
function connectionOf(orders: OrderModel[], first: number, more: boolean) {
  const edges = orders.slice(0, first).map((node) => ({ cursor: encodeCursor(cursorKey(node)), node }));
  return { edges, pageInfo: { endCursor: edges.at(-1)?.cursor ?? null, hasNextPage: more } };
}

/** The slot an order id carries; an id orders never issued names no order. */
function slotOfOrder(orderId: string): number {
  const slot = slotOfId(orderId);
  if (slot === undefined) throw new DomainError('NOT_FOUND', `order ${quote(orderId)} not found`, 'orderId');
  return slot;
}

const Mutation = {
  // For the caller by default; for another customer only with orders:admin (FORBIDDEN otherwise),
  // decided before the customer is looked up, so a stranger cannot probe which users exist.
  createOrder: async (_, { customerId, id }, ctx) => {
    const caller = requireIdentity(ctx.viewer, 'createOrder');
    if (id != null && !ORDER_ID.test(id)) throw badInput('id', `id must be 1-64 letters, digits, - or _; received ${quote(id)}`);
    const customer = customerId == null ? caller.sub : customerId.trim();
    // The id carries the customer's slot (`o<slot>-...`): a chosen id is kept after the prefix.
    const orderId = id == null ? newOrderId(customer) : orderIdFor(customer, id);
    if (!isOwnerOr(caller, customer, ORDERS_ADMIN)) {
      throw new DomainError('FORBIDDEN', `an order for another customer needs the ${ORDERS_ADMIN} scope`, 'customerId');
    }
    if (slotOfId(orderId) !== slotOf(customer) && !(await ctx.orders.load(orderId)).state) {
      // An id that is another customer's order goes on to be refused as theirs (FORBIDDEN) or a
      // duplicate; a new one must carry its customer's slot, or User.orders would not find it.
      throw badInput('id', `id ${quote(id)} carries another customer's slot: choose an id without the o<slot>- prefix`);
    }
    // An empty id is the decider's BAD_USER_INPUT; any other must be a user accounts created.
    if (customer) await ctx.orders.requireCustomer(customer);
    return run(ctx, 'createOrder', orderId, { type: 'CreateOrder', orderId, customerId: customer });
  },
  addOrderLine: (_, { orderId, productId, quantity, expectedVersion }, ctx) =>
    run(
      ctx,
      'addOrderLine',
      orderId,
      async (shard) => ({ type: 'AddOrderLine', productId, quantity, unitPrice: await shard.priceOf(productId) }),
      expectedVersion,
    ),
  removeOrderLine: (_, { orderId, productId, expectedVersion }, ctx) =>
    run(ctx, 'removeOrderLine', orderId, { type: 'RemoveOrderLine', productId }, expectedVersion),
  placeOrder: (_, { orderId, expectedVersion }, ctx) => run(ctx, 'placeOrder', orderId, { type: 'PlaceOrder' }, expectedVersion),
  // A confirmed order's refund and restock (the reverse saga) start in the cancel's own transaction.
  cancelOrder: async (_, { orderId, reason, expectedVersion }, ctx) => {
    const caller = requireIdentity(ctx.viewer, 'cancelOrder');
    return ctx.orders.write(slotOfOrder(orderId), (shard) =>
      shard.checkout.cancel({
        orderId,
        reason: reason?.trim() || null,
        expectedVersion: checkVersion(expectedVersion),
        correlationId: ctx.requestId,
        authorize: (current) => requireOwnerOr(caller, current.customerId, ORDERS_ADMIN, 'cancelOrder'),
      }),
    );
  },
  checkout: async (_, { orderId, idempotencyKey }, ctx) => {
    const caller = requireIdentity(ctx.viewer, 'checkout');
    const key = idempotencyKey.trim();
    if (key.length === 0 || key.length > 200) throw badInput('idempotencyKey', 'idempotencyKey must be 1 to 200 characters');
    // The key is the order's customer's: an admin checking out someone's order uses that customer's keys.
    const { state: order } = await ctx.orders.load(orderId);
    if (!order) throw new DomainError('NOT_FOUND', `order ${quote(orderId)} not found`, 'orderId');
    requireOwnerOr(caller, order.customerId, ORDERS_ADMIN, 'checkout');
    const { checkoutId } = await ctx.orders.write(slotOfOrder(orderId), (shard) =>
      shard.checkout.start({
        orderId,
        idempotencyKey: key,
        customerId: order.customerId,
        correlationId: ctx.requestId,
        authorize: (current) => requireOwnerOr(caller, current.customerId, ORDERS_ADMIN, 'checkout'),
      }),
    );
    const view = await ctx.orders.checkoutById(checkoutId);
    if (!view) throw new Error(`checkout ${checkoutId} has no view after it started`);
    return view;
  },
} satisfies MutationResolvers;

export const resolvers: Resolvers = {
  DateTime,
  Subscription: {
    // The gateway runs a subscription (it holds the connection and hears the bus): it sends this
    // field once to check the subscriber (the order as it is now), then once per event with the
    // event in the signed request (the order at that event's version: exactly the state after
    // that change, even while the read model is behind). Either way only the customer or an
    // orders:admin caller sees it; an unknown order is NOT_FOUND, so a subscription to it is refused.
    orderUpdated: subscriptionField('orders', async ({ id }: { id: string }, ctx: Context) => {
      if (!ctx.viewer) throw unauthorizedField('Order');
      const event = ctx.subscriptionEvent;
      const version = event?.aggregateId === id ? Number(event.payload.version ?? event.aggregateVersion) : undefined;
      const order =
        version !== undefined && Number.isSafeInteger(version) && version > 0
          ? await ctx.orders.atVersion(id, version)
          : await ctx.loaders.order.load(id);
      const seen = visible(ctx, order);
      if (!seen) throw notFound('Order', id);
      return seen;
    }),
    // The same, for the order's checkout: per event the checkout at that event's version (from its
    // stream, not the view, which may be behind); at the check, the order (which must exist and be
    // the caller's) and its current checkout, null before one starts.
    checkoutProgress: subscriptionField('orders', async ({ orderId }: { orderId: string }, ctx: Context) => {
      if (!ctx.viewer) throw unauthorizedField('Checkout');
      const event = ctx.subscriptionEvent;
      const version = Number(event?.payload.version);
      if (event && event.payload.orderId === orderId && Number.isSafeInteger(version) && version > 0) {
        const checkout = await ctx.orders.checkoutAtVersion(event.aggregateId, version);
        if (!checkout || checkout.orderId !== orderId) throw notFound('Checkout', event.aggregateId);
        if (!isOwnerOr(ctx.viewer, checkout.customerId, ORDERS_ADMIN)) throw unauthorizedField('Checkout');
        return checkout;
      }
      const order = visible(ctx, await ctx.loaders.order.load(orderId));
      if (!order) throw notFound('Order', orderId);
      return order.checkoutId ? ctx.loaders.checkout.load(order.id) : null;
    }),
  },
  Query: {
    // Its customer's or an orders:admin caller's; for anyone else null with UNAUTHORIZED_FIELD_OR_TYPE
    // (an unknown id is null without an error, as for the customer). Anonymous callers are refused
    // before any lookup, as the gateway's @authenticated refuses them.
    order: async (_, { id, asOf }, ctx) => {
      if (!ctx.viewer) throw unauthorizedField('Order');
      if (asOf == null) return visible(ctx, await ctx.loaders.order.load(id));
      const order = await ctx.orders.asOf(id, asOf);
      return visible(ctx, order ? { ...order, asOf } : null);
    },
    // A scatter-gather over every shard (the gateway's @requiresScopes already refused callers
    // without orders:admin; checked again here for calls that do not come through it).
    orders: async (_, { status, first, after }, ctx, info) => {
      requireScope(ctx.viewer, ORDERS_ADMIN, 'orders');
      const page = pageRequest(first, after, ctx.pageMax, 20);
      const result = await ctx.orders.list({ status: status ?? undefined, first: page.first, after: parseOrderCursor(page.after, after) });
      if (result.unavailable.length > 0) {
        const names = result.unavailable.map((u) => u.shard);
        reportPartial(
          ctx,
          info,
          new DomainError(
            'SHARD_UNAVAILABLE',
            `orders shard ${names.join(', ')} did not answer: their orders are missing from this page`,
            undefined,
            {
              details: { shards: names.join(',') },
            },
          ),
        );
      }
      return connectionOf(result.orders, page.first, result.hasNextPage);
    },
  },
  // Every command changes the order and its customer's list, whatever the client selected.
  Mutation: declareChanges(Mutation, {
    createOrder: orderChanged,
    addOrderLine: orderChanged,
    removeOrderLine: orderChanged,
    placeOrder: orderChanged,
    cancelOrder: orderChanged,
    checkout: (_, checkout) => [
      { __typename: 'Order', id: checkout.orderId },
      { __typename: 'User', id: checkout.customerId },
    ],
  }),
  Order: {
    // Entity resolution is a way in too (`_entities`, a future subgraph's Order reference): the
    // same check as `order(id)`.
    __resolveReference: async (ref, ctx) => {
      if (!ctx.viewer) throw unauthorizedField('Order');
      return visible(ctx, await ctx.loaders.order.load(ref.id));
    },
    // Other services own users and products: answer with references, never a store read.
    customer: (order) => ({ id: order.customerId }),
    // The latest checkout; a time-travel state shows the checkout as it is now only if it had one then.
    checkout: async (order, _, { loaders }) => (order.checkoutId ? loaders.checkout.load(order.id) : null),
    // The events up to the version shown: a time-travel state lists only its past.
    history: async (order, _, { loaders }) => ((await loaders.history.load(order.id)) ?? []).filter((e) => e.version <= order.version),
  },
  OutOfStockLine: {
    product: (line) => ({ id: line.productId }),
  },
  OrderLine: {
    product: (line) => ({ id: line.productId }),
    lineTotal: (line) => line.quantity * line.unitPrice,
  },
  User: {
    __resolveReference: (ref) => ({ id: ref.id }),
    // The user themself or an orders:admin caller (the gateway's `self` policy lets any signed-in
    // caller through): anyone else gets null with UNAUTHORIZED_FIELD_OR_TYPE, before any lookup.
    orders: async (user, { first, after }, { loaders, pageMax, viewer }) => {
      if (!isOwnerOr(viewer, user.id, ORDERS_ADMIN)) throw unauthorizedField('User.orders');
      const page = pageRequest(first, after, pageMax);
      const cursor = parseOrderCursor(page.after, after);
      const rows: OrderModel[] = (await loaders.customerOrders.load({ customerId: user.id, limit: page.first + 1, after: cursor })) ?? [];
      return connectionOf(rows.slice(0, page.first), page.first, rows.length > page.first);
    },
  },
};
