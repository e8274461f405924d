import { z } from 'zod';
import { declareChanges, pageRequest, toConnection, validateInput } from '@shop/server';
import type { MutationResolvers, Resolvers } from './generated/graphql';

const name = z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters');
const email = z.string().trim().toLowerCase().email('must be an email address').max(320);
const createInput = z.object({ name, email });
const updateInput = z.object({ name: name.optional(), email: email.optional() });

const Mutation = {
  createUser: (_, { input }, { users }) => users.create(validateInput(createInput, input)),
  updateUser: async (_, { id, input }, { users, loaders }) => {
    const user = await users.update(id, validateInput(updateInput, input));
    await loaders.user.invalidate(id, user);
    return user;
  },
} satisfies MutationResolvers;

export const resolvers: Resolvers = {
  Query: {
    user: (_, { id }, { loaders }) => loaders.user.loader.load(id),
    users: async (_, { first, after }, { users, pageMax }) => {
      const page = pageRequest(first, after, pageMax);
      const rows = await users.list(page.first + 1, page.after);
      return toConnection(rows, page.first, (u) => u.id);
    },
  },
  // What each write changed, whatever the client selected: the gateway evicts these.
  Mutation: declareChanges(Mutation, {
    createUser: (_, user) => [{ __typename: 'User', id: user.id }],
    updateUser: ({ id }) => [{ __typename: 'User', id }],
  }),
  User: {
    __resolveReference: (ref, { loaders }) => loaders.user.loader.load(ref.id),
  },
};
