import { z } from 'zod';
import {
  ADMIN_ROLE,
  DomainError,
  declareChanges,
  hasRole,
  isOwnerOr,
  pageRequest,
  requireIdentity,
  requireOwnerOr,
  toConnection,
  unauthorizedField,
  validateInput,
} from '@shop/server';
import type { UserRow } from './data/repository';
import type { MutationResolvers, Resolvers } from './generated/graphql';

/**
 * The user a session mutation (signUp, signIn, refresh) just signed in as: the caller proved to be
 * this user in this very request (a password, a refresh token) though its request is anonymous.
 */
const SESSION_USER = Symbol('sessionUser');
type SessionUser = UserRow & { [SESSION_USER]?: true };
const asSessionUser = (user: UserRow): SessionUser => ({ ...user, [SESSION_USER]: true });

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
  // Admins only (the gateway's `admin` policy; checked here again): a user with no password.
  createUser: (_, { input }, { users, viewer }) => {
    const caller = requireIdentity(viewer, 'createUser');
    if (!hasRole(caller, ADMIN_ROLE)) throw new DomainError('FORBIDDEN', `createUser is for the ${ADMIN_ROLE} role.`);
    return users.create(validateInput(createInput, input));
  },
  // Ownership before the input and the store: a stranger learns neither whether the id exists nor
  // what the input rules are. An unknown id (the caller's own, or any for an admin) is NOT_FOUND.
  updateUser: async (_, { id, input }, { users, loaders, viewer }) => {
    requireOwnerOr(viewer, id, { role: ADMIN_ROLE }, 'updateUser');
    const user = await users.update(id, validateInput(updateInput, input));
    await loaders.user.invalidate(id, user);
    return user;
  },
  signUp: async (_, args, { sessions }) => {
    const session = await sessions.signUp({
      email: validateInput(email, args.email, 'email'),
      password: validateInput(password, args.password, 'password'),
      name: validateInput(name, args.name, 'name'),
    });
    return { ...session, user: asSessionUser(session.user) };
  },
  signIn: async (_, args, { sessions }) => {
    const session = await sessions.signIn({
      email: validateInput(signInEmail, args.email, 'email'),
      password: validateInput(signInPassword, args.password, 'password'),
    });
    return { ...session, user: asSessionUser(session.user) };
  },
  refresh: async (_, { refreshToken }, { sessions }) => {
    const session = await sessions.refresh(refreshToken);
    return { ...session, user: asSessionUser(session.user) };
  },
  signOut: (_, { refreshToken }, { sessions }) => sessions.signOut(refreshToken),
} satisfies MutationResolvers;

export const resolvers: Resolvers = {
  Query: {
    user: (_, { id }, { loaders }) => loaders.user.loader.load(id),
    me: (_, __, { loaders, viewer }) => loaders.user.loader.load(requireIdentity(viewer, 'me').sub),
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
    // Rows (email included) flow through loaders, caches and entity resolution unchanged: the one
    // check is here, where the email is read, so no path to a User can skip it.
    __resolveReference: (ref, { loaders }) => loaders.user.loader.load(ref.id),
    email: (user: SessionUser, _, { viewer }) => {
      if (user[SESSION_USER] || isOwnerOr(viewer, user.id, { role: ADMIN_ROLE })) return user.email;
      throw unauthorizedField('User.email');
    },
  },
};
