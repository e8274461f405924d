import type { Store } from '@shop/store';
import type { AccountsDB } from './repository';

/** A signing key as stored: JWKs as JSON text, the private one included (see the README). */
export interface SigningKeyTable {
  kid: string;
  alg: string;
  private_jwk: string;
  public_jwk: string;
  created_at: string;
  /** When a newer key took over signing; null for the key that signs. */
  retired_at: string | null;
}

export interface SigningKeyRow {
  kid: string;
  alg: string;
  privateJwk: string;
  publicJwk: string;
  createdAt: string;
  retiredAt: string | null;
}

/** accounts' signing keys, newest first. */
export class SigningKeysRepository {
  constructor(private readonly store: Store<AccountsDB>) {}

  /** The signing key and the retired keys retired after `retiredSince` (their tokens may still be live). */
  async live(retiredSince: string): Promise<SigningKeyRow[]> {
    const rows = await this.store.db
      .selectFrom('signing_keys')
      .selectAll()
      .where((eb) => eb.or([eb('retired_at', 'is', null), eb('retired_at', '>', retiredSince)]))
      .orderBy('created_at', 'desc')
      .orderBy('kid')
      .execute();
    return rows.map((r) => ({
      kid: r.kid,
      alg: r.alg,
      privateJwk: r.private_jwk,
      publicJwk: r.public_jwk,
      createdAt: r.created_at,
      retiredAt: r.retired_at,
    }));
  }

  /** Adds `key` as the signing key and retires every other one at its creation time, atomically. */
  async activate(key: Omit<SigningKeyRow, 'retiredAt'>): Promise<void> {
    await this.store.db.transaction().execute(async (trx) => {
      await trx.updateTable('signing_keys').set({ retired_at: key.createdAt }).where('retired_at', 'is', null).execute();
      await trx
        .insertInto('signing_keys')
        .values({
          kid: key.kid,
          alg: key.alg,
          private_jwk: key.privateJwk,
          public_jwk: key.publicJwk,
          created_at: key.createdAt,
          retired_at: null,
        })
        .execute();
    });
  }
}
