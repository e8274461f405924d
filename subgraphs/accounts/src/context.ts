import type { Identity } from '@shop/server';
import type { Logger } from '@shop/telemetry';
import type { UsersRepository } from './data/repository';
import type { Loaders } from './loaders';
import type { Sessions } from './auth/sessions';

/** What every accounts resolver receives. */
export interface Context {
  loaders: Loaders;
  users: UsersRepository;
  /** Sign-up, sign-in, refresh and sign-out. */
  sessions: Sessions;
  logger: Logger;
  /** Largest `first` a client may ask for. */
  pageMax: number;
  /** The caller the gateway signed for; undefined when anonymous. Resolvers check ownership with it. */
  viewer: Identity | undefined;
}
