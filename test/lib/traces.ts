// What the tracing tests send and what they require of the spans, shared by the embedded mode (an
// in-memory exporter in a child process) and the services mode (OTLP/HTTP into a receiver the test
// runs): one query touching four subgraphs, and one mutation whose event two services consume.
import type { FinishedSpan } from '@shop/tracing';
import { eventually, type GraphQLClient } from '@shop/testing';

/** A span as both exporters give it, reduced to what the checks read. */
export type SpanRecord = FinishedSpan;

/** products, inventory, reviews and accounts, in that order of the plan. */
export const TRACED_QUERY = `query TracedProductPage($id: ID!) {
  product(id: $id) { name inStock reviews(first: 3) { body author { name } } }
}`;
export const TRACED_SUBGRAPHS = ['products', 'inventory', 'reviews', 'accounts'] as const;
/** An admin's write: products' outbox gets ProductUpdated, which reviews (its product view) and the gateway (evictions) consume. */
export const TRACED_MUTATION =
  'mutation TracedRename($id: ID!, $name: String!) { updateProduct(id: $id, input: { name: $name }) { id name } }';
export const TRACED_CONSUMERS = ['reviews', 'gateway'] as const;

export interface TracedRun {
  queryRequestId: string;
  mutationRequestId: string;
  spans: SpanRecord[];
}

/**
 * Sends the query and the mutation (each with its own x-request-id, which the gateway's HTTP span
 * carries) and waits until every consumer's span of the mutation's event has been exported.
 */
export async function runTracedScenario(
  client: GraphQLClient,
  adminHeaders: Record<string, string>,
  exported: () => Promise<SpanRecord[]>,
  productId = 'p00003',
): Promise<TracedRun> {
  const tag = Math.random().toString(36).slice(2, 10);
  const queryRequestId = `traced-query-${tag}`;
  const mutationRequestId = `traced-mutation-${tag}`;
  const read = await client.query(TRACED_QUERY, { id: productId }, { 'x-request-id': queryRequestId });
  if (read.errors) throw new Error(`the traced query failed: ${JSON.stringify(read.errors)}`);
  const write = await client.query(
    TRACED_MUTATION,
    { id: productId, name: `Traced ${tag}` },
    { ...adminHeaders, 'x-request-id': mutationRequestId },
  );
  if (write.errors) throw new Error(`the traced mutation failed: ${JSON.stringify(write.errors)}`);
  const spans = await eventually(
    exported,
    (all) => {
      const root = rootOf(all, mutationRequestId);
      const consumed = root
        ? all.filter((s) => s.traceId === root.traceId && s.kind === 'consumer').map((s) => s.attributes['shop.service'])
        : [];
      // The query's trace too: the last subgraph's spans can arrive after the gateway's.
      const query = rootOf(all, queryRequestId);
      const subgraphSpans = query ? all.filter((s) => s.traceId === query.traceId && s.name.endsWith(' graphql')).length : 0;
      return TRACED_CONSUMERS.every((c) => consumed.includes(c)) && subgraphSpans >= TRACED_SUBGRAPHS.length;
    },
    30_000,
    100,
  ).catch((err: unknown) => {
    throw new Error(`the traces did not arrive: ${err instanceof Error ? err.message.slice(0, 300) : String(err)}`);
  });
  return { queryRequestId, mutationRequestId, spans };
}

/** The gateway's HTTP server span of the request with this id: the one that has no parent. */
export function rootOf(spans: readonly SpanRecord[], requestId: string): SpanRecord | undefined {
  return spans.find((s) => s.kind === 'server' && s.parentSpanId === '' && s.attributes['shop.request_id'] === requestId);
}

/** The spans of one trace, with a way to walk up from any of them. */
export function traceOf(spans: readonly SpanRecord[], traceId: string) {
  const inTrace = spans.filter((s) => s.traceId === traceId);
  const byId = new Map(inTrace.map((s) => [s.spanId, s]));
  /** Whether `ancestor` is on the path from `span` to the root. */
  const isBelow = (span: SpanRecord, ancestor: SpanRecord): boolean => {
    for (let at = byId.get(span.parentSpanId); at; at = byId.get(at.parentSpanId)) if (at === ancestor) return true;
    return false;
  };
  const below = (ancestor: SpanRecord, match: (s: SpanRecord) => boolean) => inTrace.filter((s) => match(s) && isBelow(s, ancestor));
  return { spans: inTrace, byId, isBelow, below };
}

