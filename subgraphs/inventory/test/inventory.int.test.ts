import { storeBackend } from '@shop/testing';
import { inventorySuite } from './suite';

inventorySuite(storeBackend('postgres', 'inventory'));
