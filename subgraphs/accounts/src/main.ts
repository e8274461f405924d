import { loadAccountsAuthConfig } from '@shop/config';
import { runSubgraph } from '@shop/server';
import { createAccounts } from './server';

// accounts' own settings (token lifetimes, issuer, audience) come with the shared ones.
runSubgraph('accounts', 4001, (options) => createAccounts({ ...options, auth: loadAccountsAuthConfig() }));
