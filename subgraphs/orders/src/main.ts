import { loadCheckoutConfig, loadShardingConfig } from '@shop/config';
import { runSubgraph } from '@shop/server';
import { createOrders } from './server';

// The checkout saga's deadlines and hold come from CHECKOUT_* (read here, as the embedded stack does).
// ORDERS_SHARDS and the map's timings likewise.
runSubgraph('orders', 4005, (options) => createOrders({ ...options, checkout: loadCheckoutConfig(), ...loadShardingConfig() }));
