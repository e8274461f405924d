import { z } from 'zod';
import { boundedFirst, declareChanges, requireIdentity, validateInput } from '@shop/server';
import type { MutationResolvers, Resolvers } from './generated/graphql';

const addInput = z.object({
  productId: z.string().trim().min(1, 'must not be empty'),
  body: z.string().trim().min(1, 'must not be empty').max(5000, 'must be at most 5000 characters'),
  rating: z.number().int('must be a whole number').min(1, 'must be between 1 and 5').max(5, 'must be between 1 and 5'),
});

const Mutation = {
  // The author is the signed-in caller (the gateway's @authenticated, checked here again), never
  // an id the client names.
  addReview: async (_, { input }, { reviews, viewer }) => {
    const author = requireIdentity(viewer, 'addReview');
    return reviews.add({ ...validateInput(addInput, input), authorId: author.sub });
  },
} satisfies MutationResolvers;

export const resolvers: Resolvers = {
  Query: {
    review: (_, { id }, { loaders }) => loaders.review.load(id),
  },
  // The product's and the author's review lists, and the review.
  Mutation: declareChanges(Mutation, {
    addReview: (_, review) => [
      { __typename: 'Product', id: review.productId },
      { __typename: 'User', id: review.authorId },
      { __typename: 'Review', id: review.id },
    ],
  }),
  Review: {
    __resolveReference: (ref, { loaders }) => loaders.review.load(ref.id),
    // Other services own users and products: answer with references, never a store read.
    author: (review) => ({ id: review.authorId }),
    product: (review) => ({ id: review.productId }),
  },
  User: {
    __resolveReference: (ref) => ({ id: ref.id }),
    reviews: async (user, { first }, { loaders, pageMax }) =>
      (await loaders.reviewsByAuthor.load({ id: user.id, first: boundedFirst(first, pageMax) })) ?? [],
  },
  Product: {
    __resolveReference: (ref) => ({ id: ref.id }),
    reviews: async (product, { first }, { loaders, pageMax }) =>
      (await loaders.reviewsByProduct.load({ id: product.id, first: boundedFirst(first, pageMax) })) ?? [],
  },
};
