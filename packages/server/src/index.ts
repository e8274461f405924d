export * from './http';
export * from './subgraph';
export * from './service';
export * from './errors';
export * from './loaders';
export * from './pagination';
export * from './schema';
export * from './main';
