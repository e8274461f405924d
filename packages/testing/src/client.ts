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

export function graphqlClient(url: string): GraphQLClient {
  const send = async (body: string, headers: Record<string, string>) => {
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
