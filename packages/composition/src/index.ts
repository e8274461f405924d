// The public face of @shop/composition: composing a supergraph.yaml, and the client operations'
// trusted-documents manifest.
export * from './supergraph';
export * from './manifest';
export * from './api-schema';
