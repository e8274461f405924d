import { storeBackend } from '@shop/testing';
import { paymentsSuite } from './suite';

paymentsSuite(storeBackend('sqlite', 'payments'));
