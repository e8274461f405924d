import type { FetchResponse, Layer } from './layer';

/** An entity a mutation changed: its type and id (or its whole key). */
export interface ChangedEntity {
  typename: string;
  id: unknown;
}

/** Stands for "anything may have changed": it retires every cached entity and response. */
export const EVERYTHING_CHANGED: ChangedEntity = { typename: '*', id: '*' };

/** Walks a mutation's data for objects that name an entity: `__typename` plus `id`. */
function entitiesIn(value: unknown, out: ChangedEntity[]): ChangedEntity[] {
  if (Array.isArray(value)) {
    for (const item of value) entitiesIn(item, out);
  } else if (value && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    if (typeof obj.__typename === 'string' && obj.id !== undefined && obj.id !== null) out.push({ typename: obj.__typename, id: obj.id });
    for (const v of Object.values(obj)) if (v && typeof v === 'object') entitiesIn(v, out);
  }
  return out;
}

/**
 * After a mutation, evicts every entity its response names, and any the subgraph lists in
 * `extensions.invalidate` (entities whose lists changed), before the client gets the answer: a
 * read after a write is never stale. Called once per mutation: with an empty list when the
 * subgraph declared that it changed nothing, with {@link EVERYTHING_CHANGED} when it declares
 * nothing at all and its response names no entity.
 */
export function evictAfterMutationLayer(onMutation: (entities: ChangedEntity[]) => Promise<void>): Layer {
  const evictAfter = async (pending: Promise<FetchResponse>): Promise<FetchResponse> => {
    const response = await pending;
    const named = entitiesIn(response.body.data, []);
    const listed = response.body.extensions?.invalidate;
    if (Array.isArray(listed)) {
      for (const e of listed) {
        const item = e as { __typename?: unknown; id?: unknown };
        if (typeof item.__typename === 'string') named.push({ typename: item.__typename, id: item.id });
      }
    }
    // A subgraph that declares nothing (another team's) and a response that names nothing: what
    // changed is unknown, so everything cached is retired.
    await onMutation(named.length === 0 && !Array.isArray(listed) ? [EVERYTHING_CHANGED] : named);
    return response;
  };
  // Queries pass without an async frame: this is the hot path.
  return (request, next) => (request.mutation ? evictAfter(next(request)) : next(request));
}
