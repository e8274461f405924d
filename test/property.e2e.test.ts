// Issue #11's property: random valid operations built from the supergraph's API schema, and
// random mutations of them, sent to a running stack. Whatever arrives, the answer is never a
// 5xx, never an error without `extensions.code`, never INTERNAL_SERVER_ERROR, and the stack
// keeps answering. Each request goes anonymous, as a customer or as the admin, so that the
// authorization rewrite and the subgraphs' own checks meet random operations too, and writes
// reach their resolvers. `PROPERTY_RUNS` (default 10,000) and `PROPERTY_SEED` (default random) steer a
// run; on failure fast-check prints the seed and path that replay it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import pino from 'pino';
import { Pool } from 'undici';
import { seedOrderId } from '@shop/orders';
import { SEED_ADMIN, productId, reviewId, userId } from '@shop/seed';
import { apiSchemaOf } from '@shop/schema-check';
import { REPO_ROOT, STACK_TEST_ENV, type Stack, startStack } from '@shop/stack';
import { type HttpAnswer, bearer, errorProblems, excerpt, requestArbitrary } from '@shop/testing';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 10_000);
const SEED = process.env.PROPERTY_SEED === undefined || process.env.PROPERTY_SEED === '' ? undefined : Number(process.env.PROPERTY_SEED);
const SIZES = { users: 50, products: 50, reviews: 500 };
/** A request unanswered by then fails the property (the stack is in this process: it is stuck). */
const ANSWER_TIMEOUT_MS = 30_000;

describe('random operations from the supergraph, and mutations of them (fast-check)', () => {
  let stack: Stack;
  let pool: Pool;
  let origin: string;
  /** Who sends a request: the headers of each caller. */
  let callers: Record<'anonymous' | 'customer' | 'admin', Record<string, string>>;

  beforeAll(async () => {
    stack = await startStack({
      ports: { gateway: 0, accounts: 0, products: 0, inventory: 0, reviews: 0, orders: 0 },
      host: '127.0.0.1',
      logger: pino({ level: 'silent' }),
      seed: SIZES,
      // Requests go one at a time: no load to shed. The stack shares this process with the
      // property's generator, and CI runs other suites beside it on two cores, so the event loop
      // can be starved past the shedding threshold (500 ms) by the machine; the 503 OVERLOADED
      // that follows is shedding working (packages/server's admission tests), not this property
      // failing. Off here (0: that check off); everything else is the default stack.
      env: { ...STACK_TEST_ENV, SHED_EVENT_LOOP_DELAY_MS: '0' },
      // With an environment the stack would take the config's store (files under DATA_DIR).
      store: () => ({ sqlitePath: ':memory:' }),
    });
    origin = new URL(stack.gatewayUrl).origin;
    callers = {
      anonymous: {},
      customer: bearer(await stack.token(userId(1))),
      admin: bearer(await stack.token(SEED_ADMIN.id, { roles: ['customer', 'admin'] })),
    };
    // One keep-alive connection: requests go one at a time, as the property runs them.
    pool = new Pool(origin, {
      connections: 1,
      keepAliveTimeout: 60_000,
      headersTimeout: ANSWER_TIMEOUT_MS,
      bodyTimeout: ANSWER_TIMEOUT_MS,
    });
  }, 120_000);

  afterAll(async () => {
    await pool?.close();
    await stack?.stop();
  });

  async function send(body: string, headers: Record<string, string>): Promise<HttpAnswer> {
    const res = await pool.request({
      path: '/graphql',
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...headers },
      body,
    });
    const contentType = res.headers['content-type'];
    return {
      status: res.statusCode,
      text: await res.body.text(),
      contentType: Array.isArray(contentType) ? contentType.join(', ') : (contentType ?? ''),
    };
  }

  it(
    `answers ${RUNS} random requests with no 5xx, no uncoded error and no INTERNAL_SERVER_ERROR`,
    async () => {
      const schema = apiSchemaOf(readFileSync(join(REPO_ROOT, 'supergraph.graphql'), 'utf8'));
      // Ids that exist in the seed, so that many operations reach data (and the resolvers behind it).
      const ids = [
        userId(1),
        userId(SIZES.users),
        productId(1),
        productId(SIZES.products),
        reviewId(1),
        reviewId(SIZES.reviews),
        seedOrderId(1),
      ];
      const started = performance.now();
      await fc.assert(
        fc.asyncProperty(
          requestArbitrary(schema, { ids }),
          fc.constantFrom<keyof typeof callers>('anonymous', 'customer', 'admin'),
          async (request, who) => {
            const answer = await send(request.body, callers[who]);
            const problems = [
              ...(answer.status >= 500 ? [`HTTP ${answer.status}: ${excerpt(answer.text)}`] : []),
              ...errorProblems(answer),
            ];
            if (problems.length > 0) {
              throw new Error(`${[...new Set(problems)].join('\n')}\n  request (${request.how}, ${who}): ${excerpt(request.body, 1500)}`);
            }
          },
        ),
        // No shrinking: values drawn through fc.gen() shrink draw by draw, and a failure took
        // hundreds of thousands of shrink runs. The failing request is printed as generated.
        { numRuns: RUNS, endOnFailure: true, ...(SEED === undefined ? {} : { seed: SEED }) },
      );
      const seconds = (performance.now() - started) / 1000;
      // The time a run takes, for whoever tunes PROPERTY_RUNS.
      process.stdout.write(`property: ${RUNS} requests in ${seconds.toFixed(1)} s (${((seconds * 1000) / RUNS).toFixed(1)} ms each)\n`);

      const health = await fetch(`${origin}/health`, { signal: AbortSignal.timeout(1000) });
      expect(health.status).toBe(200);
    },
    15 * 60_000,
  );
});
