import { join } from 'node:path';
import type { ServerResponse } from 'node:http';
import { type AccountsAuthConfig, loadAccountsAuthConfig } from '@shop/config';
import {
  type EventSink,
  type StoreLocation,
  type StoreSubgraph,
  type SubgraphFactoryOptions,
  defineStoreSubgraph,
  loadTypeDefs,
} from '@shop/server';
import { eventMigrations } from '@shop/events';
import type { SeedSizes } from '@shop/seed';
import { type Store, openStore } from '@shop/store';
import type { Telemetry } from '@shop/telemetry';
import type { Context } from './context';
import { migrations } from './data/migrations';
import { type AccountsDB, UsersRepository } from './data/repository';
import { SessionsRepository } from './data/sessions';
import { SigningKeysRepository } from './data/keys';
import { DEV_PASSWORD, hashPassword } from './auth/passwords';
import { Sessions } from './auth/sessions';
import { TokenIssuer } from './auth/tokens';
import { createLoaders } from './loaders';
import { resolvers } from './resolvers';

export { DEV_PASSWORD } from './auth/passwords';
export { ROLES, SCOPES, type Claims, type Role, type Scope, parseRoles, scopesFor } from './auth/claims';
export { SIGNING_ALG, TokenIssuer, type Jwks } from './auth/tokens';

export const typeDefs = loadTypeDefs(join(__dirname, 'schema.graphql'));

/** Where accounts publishes its public keys. */
export const JWKS_PATH = '/.well-known/jwks.json';

/** Sign-in settings and, for tests, the clock tokens and keys are dated by. */
export interface AccountsAuthOptions extends AccountsAuthConfig {
  /** @default Date.now */
  now?: () => number;
}

/** What accounts' factory takes: every subgraph's options plus its sign-in settings. */
export interface AccountsOptions extends SubgraphFactoryOptions {
  /** @default loadAccountsAuthConfig({}): the defaults; `index.ts` passes the environment's. */
  auth?: Partial<AccountsAuthOptions>;
}

/** accounts' data: users, their sessions, the signing keys, and the token issuer over them. */
export class AccountsRepository {
  readonly users: UsersRepository;
  readonly sessions: SessionsRepository;
  readonly issuer: TokenIssuer;

  constructor(store: Store<AccountsDB>, events: EventSink, auth: AccountsAuthOptions) {
    const now = auth.now ?? Date.now;
    // One argon2id hash for every seed user, made only when the store is seeded.
    this.users = new UsersRepository(store, events, () => hashPassword(DEV_PASSWORD));
    this.sessions = new SessionsRepository(store, now);
    this.issuer = new TokenIssuer(new SigningKeysRepository(store), auth, now);
  }

  seed(sizes: SeedSizes): Promise<number> {
    return this.users.seed(sizes);
  }
}

const authSettings = (given: Partial<AccountsAuthOptions> | undefined): AccountsAuthOptions => ({
  ...loadAccountsAuthConfig({}),
  ...given,
});

function sendJwks(res: ServerResponse, body: string): void {
  // Short-lived in caches: a verifier that meets an unknown kid fetches again anyway.
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'public, max-age=60' }).end(body);
}

/** The accounts subgraph, with its repository: the embedded stack signs test tokens with its issuer. */
export interface AccountsSubgraph extends StoreSubgraph<AccountsDB> {
  readonly accounts: AccountsRepository;
}

/** Builds the accounts subgraph (owner of `User`, sign-in and its keys) on its own store. Does not listen. */
export async function createAccounts(options: AccountsOptions): Promise<AccountsSubgraph> {
  const auth = authSettings(options.auth);
  let accounts: AccountsRepository | undefined;
  const subgraph = await defineStoreSubgraph<AccountsDB, AccountsRepository, Context>({
    typeDefs,
    resolvers,
    migrations,
    repository: (store, events) => (accounts = new AccountsRepository(store, events, auth)),
    context: ({ repository, telemetry, logger, pageMax, hot, identity }) => ({
      users: repository.users,
      sessions: new Sessions(repository.users, repository.sessions, repository.issuer),
      loaders: createLoaders(repository.users, telemetry, hot),
      logger,
      pageMax,
      viewer: identity,
    }),
    routes: (repository) => ({
      [JWKS_PATH]: async (req, res) => {
        if (req.method !== 'GET' && req.method !== 'HEAD') return false;
        sendJwks(res, JSON.stringify(await repository.issuer.jwks()));
      },
    }),
  })(options);
  return Object.assign(subgraph, { accounts: accounts! });
}

/**
 * accounts' store opened the way the service opens it (migrated, not seeded), for tools that sign
 * as accounts does (`npm run token`).
 */
export async function openAccountsRepository(options: {
  telemetry: Telemetry;
  store: StoreLocation;
  auth?: Partial<AccountsAuthOptions>;
}): Promise<{ accounts: AccountsRepository; close: () => Promise<void> }> {
  const store = await openStore<AccountsDB>({ service: options.telemetry.service, telemetry: options.telemetry, ...options.store });
  try {
    await store.migrate({ ...eventMigrations, ...migrations });
  } catch (err) {
    await store.close();
    throw err;
  }
  const accounts = new AccountsRepository(store, { source: options.telemetry.service, committed: () => {} }, authSettings(options.auth));
  return { accounts, close: () => store.close() };
}
