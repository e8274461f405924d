import type { Identity } from '@shop/server';
import type { Logger } from '@shop/telemetry';
import type { Loaders } from './loaders';

/** What every payments resolver receives. */
export interface Context {
  loaders: Loaders;
  logger: Logger;
  /** The caller the gateway signed for; undefined when anonymous. A payment is its customer's, or an orders:admin caller's, to read. */
  viewer: Identity | undefined;
}
