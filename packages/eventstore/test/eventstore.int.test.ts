import { storeBackend } from '@shop/testing';
import { eventStoreContract } from './suite';

eventStoreContract(storeBackend('postgres', 'eventstore'));
