import { loadInventoryConfig } from '@shop/config';
import { runSubgraph } from '@shop/server';
import { createInventory } from './server';

// inventory's own setting (the reservation sweeper's pace) comes with the shared ones.
runSubgraph('inventory', 4003, (options) =>
  createInventory({ ...options, reservationSweepIntervalMs: loadInventoryConfig().sweepIntervalMs }),
);
