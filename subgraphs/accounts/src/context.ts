import type { Logger } from '@shop/telemetry';
import type { UsersRepository } from './data/repository';
import type { Loaders } from './loaders';

/** What every accounts resolver receives. */
export interface Context {
  loaders: Loaders;
  users: UsersRepository;
  logger: Logger;
  /** Largest `first` a client may ask for. */
  pageMax: number;
}
