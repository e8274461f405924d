import { loadPaymentsProviderConfig } from '@shop/config';
import { runSubgraph } from '@shop/server';
import { createPayments } from './server';

// payments' own settings (the PSP_* variables) come with the shared ones.
runSubgraph('payments', 4006, (options) => createPayments({ ...options, psp: loadPaymentsProviderConfig() }));
