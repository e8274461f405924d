export * from './store';
export * from './projections';
