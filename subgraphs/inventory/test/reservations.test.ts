import { storeBackend } from '@shop/testing';
import { reservationsSuite } from './reservations-suite';

reservationsSuite(storeBackend('sqlite', 'inventory'));
