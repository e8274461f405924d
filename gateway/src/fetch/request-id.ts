import { type Layer, withHeader } from './layer';

/**
 * Propagates the client request's id to the subgraph as `x-request-id`, so one id follows a
 * request through every service's logs.
 */
export const requestIdLayer: Layer = (request, next) =>
  request.requestId === undefined
    ? next(request)
    : next({ ...request, headers: withHeader(request.headers, 'x-request-id', request.requestId) });
