import { runSubgraph } from '@shop/server';
import { createReviews } from './server';

runSubgraph('reviews', 4004, createReviews);
