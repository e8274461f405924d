import { runSubgraph } from '@shop/server';
import { createOrders } from './server';

runSubgraph('orders', 4005, createOrders);
