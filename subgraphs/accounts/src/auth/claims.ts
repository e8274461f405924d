import { ADMIN_ROLE, SCOPES, type Scope } from '@shop/server';

// The scopes are the platform's (@shop/server's authz): the subgraphs check the very names
// accounts signs into tokens.
export { SCOPES, type Scope };

/** The roles a user can hold. Every user is a `customer`; `admin` is granted in the store. */
export const ROLES = ['customer', ADMIN_ROLE] as const;
export type Role = (typeof ROLES)[number];

/** What an access token says about its user, besides the registered claims. */
export interface Claims {
  sub: string;
  roles: Role[];
  scopes: Scope[];
}

/** The roles stored for a user (`customer admin`), unknown names dropped, `customer` always in. */
export function parseRoles(stored: string): Role[] {
  const named = new Set(stored.split(/\s+/));
  return ROLES.filter((r) => r === 'customer' || named.has(r));
}

/** An admin holds every scope; a customer none (their own data needs no scope, only their id). */
export function scopesFor(roles: readonly Role[]): Scope[] {
  return roles.includes(ADMIN_ROLE) ? [...SCOPES] : [];
}
