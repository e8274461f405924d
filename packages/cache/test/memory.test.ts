import { cacheContract } from './suite';

cacheContract('memory', () => undefined);
