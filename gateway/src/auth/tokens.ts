import type { IncomingMessage } from 'node:http';
import { type JWTPayload, type JWTVerifyGetKey, createRemoteJWKSet, errors, jwtVerify } from 'jose';
import { AuthenticationError, type Identity } from '@shop/server';

/**
 * The signature algorithms a token may use: asymmetric only. Never `none`, and never HS*: with an
 * HMAC algorithm, a verifier handed a public key would take it as the shared secret, and anyone
 * who has the (public) key could sign.
 */
export const TOKEN_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];

export interface TokenOptions {
  /** `JWKS_URL`: where the issuer publishes its public keys (accounts' `/.well-known/jwks.json`). */
  jwksUrl?: string | undefined;
  /** `JWT_ISSUER`: the `iss` every token must carry. @default not checked */
  issuer?: string | undefined;
  /** `JWT_AUDIENCE`: an `aud` every token must carry. @default not checked */
  audience?: string | undefined;
  /** Clock skew allowed on `exp` and `nbf`, in seconds. @default 5 */
  clockToleranceS?: number;
  /**
   * After fetching the key set, how long an unknown `kid` waits before it may fetch again: the
   * rotated-in key of a new token is picked up, and a flood of made-up kids costs the issuer one
   * fetch per this long. @default 30_000
   */
  jwksCooldownMs?: number;
  /** How long the fetched key set is used before it is fetched again. @default 600_000 */
  jwksCacheMaxAgeMs?: number;
  /** The keys, instead of `jwksUrl` (tests: `createLocalJWKSet`). */
  keys?: JWTVerifyGetKey | undefined;
}

/** Checks a request's `Authorization` header: its verified identity, undefined when it has none. */
export type Authenticate = (req: IncomingMessage) => Promise<Identity | undefined>;

const stringList = (value: unknown): string[] => (Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []);

/** `scope` is a space-separated string in OAuth 2 (RFC 8693); a list is read as well. */
function scopesOf(payload: JWTPayload): string[] {
  const scope = payload.scope;
  if (typeof scope === 'string') return scope.split(' ').filter(Boolean);
  return stringList(scope);
}

/** Why a token was refused, in words a client can act on (never the token itself). */
function reasonOf(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'The token has expired.';
  if (err instanceof errors.JWTClaimValidationFailed) return `The token's "${err.claim}" claim is not accepted (${err.reason}).`;
  if (err instanceof errors.JOSEAlgNotAllowed) return "The token's signature algorithm is not accepted.";
  if (err instanceof errors.JWSSignatureVerificationFailed) return "The token's signature does not verify.";
  if (err instanceof errors.JWKSNoMatchingKey) return "The token's signing key is unknown.";
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) return 'The signing keys cannot be fetched; try again.';
  return 'The token is not a valid JWT.';
}

/**
 * The gateway's bearer-token check: `Authorization: Bearer <jwt>` verified against the issuer's
 * JWKS (jose's remote key set: cached, fetched again on an unknown `kid` after the cooldown),
 * with the issuer and audience when configured and only {@link TOKEN_ALGORITHMS}. No header is an
 * anonymous request; anything else that does not verify is an {@link AuthenticationError}. With
 * neither `jwksUrl` nor `keys` every token is refused: there is nothing to verify it with.
 */
export function createAuthenticate(options: TokenOptions): Authenticate {
  const verify = createVerifyAuthorization(options);
  return async (req) => (await verify(req.headers.authorization))?.identity;
}

/** A verified `Authorization` value: who, and until when (epoch ms, the token's `exp`; undefined when it has none). */
export interface VerifiedAuthorization {
  identity: Identity;
  expiresAt: number | undefined;
}

/**
 * Verifies an `Authorization` value (`Bearer <token>`) as {@link createAuthenticate} does a
 * request's header: undefined when there is none, else the identity and when the token expires
 * (a subscription's stream is closed then); throws {@link AuthenticationError}.
 */
export function createVerifyAuthorization(
  options: TokenOptions,
): (header: string | undefined) => Promise<VerifiedAuthorization | undefined> {
  const keys: JWTVerifyGetKey | undefined =
    options.keys ??
    (options.jwksUrl
      ? createRemoteJWKSet(new URL(options.jwksUrl), {
          cooldownDuration: options.jwksCooldownMs ?? 30_000,
          cacheMaxAge: options.jwksCacheMaxAgeMs ?? 600_000,
        })
      : undefined);
  const verifyOptions = {
    algorithms: TOKEN_ALGORITHMS,
    clockTolerance: options.clockToleranceS ?? 5,
    ...(options.issuer ? { issuer: options.issuer } : {}),
    ...(options.audience ? { audience: options.audience } : {}),
  };
  return async (header) => {
    if (header === undefined || header === '') return undefined;
    const match = /^Bearer[ ]+([A-Za-z0-9._~+/=-]+)[ ]*$/i.exec(header);
    if (!match) throw new AuthenticationError('The Authorization header must be "Bearer <token>".');
    if (!keys) throw new AuthenticationError('This gateway verifies no tokens (JWKS_URL is not set): send the request without one.');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(match[1] as string, keys, verifyOptions));
    } catch (err) {
      throw new AuthenticationError(reasonOf(err));
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') throw new AuthenticationError('The token names no subject ("sub").');
    return {
      identity: { sub: payload.sub, roles: stringList(payload.roles), scopes: scopesOf(payload) },
      expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : undefined,
    };
  };
}
