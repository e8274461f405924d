import { type DocumentNode, Kind, type ObjectTypeDefinitionNode, parse, valueFromASTUntyped } from 'graphql';

/** The spec our subgraphs link `@fromEvents` from (composed into the supergraph with `@composeDirective`). */
export const FROM_EVENTS_SPEC = 'https://specs.shop.dev/events/v0.1';

/** Which events feed a subscription field, and how an event is matched to a subscriber. */
export interface EventTopic {
  /** The `Subscription` field. */
  field: string;
  /** The event types that run it. */
  types: readonly string[];
  /** Where the matched value is in the event: `aggregateId`, or `payload.<key>`. */
  match: string;
  /** The field argument that must equal it. */
  arg: string;
}

/** The field's topic per `Subscription` field, and per event type the topics it feeds. */
export interface EventTopics {
  byField: ReadonlyMap<string, EventTopic>;
  byType: ReadonlyMap<string, readonly EventTopic[]>;
}

/**
 * The `@fromEvents` directives on the supergraph's `Subscription` fields: a subscription field
 * without one has nothing to feed it, and a subscription to it is refused.
 */
export function eventTopicsOf(sdl: string | DocumentNode): EventTopics {
  const document = typeof sdl === 'string' ? parse(sdl, { noLocation: true }) : sdl;
  const byField = new Map<string, EventTopic>();
  const byType = new Map<string, EventTopic[]>();
  const name = fromEventsName(document);
  const subscriptionType = subscriptionTypeName(document);
  if (!name) return { byField, byType };
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OBJECT_TYPE_DEFINITION && definition.kind !== Kind.OBJECT_TYPE_EXTENSION) continue;
    if (definition.name.value !== subscriptionType) continue;
    for (const field of (definition as ObjectTypeDefinitionNode).fields ?? []) {
      const directive = field.directives?.find((d) => d.name.value === name);
      if (!directive) continue;
      const args = Object.fromEntries((directive.arguments ?? []).map((a) => [a.name.value, valueFromASTUntyped(a.value)]));
      const types = Array.isArray(args.types) ? args.types.filter((t): t is string => typeof t === 'string') : [];
      const topic: EventTopic = {
        field: field.name.value,
        types,
        match: typeof args.match === 'string' ? args.match : 'aggregateId',
        arg: typeof args.arg === 'string' ? args.arg : 'id',
      };
      byField.set(topic.field, topic);
      for (const type of types) byType.set(type, [...(byType.get(type) ?? []), topic]);
    }
  }
  return { byField, byType };
}

/** The name `@fromEvents` goes by in this document (a `@link` may rename it), or undefined when it is not linked. */
function fromEventsName(document: DocumentNode): string | undefined {
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.SCHEMA_DEFINITION && definition.kind !== Kind.SCHEMA_EXTENSION) continue;
    for (const link of definition.directives ?? []) {
      if (link.name.value !== 'link') continue;
      const args = Object.fromEntries((link.arguments ?? []).map((a) => [a.name.value, valueFromASTUntyped(a.value)]));
      if (args.url !== FROM_EVENTS_SPEC) continue;
      const imports = Array.isArray(args.import) ? args.import : [];
      for (const entry of imports) {
        if (entry === '@fromEvents') return 'fromEvents';
        const item = entry as { name?: unknown; as?: unknown } | null;
        if (item?.name === '@fromEvents' && typeof item.as === 'string') return item.as.replace(/^@/, '');
      }
      return 'events__fromEvents';
    }
  }
  return undefined;
}

function subscriptionTypeName(document: DocumentNode): string {
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.SCHEMA_DEFINITION) continue;
    const op = definition.operationTypes.find((o) => o.operation === 'subscription');
    if (op) return op.type.name.value;
  }
  return 'Subscription';
}

/** The value at `match` in an event (`aggregateId`, or `payload.<key>`), as a string; undefined when absent. */
export function matchedValue(event: { aggregateId: string; payload: Record<string, unknown> }, match: string): string | undefined {
  if (match === 'aggregateId') return event.aggregateId;
  if (!match.startsWith('payload.')) return undefined;
  const value = event.payload[match.slice('payload.'.length)];
  return typeof value === 'string' || typeof value === 'number' ? String(value) : undefined;
}
