import { IDENTITY_HEADER, SIGNATURE_HEADER, signatureHeader } from '@shop/server';
import { type Layer, bodyOf, withHeader } from './layer';

/**
 * Signs every request to a subgraph that trusts only the gateway (`SUBGRAPH_SECRET`): the
 * caller's identity goes in `x-gateway-identity`, and `x-gateway-signature` carries the time and
 * an HMAC-SHA256 over method, path, time, identity and the body as sent. The last layer, below
 * retries: each attempt is signed when it is sent, so no signature goes stale in a queue above.
 * `url`: the subgraph's routing URL, whose path (and query) the subgraph sees.
 */
export function signLayer(secret: string, url: string): Layer {
  const { pathname, search } = new URL(url);
  const path = `${pathname}${search}`;
  return (request, next) => {
    const body = bodyOf(request);
    const identity = request.identity ?? '';
    const headers = withHeader(
      request.headers,
      SIGNATURE_HEADER,
      signatureHeader(secret, { method: 'POST', path, timestamp: Date.now(), identity, body }),
    );
    if (identity !== '') headers[IDENTITY_HEADER] = identity;
    return next({ ...request, headers, body });
  };
}
