// The gateway process. Tracing starts first (when OTEL_* asks for it) so that its
// instrumentations see http, undici, redis and amqplib load; main.ts is the process itself.
import { startTraced } from '@shop/tracing';

startTraced('gateway', () => import('./main'));
