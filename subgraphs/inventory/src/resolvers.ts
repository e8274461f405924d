import { z } from 'zod';
import { declareChanges, requireScope, validateInput } from '@shop/server';
import { availableOf, shippingEstimate } from './domain';
import type { MutationResolvers, Resolvers } from './generated/graphql';

const productId = z.string().min(1, 'must not be empty').max(100, 'must be at most 100 characters');
const quantity = z.number().int().min(0, 'must not be negative');

const Mutation = {
  setStock: async (_, args, { stock, loaders, viewer }) => {
    // The gateway's @requiresScopes, checked here again, before the input or the store.
    requireScope(viewer, 'inventory:write', 'setStock');
    const row = await stock.set(validateInput(productId, args.productId, 'productId'), validateInput(quantity, args.quantity, 'quantity'));
    // The record just written answers this request's stock fields without another round trip.
    loaders.stock.clear(row.productId).prime(row.productId, row);
    return { id: row.productId };
  },
} satisfies MutationResolvers;

export const resolvers: Resolvers = {
  // The product's stock fields changed, whatever the client selected (an `id`-less selection too).
  Mutation: declareChanges(Mutation, {
    setStock: (_, product) => [{ __typename: 'Product', id: product.id }],
  }),
  Product: {
    // No store access here: stock is loaded only for the fields a query asks for, so a plan that
    // wants just shippingEstimate costs inventory nothing.
    __resolveReference: (ref) => ref,
    inStock: async ({ id }, _, { loaders }) => availableOf(await loaders.stock.load(id)) > 0,
    quantityAvailable: async ({ id }, _, { loaders }) => availableOf(await loaders.stock.load(id)),
    quantityOnHand: async ({ id }, _, { loaders }) => (await loaders.stock.load(id))?.onHand ?? 0,
    quantityReserved: async ({ id }, _, { loaders }) => (await loaders.stock.load(id))?.reserved ?? 0,
    // price and weight arrive only through the gateway's @requires; without them there is no estimate.
    shippingEstimate: ({ price, weight }) =>
      typeof price === 'number' && typeof weight === 'number' ? shippingEstimate(price, weight) : null,
  },
};
