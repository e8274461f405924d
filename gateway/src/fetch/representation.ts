/** A representation: `__typename` plus key fields (and any `@requires` fields). */
export type Representation = Record<string, unknown> & { __typename: string };

/**
 * JSON with object keys sorted, so equal representations give equal strings whatever their key
 * order. Dedupe and the entity cache key representations by it; each representation's is
 * computed once per fetch and handed down in `FetchRequest.repKeys`.
 */
export function stableStringify(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  // Loops rather than map/filter/join: this runs for every representation of every fetch.
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i > 0 ? ',' : '') + stableStringify(value[i]);
    return `${out}]`;
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  // Most representations are exactly a type and an id.
  if (keys.length === 2 && keys[0] === '__typename' && keys[1] === 'id') {
    const { __typename: typename, id } = obj;
    if (typeof typename === 'string' && (typeof id === 'string' || typeof id === 'number')) {
      return `{"__typename":${JSON.stringify(typename)},"id":${JSON.stringify(id)}}`;
    }
  }
  // Representations come with their keys in order already (`__typename` first, then the key's
  // fields as the planner sorts them): sorting is needed only when they are not.
  for (let i = 1; i < keys.length; i++) {
    if ((keys[i - 1] as string) > (keys[i] as string)) {
      keys.sort();
      break;
    }
  }
  let out = '{';
  let first = true;
  for (const k of keys) {
    const v = obj[k];
    if (v === undefined) continue;
    out += `${first ? '' : ','}${NAME.test(k) ? `"${k}"` : JSON.stringify(k)}:${stableStringify(v)}`;
    first = false;
  }
  return `${out}}`;
}

/** A GraphQL name needs no escaping in JSON. */
const NAME = /^[_A-Za-z][_0-9A-Za-z]*$/;
