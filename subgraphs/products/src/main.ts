import { runSubgraph } from '@shop/server';
import { createProducts } from './server';

runSubgraph('products', 4002, createProducts);
