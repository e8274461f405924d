import { randomBytes } from 'node:crypto';
import { hash, verify } from '@node-rs/argon2';

/**
 * The one password every seed user gets, and only seed users (documented in the README). A store
 * seeded for development is not a place for real accounts.
 */
export const DEV_PASSWORD = 'shop-dev-password';

// @node-rs/argon2 hashes with argon2id by default (m=19 MiB, t=2, p=1: OWASP's minimum); its
// Algorithm enum is a const enum, which isolated modules cannot read, so the default is relied on
// and the tests check the `$argon2id$` prefix.

/** An argon2id hash (PHC string, salt included) of `password`. */
export function hashPassword(password: string): Promise<string> {
  return hash(password);
}

let decoy: Promise<string> | undefined;

/**
 * Whether `password` matches `stored`. Without a stored hash (an unknown email, or a user who has
 * no password) a decoy hash is verified all the same, so a wrong email costs what a wrong password
 * costs and the time does not tell which it was.
 */
export async function checkPassword(stored: string | null | undefined, password: string): Promise<boolean> {
  if (!stored) {
    decoy ??= hash(randomBytes(24).toString('base64url'));
    await verify(await decoy, password);
    return false;
  }
  try {
    return await verify(stored, password);
  } catch {
    // A hash the library cannot parse verifies nothing.
    return false;
  }
}