const isStatement = (s: SpanRecord) => s.attributes['db.system'] !== undefined || s.attributes['db.system.name'] !== undefined;

/**
 * The query's trace: the gateway's request span is its only root; one `gateway.fetch` per
 * subgraph fetch below it; below each fetch exactly one request span of that subgraph; below that,
 * the subgraph's SQL statements. Returns the fetches' subgraphs in start order (for the report).
 */
export function checkQueryTrace(spans: readonly SpanRecord[], requestId: string): string[] {
  const root = rootOf(spans, requestId);
  if (!root) throw new Error(`no root span for request ${requestId}`);
  const t = traceOf(spans, root.traceId);
  const roots = t.spans.filter((s) => s.parentSpanId === '' || !t.byId.has(s.parentSpanId));
  expectEqual(
    roots.map((s) => s.spanId),
    [root.spanId],
    `the query's trace has one root, the gateway's request span (${describe(roots)})`,
  );
  // Apollo Server has no instrumentation: parsing and validation are ours (tracing-plugin.ts).
  const gatewayRequest = t.below(root, (s) => s.name === 'gateway graphql');
  if (gatewayRequest.length !== 1) throw new Error(`${gatewayRequest.length} gateway graphql spans below the root, not 1`);
  for (const step of ['graphql.parse', 'graphql.validate'])
    if (!t.spans.some((s) => s.name === step && s.parentSpanId === gatewayRequest[0]?.spanId))
      throw new Error(`no ${step} span under the gateway's GraphQL request`);
  const fetches = t.below(root, (s) => s.name === 'gateway.fetch');
  const fetched = fetches.map((f) => String(f.attributes.service));
  for (const subgraph of TRACED_SUBGRAPHS) {
    if (!fetched.includes(subgraph)) throw new Error(`no gateway.fetch to ${subgraph} below the root (fetches: ${fetched.join(', ')})`);
  }
  for (const fetch of fetches) {
    const subgraph = String(fetch.attributes.service);
    const requests = t.below(fetch, (s) => s.name === `${subgraph} graphql`);
    if (requests.length !== 1) throw new Error(`the fetch to ${subgraph} has ${requests.length} ${subgraph} request spans below it, not 1`);
    const request = requests[0] as SpanRecord;
    if (request.attributes['shop.request_id'] !== requestId)
      throw new Error(`${subgraph}'s span names request ${String(request.attributes['shop.request_id'])}`);
    if (!t.spans.some((s) => s.name === 'graphql.validate' && s.parentSpanId === request.spanId))
      throw new Error(`no graphql.validate span under ${subgraph}'s request`);
    const statements = t.below(request, isStatement);
    if (statements.length === 0) throw new Error(`no SQL span below ${subgraph}'s request (${describe(t.below(request, () => true))})`);
  }
  return fetched;
}

/**
 * The mutation's trace: the gateway's request span is its root; products' outbox append, the
 * relay's publish and each consumer's handling of ProductUpdated are below it, in that order of
 * ancestry, and the reviews consumer's SQL statements below its handling.
 */
export function checkMutationTrace(spans: readonly SpanRecord[], requestId: string): void {
  const root = rootOf(spans, requestId);
  if (!root) throw new Error(`no root span for request ${requestId}`);
  const t = traceOf(spans, root.traceId);
  const one = (name: string, under: SpanRecord) => {
    const found = t.below(under, (s) => s.name === name);
    if (found.length !== 1) throw new Error(`${found.length} spans named "${name}" below "${under.name}", not 1 (${describe(t.spans)})`);
    return found[0] as SpanRecord;
  };
  const append = one('products outbox append', root);
  const publish = one('products publish ProductUpdated', root);
  // The publish is the relay's, later and in another task, under the context the outbox row kept: the append's.
  if (publish.parentSpanId !== append.spanId)
    throw new Error('the relay publish is not a child of the outbox append whose context the row kept');
  for (const group of TRACED_CONSUMERS) {
    const handling = one(`${group} process ProductUpdated`, publish);
    if (handling.kind !== 'consumer') throw new Error(`${handling.name} is a ${handling.kind} span`);
  }
  const reviews = one('reviews process ProductUpdated', publish);
  if (t.below(reviews, isStatement).length === 0) throw new Error('no SQL span below the reviews consumer');
}

function describe(spans: readonly SpanRecord[]): string {
  return spans.map((s) => `${s.service}:${s.name}`).join(', ');
}

function expectEqual<T>(actual: T, expected: T, what: string): void {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) throw new Error(`${what}: got ${JSON.stringify(actual)}`);
}
