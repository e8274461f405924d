import { storeBackend } from '@shop/testing';
import { storeContract } from './suite';

storeContract(storeBackend('sqlite', 'store'));
