// Drives a gateway with autocannon for a fixed time and measures what comes back; in the write
// mix a checker writes and reads back through the same gateway meanwhile.
import autocannon, { type Request } from 'autocannon';
import {
  ADD_REVIEW,
  type BenchTokens,
  CHECK_QUERY,
  type GraphQLRequest,
  UPDATE_PRODUCT,
  type WriteSlice,
  bearer,
  tokenOf,
} from './workloads';
import type { RoundResult, StaleCheck } from './types';

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] as number;
}

const round1 = (n: number) => Math.round(n * 10) / 10;

export interface DriveOptions {
  /** The gateway's origin, e.g. http://127.0.0.1:4000 (requests carry the path). */
  origin: string;
  requests: Request[];
  connections: number;
  durationS: number;
}

/** One autocannon run; latencies are kept per response, so every percentile is exact. */
export async function drive(options: DriveOptions): Promise<RoundResult> {
  const latencies: number[] = [];
  let graphqlErrors = 0;
  const options_: autocannon.Options = {
    url: options.origin,
    connections: options.connections,
    duration: options.durationS,
    headers: { 'content-type': 'application/json' },
    requests: options.requests.map((request) => ({
      ...request,
      onResponse: (status: number, body: string) => {
        if (status < 300 && body.includes('"errors"')) graphqlErrors += 1;
      },
    })),
  };
  // The callback form returns the instance, whose 'response' events carry every latency.
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(options_, (err, done) =>
      err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(done),
    );
    instance.on('response', (_client, _status, _bytes, responseTime) => {
      latencies.push(responseTime);
    });
  });
  latencies.sort((a, b) => a - b);
  const durationS = result.duration;
  return {
    durationS,
    requests: latencies.length,
    sent: Math.max(result.requests.sent, latencies.length),
    rps: round1(latencies.length / durationS),
    p50: round1(percentile(latencies, 50)),
    p95: round1(percentile(latencies, 95)),
    p99: round1(percentile(latencies, 99)),
    max: round1(latencies.at(-1) ?? 0),
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    graphqlErrors,
  };
}

/** Sends one GraphQL request and returns its data; throws on errors. */
export async function post<T>(url: string, request: GraphQLRequest, headers: Record<string, string> = {}): Promise<T> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(request),
  });
  const body = (await res.json()) as { data?: T; errors?: Array<{ message: string }> };
  if (!body.data || body.errors?.length)
    throw new Error(`${request.operationName ?? 'request'} failed (HTTP ${res.status}): ${body.errors?.[0]?.message ?? 'no data'}`);
  return body.data;
}

interface CheckData {
  product: { id: string; price: number; shippingEstimate: number | null; reviews: Array<{ id: string }> } | null;
  review: { id: string; product: { id: string; price: number } } | null;
}

/**
 * Until `signal` aborts: write through the gateway, read straight back through it, and check the
 * read shows the write. Two kinds of write: a new price (the product's own fields, and the same
 * product reached as an entity through a review) and a new review (the product's review list,
 * which reviews tells the gateway to invalidate). The writes are signed in (the admin's price, the
 * checker's own review); the reads are anonymous. Returns the tally and the client requests sent.
 */
export async function checkStaleness(
  url: string,
  slice: WriteSlice,
  tokens: BenchTokens,
  signal: AbortSignal,
): Promise<StaleCheck & { requests: number }> {
  const tally: StaleCheck & { requests: number } = { checks: 0, stale: 0, requests: 0 };
  const read = async () => {
    tally.requests += 1;
    return post<CheckData>(url, {
      query: CHECK_QUERY,
      operationName: 'Check',
      variables: { product: slice.checkProduct, review: slice.checkReview },
    });
  };
  const verdict = (ok: boolean, what: string) => {
    tally.checks += 1;
    if (!ok) {
      tally.stale += 1;
      tally.example ??= what;
    }
  };
  while (!signal.aborted) {
    try {
      const price = 100 + Math.floor(Math.random() * 200_000);
      tally.requests += 1;
      await post(
        url,
        { query: UPDATE_PRODUCT, operationName: 'UpdateProduct', variables: { id: slice.checkProduct, price } },
        bearer(tokens.admin),
      );
      const afterPrice = await read();
      verdict(
        afterPrice.product?.price === price && afterPrice.review?.product.price === price,
        `after updateProduct(price: ${price}) read product.price ${afterPrice.product?.price}, review.product.price ${afterPrice.review?.product.price}`,
      );
      tally.requests += 1;
      const added = await post<{ addReview: { id: string } }>(
        url,
        {
          query: ADD_REVIEW,
          operationName: 'AddReview',
          variables: { input: { productId: slice.checkProduct, body: 'staleness check', rating: 5 } },
        },
        bearer(tokenOf(tokens, slice.checkUser)),
      );
      const afterReview = await read();
      verdict(
        afterReview.product?.reviews[0]?.id === added.addReview.id,
        `after addReview ${added.addReview.id} read newest review ${afterReview.product?.reviews[0]?.id}`,
      );
    } catch (err) {
      // A failed request under load is counted by the load generator's numbers, not as staleness.
      if (signal.aborted) break;
      tally.example ??= `checker request failed: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
  return tally;
}
