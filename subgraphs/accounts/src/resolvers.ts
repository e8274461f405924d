import { z } from 'zod';
import { declareChanges, pageRequest, toConnection, validateInput } from '@shop/server';
import type { MutationResolvers, Resolvers } from './generated/graphql';

const name = z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters');
const email = z.string().trim().toLowerCase().email('must be an email address').max(320);
const createInput = z.object({ name, email });
// 8 at least (NIST SP 800-63B); at most 200, far below what argon2 accepts, so a long one is refused, not hashed.
const password = z.string().min(8, 'must be at least 8 characters').max(200, 'must be at most 200 characters');
// Signing in normalises the email as sign-up stored it; any password is checked (a short one is just wrong).
const signInEmail = z.string().trim().toLowerCase().max(320, 'must be at most 320 characters');
const signInPassword = z.string().max(200, 'must be at most 200 characters');
const updateInput = z.object({ name: name.optional(), email: email.optional() });

const Mutation = {
  createUser: (_, { input }, { users }) => users.create(validateInput(createInput, input)),
  updateUser: async (_, { id, input }, { users, loaders }) => {
    const user = await users.update(id, validateInput(updateInput, input));
    await loaders.user.invalidate(id, user);
    return user;
  },
  signUp: (_, args, { sessions }) =>
    sessions.signUp({
      email: validateInput(email, args.email, 'email'),
      password: validateInput(password, args.password, 'password'),
      name: validateInput(name, args.name, 'name'),
    }),
  signIn: (_, args, { sessions }) =>
    sessions.signIn({
      email: validateInput(signInEmail, args.email, 'email'),
      password: validateInput(signInPassword, args.password, 'password'),
    }),
  refresh: (_, { refreshToken }, { sessions }) => sessions.refresh(refreshToken),
  signOut: (_, { refreshToken }, { sessions }) => sessions.signOut(refreshToken),
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
    signUp: (_, session) => [{ __typename: 'User', id: session.user.id }],
    // Sessions are no entity's data: nothing a cache holds changes.
    signIn: () => [],
    refresh: () => [],
    signOut: () => [],
  }),
  User: {
    __resolveReference: (ref, { loaders }) => loaders.user.loader.load(ref.id),
  },
};
