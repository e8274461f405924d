import { DomainError } from './client-errors';
import type { Identity } from './http';

// Who may do what, as the subgraphs check it (defence in depth behind the gateway's
// @authenticated / @requiresScopes / @policy): the identity is the one the gateway signed
// (RequestInfo.identity), undefined for an anonymous request or an unsigned one.

/** The role that may read and change every user's account (`admin` in accounts' store). */
export const ADMIN_ROLE = 'admin';

/** The scopes an access token may carry; an admin's token carries all of them. */
export const SCOPES = ['catalog:write', 'inventory:write', 'orders:admin'] as const;
export type Scope = (typeof SCOPES)[number];

export const hasScope = (identity: Identity | undefined, scope: Scope): boolean => identity?.scopes.includes(scope) ?? false;
export const hasRole = (identity: Identity | undefined, role: string): boolean => identity?.roles.includes(role) ?? false;

/** The caller, or UNAUTHENTICATED: the operation needs a signed-in user. */
export function requireIdentity(identity: Identity | undefined, what: string): Identity {
  if (!identity) throw new DomainError('UNAUTHENTICATED', `${what} needs a signed-in user: send Authorization: Bearer <token>.`);
  return identity;
}

/** The caller when the token carries `scope`; UNAUTHENTICATED without a token, FORBIDDEN without the scope. */
export function requireScope(identity: Identity | undefined, scope: Scope, what: string): Identity {
  const caller = requireIdentity(identity, what);
  if (!caller.scopes.includes(scope)) throw new DomainError('FORBIDDEN', `${what} needs the ${scope} scope.`);
  return caller;
}

/**
 * Whether the caller may act on data that belongs to `ownerId`: the owner, or a caller holding
 * `override` (a scope such as `orders:admin`, or the admin role when it is `{ role }`).
 */
export function isOwnerOr(identity: Identity | undefined, ownerId: string, override: Scope | { role: string }): boolean {
  if (!identity) return false;
  if (identity.sub === ownerId) return true;
  return typeof override === 'string' ? identity.scopes.includes(override) : identity.roles.includes(override.role);
}

/** A write on someone else's data: UNAUTHENTICATED when anonymous, FORBIDDEN otherwise. */
export function requireOwnerOr(
  identity: Identity | undefined,
  ownerId: string,
  override: Scope | { role: string },
  what: string,
): Identity {
  const caller = requireIdentity(identity, what);
  if (!isOwnerOr(caller, ownerId, override)) {
    const who = typeof override === 'string' ? `the ${override} scope` : `the ${override.role} role`;
    throw new DomainError('FORBIDDEN', `${what} is for its owner or ${who}.`);
  }
  return caller;
}

/** A field the caller may not read: the resolver throws it and the field is null at its path. */
export const unauthorizedField = (what: string): DomainError =>
  new DomainError('UNAUTHORIZED_FIELD_OR_TYPE', `${what} is visible only to its owner or an admin.`);
