import { storeBackend } from '@shop/testing';
import { rebuildSuite } from './rebuild-suite';

rebuildSuite(storeBackend('sqlite', 'orders_rebuild'));
