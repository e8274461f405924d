import { storeBackend } from '@shop/testing';
import { accountsSuite } from './suite';

accountsSuite(storeBackend('postgres', 'accounts'));
