// Who a client request is from: its bearer token verified against the issuer's keys (tokens.ts).
export { type Authenticate, TOKEN_ALGORITHMS, type TokenOptions, createAuthenticate } from './tokens';
