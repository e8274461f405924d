import { storeBackend } from '@shop/testing';
import { eventStoreContract } from './suite';

eventStoreContract(storeBackend('sqlite', 'eventstore'));
