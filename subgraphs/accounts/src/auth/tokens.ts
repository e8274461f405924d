import { randomUUID } from 'node:crypto';
import { type JWK, SignJWT, exportJWK, generateKeyPair, importJWK } from 'jose';
import type { AccountsAuthConfig } from '@shop/config';
import type { SigningKeyRow, SigningKeysRepository } from '../data/keys';
import type { Claims } from './claims';

/** ES256: ECDSA on P-256, small keys and signatures, verified by every JOSE library. */
export const SIGNING_ALG = 'ES256';

/** How long the keys read from the store are trusted before being read again (another instance, or `npm run token`, may have rotated). */
const KEY_CACHE_MS = 30_000;

/** An access token and its lifetime, as `signIn` returns them. */
export interface AccessToken {
  token: string;
  /** Seconds until it expires. */
  expiresIn: number;
}

/** A JSON Web Key Set: the public half of every key whose tokens may still be live. */
export interface Jwks {
  keys: JWK[];
}

type SigningKey = Awaited<ReturnType<typeof importJWK>>;

/**
 * Signs access tokens with accounts' current key and publishes the public keys (JWKS). The keys
 * live in accounts' store (both modes), so every instance and `npm run token` sign with the same
 * one. A key older than `signingKeyMaxAgeS` is replaced when a token is next signed; the retired
 * key stays in the JWKS for `accessTokenTtlS` more, until the last token it signed has expired,
 * so a rotation signs nobody out.
 */
export class TokenIssuer {
  private cached: { at: number; keys: SigningKeyRow[] } | undefined;
  private rotating: Promise<SigningKeyRow> | undefined;
  private readonly imported = new Map<string, Promise<SigningKey>>();

  constructor(
    private readonly keys: SigningKeysRepository,
    readonly settings: AccountsAuthConfig,
    private readonly now: () => number = Date.now,
  ) {}

  /** A signed access token for `claims`: `sub`, `iss`, `aud`, `iat`, `exp`, `jti`, `roles`, `scope`; `kid` in the header. */
  async issue(claims: Claims, ttlS?: number): Promise<AccessToken> {
    const key = await this.signingKey();
    const iat = Math.floor(this.now() / 1000);
    // A shorter life than ACCESS_TOKEN_TTL_S: tests of what happens at expiry (never longer).
    const ttl = ttlS !== undefined ? Math.min(ttlS, this.settings.accessTokenTtlS) : this.settings.accessTokenTtlS;
    const token = await new SignJWT({ roles: claims.roles, scope: claims.scopes.join(' ') })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
      .setSubject(claims.sub)
      .setIssuer(this.settings.issuer)
      .setAudience(this.settings.audience)
      .setIssuedAt(iat)
      .setExpirationTime(iat + ttl)
      .setJti(randomUUID())
      .sign(await this.privateKey(key));
    return { token, expiresIn: ttl };
  }

  /** The public keys of the signing key and of every retired key whose tokens may still be live. */
  async jwks(): Promise<Jwks> {
    // Never an empty set: the gateway may fetch it before anyone has signed in.
    await this.signingKey();
    const keys = await this.liveKeys();
    return { keys: keys.map((k) => ({ ...(JSON.parse(k.publicJwk) as JWK), kid: k.kid, alg: k.alg, use: 'sig' })) };
  }

  /** Makes a new key the signing key now; the previous one stays published until its tokens expire. */
  rotate(): Promise<SigningKeyRow> {
    this.rotating ??= this.createKey().finally(() => {
      this.rotating = undefined;
    });
    return this.rotating;
  }

  /** The key that signs: the newest unretired one, replaced first when missing or too old. */
  private async signingKey(): Promise<SigningKeyRow> {
    const current = (await this.liveKeys()).find((k) => k.retiredAt === null);
    if (current && this.now() - Date.parse(current.createdAt) < this.settings.signingKeyMaxAgeS * 1000) return current;
    return this.rotate();
  }

  private async liveKeys(): Promise<SigningKeyRow[]> {
    const now = this.now();
    if (this.cached && Math.abs(now - this.cached.at) < KEY_CACHE_MS) return this.cached.keys;
    // A key retired earlier than one token lifetime ago signed nothing that is still valid.
    const keys = await this.keys.live(new Date(now - this.settings.accessTokenTtlS * 1000).toISOString());
    this.cached = { at: now, keys };
    return keys;
  }

  private async createKey(): Promise<SigningKeyRow> {
    const pair = await generateKeyPair(SIGNING_ALG, { extractable: true });
    const row = {
      kid: randomUUID(),
      alg: SIGNING_ALG,
      privateJwk: JSON.stringify(await exportJWK(pair.privateKey)),
      publicJwk: JSON.stringify(await exportJWK(pair.publicKey)),
      createdAt: new Date(this.now()).toISOString(),
    };
    await this.keys.activate(row);
    this.cached = undefined;
    return { ...row, retiredAt: null };
  }

  private privateKey(key: SigningKeyRow): Promise<SigningKey> {
    let imported = this.imported.get(key.kid);
    if (!imported) {
      imported = importJWK(JSON.parse(key.privateJwk) as JWK, key.alg);
      this.imported.set(key.kid, imported);
    }
    return imported;
  }
}
