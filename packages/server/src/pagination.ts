import { quote } from './client-errors';
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
/** Longer than any cursor we issue (base64url of `c1:` and a sort key of ids and timestamps). */
export const MAX_CURSOR_LENGTH = 512;

export function encodeCursor(key: string): string {
  return Buffer.from(PREFIX + key, 'utf8').toString('base64url');
}

/**
 * The sort key in a cursor this API issued. Anything else is BAD_USER_INPUT quoting at most a
 * short prefix of what was sent: an over-long cursor, one that is not our encoding of a key
 * (checked by re-encoding, so stray characters and invalid UTF-8 are refused too), or a key with
 * a NUL character, which must not reach the store as a comparison value.
 */
export function decodeCursor(cursor: string): string {
  const refuse = (why: string) => badInput('after', `after is not a cursor issued by this API (${why}); received ${quote(cursor)}`);
  if (cursor.length > MAX_CURSOR_LENGTH) throw refuse(`${cursor.length} characters, ours have at most ${MAX_CURSOR_LENGTH}`);
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!text.startsWith(PREFIX) || encodeCursor(text.slice(PREFIX.length)) !== cursor || text.includes('\u0000'))
    throw refuse('unknown encoding');
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
