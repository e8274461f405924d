/** A GraphQL response as a test sees it. */
export interface GraphQLResponse<T = Record<string, unknown>> {
  status: number;
  data?: T | null;
  errors?: Array<{ message: string; path?: Array<string | number>; extensions?: { code?: string; [k: string]: unknown } }>;
  headers: Headers;
}

/** A minimal GraphQL-over-HTTP client for tests. */
export interface GraphQLClient {
  url: string;
  query<T = Record<string, unknown>>(
    query: string,
    variables?: Record<string, unknown>,
    headers?: Record<string, string>,
  ): Promise<GraphQLResponse<T>>;
  /** Sends a raw body, for malformed-request tests. */
  raw(body: string, headers?: Record<string, string>): Promise<GraphQLResponse>;
}

/** What a client adds to every request besides its own headers. */
export interface GraphQLClientOptions {
  /**
   * Headers computed from each request's exact body: a subgraph's test signs as the gateway does,
   * e.g. `(body) => gatewayHeaders(secret, url, body, { identity })` from @shop/server (this
   * package depends on none of the packages it tests, so the caller brings the signer).
   */
  sign?: (body: string) => Record<string, string>;
  /** Sent with every request, e.g. `{ authorization: 'Bearer ...' }`; a request's own headers win. */
  headers?: Record<string, string>;
}

export function graphqlClient(url: string, options: GraphQLClientOptions = {}): GraphQLClient {
  const send = async (body: string, given: Record<string, string>) => {
    const headers = { ...options.headers, ...options.sign?.(body), ...given };
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    const text = await res.text();
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      json = { errors: [{ message: `non-JSON response: ${text.slice(0, 200)}` }] };
    }
    return { status: res.status, headers: res.headers, ...json };
  };
  return {
    url,
    query: async (query, variables, headers = {}) => await send(JSON.stringify({ query, variables }), headers),
    raw: async (body, headers = {}) => await send(body, headers),
  };
}

/** The header that sends an access token. */
export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

/**
 * Signs in through a gateway (accounts' `signIn`) and returns the access token: for tests that run
 * the stack as processes, where no issuer is at hand to sign one (the embedded stack's `token`).
 */
export async function signIn(gatewayUrl: string, email: string, password: string): Promise<string> {
  const res = await graphqlClient(gatewayUrl).query<{ signIn: { accessToken: string } }>(
    'mutation SignIn($email: String!, $password: String!) { signIn(email: $email, password: $password) { accessToken } }',
    { email, password },
  );
  const token = res.data?.signIn.accessToken;
  if (!token) throw new Error(`signIn as ${email} through ${gatewayUrl} failed: HTTP ${res.status} ${JSON.stringify(res.errors)}`);
  return token;
}
