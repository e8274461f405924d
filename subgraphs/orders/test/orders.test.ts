import { storeBackend } from '@shop/testing';
import { ordersSuite } from './suite';

ordersSuite(storeBackend('sqlite', 'orders'));
