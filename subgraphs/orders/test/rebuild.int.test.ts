import { storeBackend } from '@shop/testing';
import { rebuildSuite } from './rebuild-suite';

rebuildSuite(storeBackend('postgres', 'orders_rebuild'));
