import { runSubgraph } from '@shop/server';
import { createInventory } from './server';

runSubgraph('inventory', 4003, createInventory);
