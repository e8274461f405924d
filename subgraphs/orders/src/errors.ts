import { GraphQLError } from 'graphql';
import { ConcurrencyError } from '@shop/eventstore';
import { DomainError, toGraphQLError } from '@shop/server';
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
      throw new GraphQLError(err.message, { extensions: { code: err.code, ...(err.field ? { field: err.field } : {}) } });
    }
    if (err instanceof ConcurrencyError) {
      throw new GraphQLError(err.message, {
        extensions: { code: err.code, expectedVersion: err.expectedVersion, actualVersion: err.actualVersion },
      });
    }
    if (err instanceof DomainError) return toGraphQLError(err);
    throw err;
  }
}
