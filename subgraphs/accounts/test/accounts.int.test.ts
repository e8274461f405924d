import { services, storeBackend } from '@shop/testing';
import { accountsSuite } from './suite';

// Real PostgreSQL for the store and real Redis for the hot-read cache.
accountsSuite(storeBackend('postgres', 'accounts'), () => services.redis);
