import { runSubgraph } from '@shop/server';
import { createAccounts } from './server';

runSubgraph('accounts', 4001, createAccounts);
