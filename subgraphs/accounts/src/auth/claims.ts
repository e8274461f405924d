/** The roles a user can hold. Every user is a `customer`; `admin` is granted in the store. */
export const ROLES = ['customer', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** The scopes an access token can carry (its `scope` claim, space-separated). */
export const SCOPES = ['catalog:write', 'inventory:write', 'orders:admin'] as const;
export type Scope = (typeof SCOPES)[number];

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
  return roles.includes('admin') ? [...SCOPES] : [];
}
