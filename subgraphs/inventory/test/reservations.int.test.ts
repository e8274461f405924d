import { storeBackend } from '@shop/testing';
import { reservationsSuite } from './reservations-suite';

reservationsSuite(storeBackend('postgres', 'inventory'));
