import { z } from 'zod';
import {
  boundedFirst,
  declareChanges,
  notFound,
  pageRequest,
  requireScope,
  subscriptionField,
  toConnection,
  validateInput,
} from '@shop/server';
import type { Context } from './context';
import type { MutationResolvers, Resolvers } from './generated/graphql';

const name = z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters');
const description = z.string().trim().max(5000, 'must be at most 5000 characters');
/**
 * Largest price, in cents ($1,000,000.00). Prices are served as GraphQL Int (32-bit) and summed
 * into order totals, which orders bounds at Int's maximum; a price this size leaves room for
 * a thousand-fold line of an ordinary product and is refused here, where prices enter.
 */
export const MAX_PRICE = 100_000_000;
const price = z.number().int('must be whole cents').min(0, 'must not be negative').max(MAX_PRICE, `must be at most ${MAX_PRICE} cents`);
const weight = z.number().int('must be whole grams').positive('must be more than zero');
const category = z.string().trim().min(1, 'must not be empty').max(100, 'must be at most 100 characters');
const createInput = z.object({ name, description, price, weight, category });
const updateInput = z.object({
  name: name.optional(),
  description: description.optional(),
  price: price.optional(),
  weight: weight.optional(),
  category: category.optional(),
});

// Every catalogue write needs the catalog:write scope (the gateway's @requiresScopes, checked here
// again), before the input is validated or the store is read.
const Mutation = {
  createProduct: (_, { input }, { products, viewer }) => {
    requireScope(viewer, 'catalog:write', 'createProduct');
    return products.create(validateInput(createInput, input));
  },
  updateProduct: async (_, { id, input }, { products, loaders, viewer }) => {
    requireScope(viewer, 'catalog:write', 'updateProduct');
    const product = await products.update(id, validateInput(updateInput, input));
    await loaders.product.invalidate(id, product);
    return product;
  },
  discontinueProduct: async (_, { id }, { products, loaders, viewer }) => {
    requireScope(viewer, 'catalog:write', 'discontinueProduct');
    const product = await products.discontinue(id);
    await loaders.product.invalidate(id, product);
    return product;
  },
} satisfies MutationResolvers;

export const resolvers: Resolvers = {
  Subscription: {
    // The gateway runs it: once to check (the product must exist), then once per event of the
    // product (updated, discontinued, its rating changed): the product as it is when the event is
    // resolved (products keeps no history to rebuild an older state from).
    productChanged: subscriptionField('products', async ({ id }: { id: string }, { loaders }: Context) => {
      const product = await loaders.product.loader.load(id);
      if (!product) throw notFound('Product', id);
      return product;
    }),
  },
  Query: {
    product: (_, { id }, { loaders }) => loaders.product.loader.load(id),
    products: async (_, { first, after, category }, { products, pageMax }) => {
      const page = pageRequest(first, after, pageMax);
      const rows = await products.list(page.first + 1, page.after, category ?? undefined);
      return toConnection(rows, page.first, (p) => p.id);
    },
    topProducts: (_, { first }, { products, pageMax }) => products.list(boundedFirst(first, pageMax, 5)),
  },
  // What each write changed, whatever the client selected: the gateway evicts these.
  Mutation: declareChanges(Mutation, {
    createProduct: (_, product) => [{ __typename: 'Product', id: product.id }],
    updateProduct: ({ id }) => [{ __typename: 'Product', id }],
    discontinueProduct: ({ id }) => [{ __typename: 'Product', id }],
  }),
  Product: {
    __resolveReference: (ref, { loaders }) => loaders.product.loader.load(ref.id),
    averageRating: async (product, _, { loaders }) => {
      const rating = await loaders.rating.load(product.id);
      return rating && rating.reviewCount > 0 ? Math.round((rating.ratingSum / rating.reviewCount) * 100) / 100 : null;
    },
    reviewCount: async (product, _, { loaders }) => (await loaders.rating.load(product.id))?.reviewCount ?? 0,
  },
};
