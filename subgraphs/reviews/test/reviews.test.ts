import { storeBackend } from '@shop/testing';
import { reviewsSuite } from './suite';

reviewsSuite(storeBackend('sqlite', 'reviews'));
