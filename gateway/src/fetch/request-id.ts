import type { Layer } from './layer';

/**
 * Propagates the client request's id to the subgraph as `x-request-id`, so one id follows a
 * request through every service's logs.
 */
export const requestIdLayer: Layer = (request, next) =>
  request.requestId === undefined
    ? next(request)
    : // Object.assign, not `{ ...headers, 'x-request-id': id }`: a spread followed by a new key is V8's slow path.
      next({ ...request, headers: Object.assign({}, request.headers, { 'x-request-id': request.requestId }) });
