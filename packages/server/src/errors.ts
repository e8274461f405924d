import { DomainError, quote } from './client-errors';

// The error model (DomainError, its codes, how it reaches the client) lives in client-errors.ts
// beside CLIENT_ERROR_CODES; these are the shorthands domain code throws with.

/** A BAD_USER_INPUT naming the argument or input field at fault. */
export const badInput = (field: string, message: string): DomainError => new DomainError('BAD_USER_INPUT', message, field);
/** An unknown id: the message quotes at most a short prefix of it (the id came from the client). */
export const notFound = (what: string, id: string): DomainError => new DomainError('NOT_FOUND', `${what} ${quote(id)} not found`);

/** The subset of a zod schema `validateInput` needs (keeps this package free of a zod version). */
interface SafeParser<T> {
  safeParse(
    input: unknown,
  ):
    | { success: true; data: T }
    | { success: false; error: { issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }> } };
}

/**
 * Validates mutation input with a zod schema; the first problem becomes a BAD_USER_INPUT error
 * naming the field, e.g. `input.rating: must be between 1 and 5`.
 */
export function validateInput<T>(schema: SafeParser<T>, input: unknown, prefix = 'input'): T {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = [prefix, ...(issue?.path ?? []).map(String)].join('.');
  throw badInput(field, `${field}: ${issue?.message ?? 'invalid'}`);
}
