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
 * Reads until `done` holds, and returns the value that satisfied it: for state that converges
 * asynchronously (events applied by consumers). When `ms` pass first it throws, with the last
 * value read in the message: a wait is an assertion, whether or not the caller asserts on the
 * value (before, it returned the last value, and a caller that did not check it went on as if
 * the state had converged).
 */
export async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, ms = 10_000, pollMs = 25): Promise<T> {
  const deadline = Date.now() + ms;
  let value = await read();
  while (!done(value)) {
    if (Date.now() >= deadline) {
      let seen: string;
      try {
        seen = JSON.stringify(value) ?? String(value);
      } catch {
        seen = String(value);
      }
      throw new Error(`eventually: not done after ${ms} ms; last value read: ${seen.length > 2000 ? `${seen.slice(0, 2000)}…` : seen}`);
    }
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
