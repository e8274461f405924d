// Who a client request is from: its bearer token verified against the issuer's keys (tokens.ts).
export {
  type Authenticate,
  TOKEN_ALGORITHMS,
  type TokenOptions,
  type VerifiedAuthorization,
  createAuthenticate,
  createVerifyAuthorization,
} from './tokens';
export { type AuthDirectives, type Requirement, authDirectivesOf, linksAuthDirectives } from './directives';
export { type AuthorizationOptions, type Policy, UNAUTHORIZED_FIELD_OR_TYPE, authorization, defaultPolicies } from './authorize';
