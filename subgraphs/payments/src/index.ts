// The payments process. Tracing starts first (when OTEL_* asks for it) so that its instrumentations
// see pg, redis, amqplib and http load; main.ts is the process itself.
import { startTraced } from '@shop/tracing';

startTraced('payments', () => import('./main'));
