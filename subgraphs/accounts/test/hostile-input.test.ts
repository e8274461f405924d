import { storeBackend } from '@shop/testing';
import { hostileInputSuite } from './hostile-input-suite';

hostileInputSuite(storeBackend('sqlite', 'accounts_hostile'));
