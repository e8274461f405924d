export * from './store';
export * from './projections';
export * from './slots';
