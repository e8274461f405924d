import { storeBackend } from '@shop/testing';
import { signInSuite } from './sign-in-suite';

// Real PostgreSQL: `npm run token` is pointed at the same database with ACCOUNTS_DATABASE_URL.
signInSuite(storeBackend('postgres', 'accounts_sign_in'), (location) => ({ ACCOUNTS_DATABASE_URL: location.postgresUrl! }));
