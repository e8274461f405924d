export * from './types';
export * from './outbox';
export * from './inbox';
