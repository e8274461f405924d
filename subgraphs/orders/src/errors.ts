import { GraphQLError } from 'graphql';
import { ConcurrencyError } from '@shop/eventstore';
import { type ClientErrorCode, DomainError, toGraphQLError } from '@shop/server';
import type { OrderRejection, OrderRejectionCode } from './domain';

/** A command the order refused (a domain rejection), thrown by the handler. */
export class OrderError extends Error {
  constructor(
    readonly code: OrderRejectionCode | 'CONFLICT',
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'OrderError';
  }

  static from(rejection: OrderRejection): OrderError {
    return new OrderError(rejection.code, rejection.message, rejection.field);
  }
}

/**
 * Runs a resolver body, mapping what orders' code throws to coded GraphQL errors: domain
 * rejections keep their code (ORDER_NOT_DRAFT...), a lost race is CONCURRENCY_CONFLICT with the
 * versions, and the platform's DomainErrors (BAD_USER_INPUT...) map as everywhere else.
 */
export async function orderCoded<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof OrderError) {
      // `satisfies`: a new rejection code that is not in CLIENT_ERROR_CODES would be masked as
      // INTERNAL_SERVER_ERROR in production; this makes it a compile error instead.
      throw new GraphQLError(err.message, { extensions: { code: err.code satisfies ClientErrorCode, ...(err.field ? { field: err.field } : {}) } });
    }
    if (err instanceof ConcurrencyError) {
      throw new GraphQLError(err.message, {
        extensions: { code: err.code satisfies ClientErrorCode, expectedVersion: err.expectedVersion, actualVersion: err.actualVersion },
      });
    }
    if (err instanceof DomainError) return toGraphQLError(err);
    throw err;
  }
}
