import { badInput } from './errors';

/** A validated page request: at most `first` items after the row whose sort key is `after`. */
export interface PageRequest {
  first: number;
  after: string | undefined;
}

/**
 * Checks `first` against the configured maximum and decodes the opaque `after` cursor.
 * A `first` outside 0..max, or a cursor we did not issue, is a BAD_USER_INPUT error.
 */
export function pageRequest(first: number | null | undefined, after: string | null | undefined, max: number, fallback = 10): PageRequest {
  const n = first ?? Math.min(fallback, max);
  if (!Number.isInteger(n) || n < 0 || n > max) {
    throw badInput('first', `first must be between 0 and ${max}; received ${String(first)}`);
  }
  return { first: n, after: after == null ? undefined : decodeCursor(after) };
}

/** Bounds a `first` argument on a list field (no cursor). */
export function boundedFirst(first: number | null | undefined, max: number, fallback = 10): number {
  return pageRequest(first, undefined, max, fallback).first;
}

const PREFIX = 'c1:';
export function encodeCursor(key: string): string {
  return Buffer.from(PREFIX + key, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!text.startsWith(PREFIX)) throw badInput('after', `after is not a cursor issued by this API; received ${JSON.stringify(cursor)}`);
  return text.slice(PREFIX.length);
}

/** A Relay-style connection built from `first + 1` rows fetched in key order. */
export interface Connection<T> {
  edges: { cursor: string; node: T }[];
  pageInfo: { endCursor: string | null; hasNextPage: boolean };
  totalCount?: number;
}

export function toConnection<T>(rows: T[], first: number, key: (row: T) => string): Connection<T> {
  const page = rows.slice(0, first);
  const edges = page.map((node) => ({ cursor: encodeCursor(key(node)), node }));
  return {
    edges,
    pageInfo: { endCursor: edges.at(-1)?.cursor ?? null, hasNextPage: rows.length > first },
  };
}
