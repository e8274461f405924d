import { createLoader } from '@shop/server';
import type { Telemetry } from '@shop/telemetry';
import type { UserRow, UsersRepository } from './data/repository';

/** Per-request loaders: made in the context factory, so their cache lives as long as one request. */
export function createLoaders(users: UsersRepository, telemetry: Telemetry) {
  return {
    user: createLoader<string, UserRow>(telemetry, 'user', (ids) => users.byIds(ids)),
  };
}

export type Loaders = ReturnType<typeof createLoaders>;
