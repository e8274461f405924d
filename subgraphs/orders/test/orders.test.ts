import { storeBackend } from '@shop/testing';
import { ordersSuite } from './suite';

// The same behaviour on one shard and on four (SQLite in memory).
ordersSuite(storeBackend('sqlite', 'orders'), 1);
ordersSuite(storeBackend('sqlite', 'orders'), 4);
ordersSuite(storeBackend('sqlite', 'orders'), 4, { mapApart: true });
