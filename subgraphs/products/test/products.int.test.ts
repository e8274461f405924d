import { storeBackend } from '@shop/testing';
import { productsSuite } from './suite';

productsSuite(storeBackend('postgres', 'products'));
