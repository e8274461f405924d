import { type Telemetry, sharedCounter } from '@shop/telemetry';
import type { ReservationOutcome } from './domain';

/**
 * `inventory_reservations_total{service, outcome}`: reservations made (`reserved`), refused
 * (`out_of_stock`), and moved on (`committed`, `released`, `expired`, `restocked`). A command
 * seen again changes nothing and counts nothing. Counted as the change is made: a consumer's
 * transaction that then fails (rare: a batch retried event by event) counts it once more.
 */
export function reservationMetrics(telemetry: Telemetry): (outcome: ReservationOutcome) => void {
  const counter = sharedCounter(
    telemetry.registry,
    'inventory_reservations_total',
    'Stock reservations made, refused (out_of_stock) and moved on (committed, released, expired, restocked)',
    ['service', 'outcome'],
  );
  return (outcome) => counter.inc({ service: telemetry.service, outcome });
}
