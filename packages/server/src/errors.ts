import { GraphQLError } from 'graphql';
import { quote } from './client-errors';

/** Error codes the platform's resolvers use in `extensions.code`. */
export type ErrorCode = 'BAD_USER_INPUT' | 'NOT_FOUND' | 'CONFLICT' | 'FORBIDDEN' | 'INTERNAL_SERVER_ERROR';

/** A domain error: domain code throws it, resolvers let it through as a coded GraphQL error. */
export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The argument or input field at fault, when there is one. */
    readonly field?: string,
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

/** Maps a domain error to the GraphQL error a client sees; anything else is rethrown untouched. */
export function toGraphQLError(err: unknown): never {
  if (err instanceof DomainError) {
    throw new GraphQLError(err.message, {
      extensions: { code: err.code, ...(err.field ? { field: err.field } : {}) },
    });
  }
  throw err;
}

/** Runs a resolver body, turning domain errors into coded GraphQL errors. */
export async function coded<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    return toGraphQLError(err);
  }
}

export const badInput = (field: string, message: string) => new DomainError('BAD_USER_INPUT', message, field);
/** An unknown id: the message quotes at most a short prefix of it (the id came from the client). */
export const notFound = (what: string, id: string) => new DomainError('NOT_FOUND', `${what} ${quote(id)} not found`);

/** The subset of a zod schema `validateInput` needs (keeps this package free of a zod version). */
interface SafeParser<T> {
  safeParse(input: unknown):
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
