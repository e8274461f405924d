// The workloads: what each client request is, and the fixed requests every gateway must answer
// identically (the golden diff).
import type { Request } from 'autocannon';
import type { WorkloadName } from './types';

export type { WorkloadName };

const FRAGMENTS = /* GraphQL */ `
  fragment User on User {
    id
    name
    createdAt
  }
  fragment Review on Review {
    id
    body
  }
  fragment Product on Product {
    id
    name
    price
    weight
    inStock
    shippingEstimate
  }
`;

/**
 * List sizes of the deep query: the root lists and every nested review list. With 3 and 2 one
 * response holds 3 users and 3 products, 42 reviews and 36 nested products (about 12 KB).
 */
export const DEEP_ROOT = 3;
export const DEEP_NESTED = 2;

const USER_SUBTREE = `...User
        reviews(first: ${DEEP_NESTED}) {
          ...Review
          product {
            ...Product
            reviews(first: ${DEEP_NESTED}) {
              ...Review
              author { ...User reviews(first: ${DEEP_NESTED}) { ...Review product { ...Product } } }
            }
          }
        }`;

const PRODUCT_SUBTREE = `...Product
      reviews(first: ${DEEP_NESTED}) {
        ...Review
        author { ...User reviews(first: ${DEEP_NESTED}) { ...Review product { ...Product } } }
      }`;

/**
 * The Guild's gateway benchmark query (graphql-hive/graphql-gateways-benchmark), on our schema:
 * `users` is a connection here, `upc` is `id`, `username` is `createdAt` (a public string: the
 * email is the user's own since #14, null with an error for anyone else), and every list is
 * bounded by `first`. Four subgraphs: accounts → reviews → products → inventory (shippingEstimate
 * @requires price and weight) and back.
 */
export const DEEP_QUERY = `query TestQuery {
  users(first: ${DEEP_ROOT}) { edges { node {
        ${USER_SUBTREE}
  } } }
  topProducts(first: ${DEEP_ROOT}) {
      ${PRODUCT_SUBTREE}
  }
}
${FRAGMENTS}`;

/** The deep query at a random page of users and of products: whole-response caches never repeat. */
export const VARIED_QUERY = `query Varied($users: String, $products: String) {
  users(first: ${DEEP_ROOT}, after: $users) { edges { node {
        ${USER_SUBTREE}
  } } }
  products(first: ${DEEP_ROOT}, after: $products) { edges { node {
      ${PRODUCT_SUBTREE}
  } } }
}
${FRAGMENTS}`;

/**
 * One cheap field from one subgraph: the per-request overhead of the gateway. The id is random
 * per request, so concurrent requests are not identical and in-flight sharing cannot fold them.
 */
export const SMALL_QUERY = 'query Small($id: ID!) { product(id: $id) { name } }';

/** The reads of the write mix: entities the writes change, through several subgraphs. */
export const READ_QUERY = `query Read($product: ID!, $user: ID!) {
  product(id: $product) { ...Product reviews(first: 3) { ...Review rating author { ...User } } }
  user(id: $user) { ...User reviews(first: 3) { ...Review rating product { ...Product } } }
}
${FRAGMENTS}`;

export const UPDATE_PRODUCT = `mutation UpdateProduct($id: ID!, $price: Int!) {
  updateProduct(id: $id, input: { price: $price }) { id price }
}`;

export const ADD_REVIEW = `mutation AddReview($input: AddReviewInput!) {
  addReview(input: $input) { id rating product { id } author { id } }
}`;

/** What a read after a write must show: the written price, the new review first. */
export const CHECK_QUERY = `query Check($product: ID!, $review: ID!) {
  product(id: $product) { id price shippingEstimate reviews(first: 1) { id } }
  review(id: $review) { id product { id price } }
}`;

/** The shape of a GraphQL request body. */
export interface GraphQLRequest {
  query: string;
  variables?: Record<string, unknown>;
  operationName?: string;
}

/**
 * Access tokens for the write mix's signed-in callers (#14): catalogue writes need catalog:write,
 * a review is by its caller. Only ours verifies them and passes the caller on (signed), so the
 * write mix is measured through ours alone; every read stays anonymous.
 */
export interface BenchTokens {
  /** The seeded admin: every scope. */
  admin: string;
  /** By user id: each write slice's users and checkers, as customers. */
  users: Record<string, string>;
}

/** Cursors and ids fetched once from the running subgraphs, and the write mix's tokens. */
export interface WorkloadData {
  userCursors: string[];
  productCursors: string[];
  tokens: BenchTokens;
}

/**
 * The entities one gateway's write mix reads and writes. Each gateway of a cell gets its own
 * slice, so one gateway's writes never make another gateway's cache stale behind its back.
 */
export interface WriteSlice {
  products: string[];
  users: string[];
  /** The staleness checker's own product, and a review of it that never changes product. */
  checkProduct: string;
  checkUser: string;
  checkReview: string;
}

const pad = (prefix: string, n: number) => `${prefix}${String(n).padStart(5, '0')}`;

/** The staleness checker's product and a review of it (which never changes product). */
export interface CheckTarget {
  product: string;
  review: string;
}

/** The users of write slice `index` (the reviews' authors), and its checker's. */
export function sliceUsers(index: number): { users: string[]; checkUser: string } {
  const start = 901 + index * 30;
  return { users: Array.from({ length: 30 }, (_, i) => pad('u', start + i)), checkUser: pad('u', 995 + index) };
}

