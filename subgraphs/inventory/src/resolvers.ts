import { z } from 'zod';
import { declareChanges, requireScope, subscriptionField, validateInput } from '@shop/server';
import { type ProductRef, type StockLevels, availableOf, shippingEstimate } from './domain';
import type { Context } from './context';
import { STOCK_CHANGED } from './events';
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

/** A product's levels: those its StockChanged carried (stockChanged), else the store's. */
const levelsOf = async (product: ProductRef, loaders: Context['loaders']): Promise<StockLevels | null | undefined> =>
  product.stock ?? (await loaders.stock.load(product.id));

export const resolvers: Resolvers = {
  Subscription: {
    // The gateway runs it: once to check (the product's current levels), then once per StockChanged
    // of the product, with the event signed in the request: the levels it carried, exactly.
    stockChanged: subscriptionField('inventory', (args: { productId: string }, ctx: Context): ProductRef => {
      const id = validateInput(productId, args.productId, 'productId');
      const event = ctx.subscriptionEvent;
      const payload = event?.payload;
      if (
        event?.type === STOCK_CHANGED &&
        event.aggregateId === id &&
        typeof payload?.quantityOnHand === 'number' &&
        typeof payload.quantityReserved === 'number'
      )
        return { id, stock: { onHand: payload.quantityOnHand, reserved: payload.quantityReserved } };
      return { id };
    }),
  },
  // The product's stock fields changed, whatever the client selected (an `id`-less selection too).
  Mutation: declareChanges(Mutation, {
    setStock: (_, product) => [{ __typename: 'Product', id: product.id }],
  }),
  Product: {
    // No store access here: stock is loaded only for the fields a query asks for, so a plan that
    // wants just shippingEstimate costs inventory nothing.
    __resolveReference: (ref) => ref,
    inStock: async (product, _, { loaders }) => availableOf(await levelsOf(product, loaders)) > 0,
    quantityAvailable: async (product, _, { loaders }) => availableOf(await levelsOf(product, loaders)),
    quantityOnHand: async (product, _, { loaders }) => (await levelsOf(product, loaders))?.onHand ?? 0,
    quantityReserved: async (product, _, { loaders }) => (await levelsOf(product, loaders))?.reserved ?? 0,
    // price and weight arrive only through the gateway's @requires; without them there is no estimate.
    shippingEstimate: ({ price, weight }) =>
      typeof price === 'number' && typeof weight === 'number' ? shippingEstimate(price, weight) : null,
  },
};
