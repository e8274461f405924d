import { randomUUID } from 'node:crypto';
import { SEED_ADMIN, chunks, type SeedSizes, seedUsers } from '@shop/seed';
import { appendEvents } from '@shop/events';
import { ADMIN_ROLE, DomainError, type EventSink, notFound, quote } from '@shop/server';
import type { Generated, Kysely, Store } from '@shop/store';
import type { RefreshTokenTable } from './sessions';
import type { SigningKeyTable } from './keys';

/** accounts' tables, as the query builder sees them. */
export interface AccountsDB {
  users: {
    id: string;
    name: string;
    email: string;
    created_at: string;
    /** argon2id (PHC string); null: the user cannot sign in (created by `createUser`). */
    password_hash: string | null;
    /** Space-separated roles beyond `customer` (see `parseRoles`). */
    roles: Generated<string>;
  };
  refresh_tokens: RefreshTokenTable;
  signing_keys: SigningKeyTable;
}

export interface UserRow {
  id: string;
  name: string;
  email: string;
  createdAt: string;
}

/** What sign-in reads of a user: never part of a `UserRow`, so no resolver can return it. */
export interface Credentials {
  user: UserRow;
  passwordHash: string | null;
  roles: string;
}

type UserRecord = Pick<AccountsDB['users'], 'id' | 'name' | 'email' | 'created_at'>;

const toUser = (r: UserRecord): UserRow => ({ id: r.id, name: r.name, email: r.email, createdAt: r.created_at });

function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e.code === '23505' || e.code === 'SQLITE_CONSTRAINT_UNIQUE' || /UNIQUE constraint/.test(e.message ?? '');
}

/** The only code that reads or writes accounts' store. */
export class UsersRepository {
  constructor(
    private readonly store: Store<AccountsDB>,
    private readonly events: EventSink,
    /** The seed users' password hash (one for all: the development password), made only when seeding. */
    private readonly seedPasswordHash: () => Promise<string | null> = async () => null,
  ) {}

  /** One round trip for any number of ids; the result follows `ids`, null where missing. */
  async byIds(ids: readonly string[]): Promise<(UserRow | null)[]> {
    if (ids.length === 0) return [];
    const rows = await this.store.db
      .selectFrom('users')
      .select(['id', 'name', 'email', 'created_at'])
      .where('id', 'in', [...new Set(ids)])
      .execute();
    const found = new Map(rows.map((r) => [r.id, toUser(r)]));
    return ids.map((id) => found.get(id) ?? null);
  }

  /** Up to `limit` users with id greater than `after`, in id order. */
  async list(limit: number, after?: string): Promise<UserRow[]> {
    let q = this.store.db.selectFrom('users').select(['id', 'name', 'email', 'created_at']).orderBy('id').limit(limit);
    if (after !== undefined) q = q.where('id', '>', after);
    return (await q.execute()).map(toUser);
  }

  async count(): Promise<number> {
    const row = await this.store.db
      .selectFrom('users')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** A user's sign-in details by (normalised) email, or undefined when no user has it. */
  async credentialsByEmail(email: string): Promise<Credentials | undefined> {
    const r = await this.store.db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst();
    return r && { user: toUser(r), passwordHash: r.password_hash, roles: r.roles };
  }

  /** A user's stored roles (see `parseRoles`), or undefined when there is no such user. */
  async rolesOf(id: string): Promise<string | undefined> {
    const r = await this.store.db.selectFrom('users').select('roles').where('id', '=', id).executeTakeFirst();
    return r?.roles;
  }

  /**
   * A new user; with `passwordHash` (sign-up) the user can sign in. A taken email is CONFLICT at
   * `emailField`, the argument the caller gave it in.
   */
  async create(input: { name: string; email: string; passwordHash?: string }, emailField = 'input.email'): Promise<UserRow> {
    const row = {
      id: randomUUID(),
      name: input.name,
      email: input.email,
      created_at: new Date().toISOString(),
      password_hash: input.passwordHash ?? null,
    };
    try {
      await this.store.db.transaction().execute(async (trx) => {
        await trx.insertInto('users').values(row).execute();
        await appendEvents(trx as unknown as Kysely<never>, this.events.source, [
          { type: 'UserCreated', aggregateId: row.id, payload: { id: row.id, name: row.name } },
        ]);
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new DomainError('CONFLICT', `email ${quote(input.email)} is already registered`, emailField);
      throw err;
    }
    this.events.committed();
    return toUser(row);
  }

  async update(id: string, patch: { name?: string | undefined; email?: string | undefined }): Promise<UserRow> {
    const values: { name?: string; email?: string } = {};
    if (patch.name !== undefined) values.name = patch.name;
    if (patch.email !== undefined) values.email = patch.email;
    try {
      await this.store.db.transaction().execute(async (trx) => {
        const before = await trx.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
        if (!before) throw notFound('User', id);
        const changed = Object.entries(values).some(([k, v]) => before[k as keyof typeof values] !== v);
        if (!changed) return;
        await trx.updateTable('users').set(values).where('id', '=', id).execute();
        // The payload carries the public fields only: an email is not every service's business.
        const after = { ...before, ...values };
        await appendEvents(trx as unknown as Kysely<never>, this.events.source, [
          { type: 'UserUpdated', aggregateId: id, payload: { id, name: after.name } },
        ]);
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw new DomainError('CONFLICT', `email ${quote(patch.email)} is already registered`, 'input.email');
      throw err;
    }
    this.events.committed();
    const [user] = await this.byIds([id]);
    if (!user) throw notFound('User', id);
    return user;
  }

  /**
   * Inserts the deterministic seed users when the table is empty, and the development admin
   * (`SEED_ADMIN`) when it is missing, also from a store seeded before it existed. Idempotent: a
   * second run inserts nothing. Returns how many users it inserted.
   */
  async seed(sizes: SeedSizes): Promise<number> {
    let n = 0;
    // One argon2id hash for everyone seeded, made only when someone is.
    let hash: Promise<string | null> | undefined;
    const passwordHash = () => (hash ??= this.seedPasswordHash());
    if ((await this.count()) === 0) {
      const seedHash = await passwordHash();
      await this.store.db.transaction().execute(async (trx) => {
        for (const batch of chunks(seedUsers(sizes), 500)) {
          await trx
            .insertInto('users')
            .values(batch.map((u) => ({ id: u.id, name: u.name, email: u.email, created_at: u.createdAt, password_hash: seedHash })))
            .execute();
          n += batch.length;
        }
      });
    }
    return n + (await this.seedAdmin(passwordHash));
  }

  /** The development admin, unless a user with its id is there already (whatever its roles now: an operator may have changed them). */
  private async seedAdmin(passwordHash: () => Promise<string | null>): Promise<number> {
    const existing = await this.store.db.selectFrom('users').select('id').where('id', '=', SEED_ADMIN.id).executeTakeFirst();
    if (existing) return 0;
    const admin = SEED_ADMIN;
    const inserted = await this.store.db
      .insertInto('users')
      .values({
        id: admin.id,
        name: admin.name,
        email: admin.email,
        created_at: admin.createdAt,
        password_hash: await passwordHash(),
        roles: `customer ${ADMIN_ROLE}`,
      })
      // Another instance seeding the same store at the same moment: one of them inserts it.
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    return Number(inserted.numInsertedOrUpdatedRows ?? 0);
  }
}
