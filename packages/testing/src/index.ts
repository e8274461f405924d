import pino from 'pino';
import type { Registry } from 'prom-client';
import { type Telemetry, createTelemetry } from '@shop/telemetry';

export * from './client';
export * from './services';

/** Telemetry with a silent logger; pass a registry to share series across services. */
export function testTelemetry(service: string, registry?: Registry): Telemetry {
  return createTelemetry({ service, logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }), ...(registry ? { registry } : {}) });
}
export * from './redis';
export * from './proxy';

/**
 * Reads until `done` holds or `ms` pass, and returns the last value read: for state that
 * converges asynchronously (events applied by consumers). The caller asserts on the value, so a
 * timeout fails with what was last seen rather than a bare "timed out".
 */
export async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, ms = 10_000, pollMs = 25): Promise<T> {
  const deadline = Date.now() + ms;
  let value = await read();
  while (!done(value) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, pollMs));
    value = await read();
  }
  return value;
}
/** Builders of hostile documents (issue #11), sized by their parameters. */
export * as hostile from './hostile';
export * from './proc';
export * from './verdict';
export * from './operations';