/** Slice `index` of the write mix: 30 products and users from p00901/u00901 on, and its checker's own product. */
export function writeSlice(index: number, check: CheckTarget): WriteSlice {
  const start = 901 + index * 30;
  const { users, checkUser } = sliceUsers(index);
  return {
    products: Array.from({ length: 30 }, (_, i) => pad('p', start + i)),
    users,
    checkProduct: check.product,
    checkUser,
    checkReview: check.review,
  };
}

/** Products no write slice touches (slices end at p00990): the staleness checkers pick theirs here. */
export const CHECK_CANDIDATES = Array.from({ length: 9 }, (_, i) => pad('p', 991 + i));

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)] as T;

const json = (request: GraphQLRequest) => JSON.stringify(request);

/** The header that sends a token. */
export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

/** A user's token from the set the bench issued; a missing one is the bench's own mistake. */
export function tokenOf(tokens: BenchTokens, userId: string): string {
  const token = tokens.users[userId];
  if (!token) throw new Error(`the bench issued no token for ${userId}`);
  return token;
}

/** The autocannon request list of a workload, for one gateway. */
export function loadRequests(workload: WorkloadName, data: WorkloadData, slice: WriteSlice): Request[] {
  switch (workload) {
    case 'deep':
      return [{ method: 'POST', path: '/graphql', body: json({ query: DEEP_QUERY, operationName: 'TestQuery' }) }];
    case 'small': {
      const head = `{"operationName":"Small","query":${JSON.stringify(SMALL_QUERY)},"variables":{"id":"p`;
      return [
        {
          method: 'POST',
          path: '/graphql',
          setupRequest: (request) => ({ ...request, body: `${head}${String(1 + Math.floor(Math.random() * 1000)).padStart(5, '0')}"}}` }),
        },
      ];
    }
    case 'varied': {
      // Only the variables change; the rest of the body is built once.
      const head = `{"operationName":"Varied","query":${JSON.stringify(VARIED_QUERY)},"variables":`;
      return [
        {
          method: 'POST',
          path: '/graphql',
          setupRequest: (request) => ({
            ...request,
            body: `${head}${JSON.stringify({ users: pick(data.userCursors), products: pick(data.productCursors) })}}`,
          }),
        },
      ];
    }
    case 'write': {
      const readHead = `{"operationName":"Read","query":${JSON.stringify(READ_QUERY)},"variables":`;
      const updateHead = `{"operationName":"UpdateProduct","query":${JSON.stringify(UPDATE_PRODUCT)},"variables":`;
      const addHead = `{"operationName":"AddReview","query":${JSON.stringify(ADD_REVIEW)},"variables":`;
      return [
        {
          method: 'POST',
          path: '/graphql',
          setupRequest: (request) => {
            const roll = Math.random();
            let body: string;
            // Writes are signed in (the admin's catalogue write; a review by its author); reads are anonymous.
            let headers: Record<string, string> = {};
            if (roll < 0.05) {
              body = `${updateHead}${JSON.stringify({ id: pick(slice.products), price: 100 + Math.floor(Math.random() * 200_000) })}}`;
              headers = bearer(data.tokens.admin);
            } else if (roll < 0.1) {
              const author = pick(slice.users);
              const input = { productId: pick(slice.products), body: 'bench review', rating: 1 + Math.floor(Math.random() * 5) };
              body = `${addHead}${JSON.stringify({ input })}}`;
              headers = bearer(tokenOf(data.tokens, author));
            } else {
              body = `${readHead}${JSON.stringify({ product: pick(slice.products), user: pick(slice.users) })}}`;
            }
            // autocannon merged the run's headers (content-type) into `request.headers` before this call.
            const { authorization: _previous, ...common } = request.headers ?? {};
            return { ...request, body, headers: { ...common, ...headers } };
          },
        },
      ];
    }
  }
}

/** The fixed requests of a workload that every gateway must answer as ours does. */
export function goldenRequests(workload: WorkloadName, data: WorkloadData): GraphQLRequest[] {
  switch (workload) {
    case 'deep':
      return [{ query: DEEP_QUERY, operationName: 'TestQuery' }];
    case 'small':
      return ['p00001', 'p00500'].map((id) => ({ query: SMALL_QUERY, operationName: 'Small', variables: { id } }));
    case 'varied':
      return [0.1, 0.5, 0.9].map((at) => ({
        query: VARIED_QUERY,
        operationName: 'Varied',
        variables: {
          users: data.userCursors[Math.floor(at * data.userCursors.length)],
          products: data.productCursors[Math.floor((1 - at) * data.productCursors.length)],
        },
      }));
    case 'write':
      // Entities outside every write slice; the writes themselves are checked for staleness instead.
      return [{ query: READ_QUERY, operationName: 'Read', variables: { product: 'p00002', user: 'u00002' } }];
  }
}

/**
 * Concurrent connections per workload: enough to keep one gateway core busy, few enough that the
 * work left in flight when a round ends stays small. With simulated subgraph latency most of a
 * request's time is waiting, so more are needed.
 */
export function connectionsFor(workload: WorkloadName, delayMs: number): number {
  if (delayMs > 0) return 64;
  return workload === 'small' ? 16 : 8;
}
