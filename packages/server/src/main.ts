import type { Logger } from '@shop/telemetry';

/** Something `runMain` can stop on a signal. */
export interface Stoppable {
  stop(): Promise<void>;
}

/**
 * The shape of every `index.ts`: start, then stop gracefully on SIGINT/SIGTERM (in-flight
 * requests drain). A start-up failure prints its message and exits non-zero.
 */
export function runMain(start: () => Promise<{ stoppable: Stoppable; logger: Logger }>): void {
  start().then(
    ({ stoppable, logger }) => {
      let stopping = false;
      const shutdown = (signal: string) => {
        if (stopping) {
          logger.warn({ signal }, 'second signal: exiting now');
          process.exit(130);
        }
        stopping = true;
        logger.info({ signal }, 'shutting down');
        stoppable.stop().then(
          () => process.exit(0),
          (err: unknown) => {
            logger.error({ err }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.on('SIGINT', () => shutdown('SIGINT'));
      process.on('SIGTERM', () => shutdown('SIGTERM'));
    },
    (err: unknown) => {
      process.stderr.write(`Start-up failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
