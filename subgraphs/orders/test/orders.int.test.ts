import { storeBackend } from '@shop/testing';
import { ordersSuite } from './suite';

// The same behaviour on one shard and on four (a PostgreSQL database each).
ordersSuite(storeBackend('postgres', 'orders'), 1);
ordersSuite(storeBackend('postgres', 'orders_sharded'), 4);
