import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Store } from '@shop/store';
import type { AccountsDB } from './repository';

/** A refresh token as stored: its SHA-256, never the token itself. */
export interface RefreshTokenTable {
  token_hash: string;
  family: string;
  user_id: string;
  created_at: string;
  expires_at: string;
  used_at: string | null;
  revoked_at: string | null;
}

/** A refresh token handed to a client, with when it stops working. */
export interface IssuedRefreshToken {
  token: string;
  expiresAt: Date;
}

/** Why a refresh token was refused. */
export type RefreshRefusal = 'unknown' | 'expired' | 'revoked' | 'reused';

// 32 random bytes: nothing to guess, so a fast hash is enough (argon2 is for what people choose).
const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

/**
 * Refresh tokens (opaque, random, stored hashed). Each is used once: `rotate` spends it and issues
 * its successor in the same family; spending one twice (a stolen copy, or the client's) revokes the
 * family, so whoever holds the newer token is signed out too and must sign in again.
 */
export class SessionsRepository {
  constructor(
    private readonly store: Store<AccountsDB>,
    private readonly now: () => number,
  ) {}

  /** A new session's first refresh token. */
  async start(userId: string, ttlS: number): Promise<IssuedRefreshToken> {
    return this.insert(this.store.db, userId, randomUUID(), ttlS);
  }

  /**
   * Spends `token` and returns its user with the successor token, or the reason it was refused.
   * One transaction: of two refreshes with the same token, one wins and the other finds it used.
   */
  async rotate(token: string, ttlS: number): Promise<{ userId: string; next: IssuedRefreshToken } | { refused: RefreshRefusal }> {
    const at = new Date(this.now()).toISOString();
    return this.store.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('refresh_tokens').selectAll().where('token_hash', '=', hashToken(token)).executeTakeFirst();
      if (!row) return { refused: 'unknown' as const };
      if (row.revoked_at !== null) return { refused: 'revoked' as const };
      if (row.used_at !== null) {
        // Reuse: the family is compromised. Revoked in this transaction, which commits: the
        // caller's refusal is thrown after it, not inside it.
        await trx
          .updateTable('refresh_tokens')
          .set({ revoked_at: at })
          .where('family', '=', row.family)
          .where('revoked_at', 'is', null)
          .execute();
        return { refused: 'reused' as const };
      }
      if (row.expires_at <= at) return { refused: 'expired' as const };
      const spent = await trx
        .updateTable('refresh_tokens')
        .set({ used_at: at })
        .where('token_hash', '=', row.token_hash)
        .where('used_at', 'is', null)
        .executeTakeFirst();
      if (Number(spent.numUpdatedRows) !== 1) return { refused: 'reused' as const };
      const next = await this.insert(trx, row.user_id, row.family, ttlS);
      return { userId: row.user_id, next };
    });
  }

  /** Ends the session `token` belongs to (its whole family); false when the token is unknown. */
  async revoke(token: string): Promise<boolean> {
    const row = await this.store.db
      .selectFrom('refresh_tokens')
      .select('family')
      .where('token_hash', '=', hashToken(token))
      .executeTakeFirst();
    if (!row) return false;
    await this.store.db
      .updateTable('refresh_tokens')
      .set({ revoked_at: new Date(this.now()).toISOString() })
      .where('family', '=', row.family)
      .where('revoked_at', 'is', null)
      .execute();
    return true;
  }

  private async insert(db: Store<AccountsDB>['db'], userId: string, family: string, ttlS: number): Promise<IssuedRefreshToken> {
    const token = randomBytes(32).toString('base64url');
    const now = this.now();
    const expiresAt = new Date(now + ttlS * 1000);
    await db
      .insertInto('refresh_tokens')
      .values({
        token_hash: hashToken(token),
        family,
        user_id: userId,
        created_at: new Date(now).toISOString(),
        expires_at: expiresAt.toISOString(),
        used_at: null,
        revoked_at: null,
      })
      .execute();
    return { token, expiresAt };
  }
}
