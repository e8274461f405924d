import { storeBackend } from '@shop/testing';
import { inventorySuite } from './suite';

inventorySuite(storeBackend('sqlite', 'inventory'));
