import { storeBackend } from '@shop/testing';
import { outboxContract } from './outbox-suite';

outboxContract(storeBackend('postgres', 'outbox'));
