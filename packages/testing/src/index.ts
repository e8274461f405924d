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
