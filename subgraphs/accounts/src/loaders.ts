import { type HotCache, byIdLoader } from '@shop/server';
import type { Telemetry } from '@shop/telemetry';
import type { UserRow, UsersRepository } from './data/repository';

/**
 * Per-request loaders, made in the context factory. A user by id is a hot read: DataLoader
 * batches a request's lookups, the shared cache answers across requests, the store gets misses.
 */
export function createLoaders(users: UsersRepository, telemetry: Telemetry, hot: HotCache | undefined) {
  return {
    user: byIdLoader<UserRow>(telemetry, 'user', hot, (ids) => users.byIds(ids)),
  };
}

export type Loaders = ReturnType<typeof createLoaders>;
