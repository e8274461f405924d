import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { type Backend, type GraphQLClient, graphqlClient, testTelemetry } from '@shop/testing';
import { SEED_ADMIN, seedUsers } from '@shop/seed';
import type { StoreLocation } from '@shop/server';
import { DEV_PASSWORD, JWKS_PATH, type Jwks, createAccounts, openAccountsRepository } from '../src/server';
import type { AccountsDB } from '../src/data/repository';
import type { Store } from '@shop/store';

const REPO_ROOT = join(__dirname, '..', '..', '..');
const ISSUER = 'urn:shop:accounts';
const AUDIENCE = 'urn:shop:gateway';

interface Session {
  accessToken: string;
  tokenType: string;
  expiresIn: number;
  refreshToken: string;
  refreshExpiresAt: string;
  user: { id: string; email: string };
}
const SESSION = 'accessToken tokenType expiresIn refreshToken refreshExpiresAt user { id email }';
const SIGN_UP = `mutation ($email: String!, $password: String!, $name: String!) { signUp(email: $email, password: $password, name: $name) { ${SESSION} } }`;
const SIGN_IN = `mutation ($email: String!, $password: String!) { signIn(email: $email, password: $password) { ${SESSION} } }`;
const REFRESH = `mutation ($t: String!) { refresh(refreshToken: $t) { ${SESSION} } }`;
const SIGN_OUT = 'mutation ($t: String!) { signOut(refreshToken: $t) }';

/** A running accounts subgraph, its base URL, store and (for the rotation test) its clock. */
interface Running {
  base: string;
  client: GraphQLClient;
  store: Store<AccountsDB>;
  stop: () => Promise<void>;
}

async function start(location: StoreLocation, auth: Parameters<typeof createAccounts>[0]['auth'] = {}): Promise<Running> {
  const subgraph = await createAccounts({
    telemetry: testTelemetry('accounts'),
    store: location,
    seed: { users: 5, products: 0, reviews: 0 },
    auth,
  });
  const running = await subgraph.listen(0, '127.0.0.1');
  return { base: running.url, client: graphqlClient(`${running.url}/graphql`), store: subgraph.store, stop: () => subgraph.stop() };
}

async function jwksOf(base: string): Promise<Jwks> {
  const res = await fetch(`${base}${JWKS_PATH}`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  return (await res.json()) as Jwks;
}

/** A seed user's email, from the generator (an anonymous caller may not read it back). */
function seedEmail(id: string): string {
  const user = [...seedUsers({ users: 5, products: 0, reviews: 0 })].find((u) => u.id === id);
  if (!user) throw new Error(`no seed user ${id}`);
  return user.email;
}

/**
 * Sign-in (#14, item 1): sign-up, sign-in, refresh rotation, sign-out, the JWKS and key rotation,
 * over SQLite (sign-in.test.ts) and real PostgreSQL (sign-in.int.test.ts).
 * `location` is a store a second process can open too (`npm run token` is run against it).
 */
export function signInSuite(backend: Backend, cliEnv: (location: StoreLocation) => Record<string, string>): void {
  describe(`sign-in in accounts on ${backend.name}`, () => {
    let server: Running;
    let location: StoreLocation;

    beforeAll(async () => {
      location = await backend.location();
      server = await start(location);
    });
    afterAll(async () => {
      await server?.stop();
      await backend.cleanup();
    });

    const mutate = <T>(query: string, variables: Record<string, unknown>) => server.client.query<T>(query, variables);

    /** Verifies `token` with the subgraph's JWKS as published now, the way a gateway would. */
    async function verify(token: string, currentDate?: Date) {
      const jwks = await jwksOf(server.base);
      return jwtVerify(token, createLocalJWKSet(jwks), { issuer: ISSUER, audience: AUDIENCE, algorithms: ['ES256'], currentDate });
    }

    it('signs up: a session whose access token the JWKS verifies, the password stored as argon2id only', async () => {
      const res = await mutate<{ signUp: Session }>(SIGN_UP, { email: ' New@Example.com ', password: 'correct horse', name: 'Newcomer' });
      expect(res.errors).toBeUndefined();
      const session = res.data!.signUp;
      expect(session).toMatchObject({ tokenType: 'Bearer', expiresIn: 900, user: { email: 'new@example.com' } });
      expect(Date.parse(session.refreshExpiresAt) - Date.now()).toBeGreaterThan(29 * 24 * 3600 * 1000);

      const header = decodeProtectedHeader(session.accessToken);
      expect(header).toMatchObject({ alg: 'ES256', typ: 'JWT', kid: expect.any(String) });
      const jwks = await jwksOf(server.base);
      expect(jwks.keys.map((k) => k.kid)).toContain(header.kid);
      // Public halves only.
      for (const key of jwks.keys) expect(key).not.toHaveProperty('d');
      const { payload } = await verify(session.accessToken);
      expect(payload).toMatchObject({ sub: session.user.id, iss: ISSUER, aud: AUDIENCE, roles: ['customer'], scope: '' });
      expect(payload.exp! - payload.iat!).toBe(900);

      const row = await server.store.db
        .selectFrom('users')
        .select('password_hash')
        .where('id', '=', session.user.id)
        .executeTakeFirstOrThrow();
      expect(row.password_hash).toMatch(/^\$argon2id\$/);
      expect(row.password_hash).not.toContain('correct horse');
      const stored = await server.store.db
        .selectFrom('refresh_tokens')
        .select('token_hash')
        .where('user_id', '=', session.user.id)
        .execute();
      expect(stored).toHaveLength(1);
      expect(stored[0]?.token_hash).not.toBe(session.refreshToken);
    });

    it('refuses a taken email (CONFLICT) and a short password (BAD_USER_INPUT), writing nothing', async () => {
      const taken = await mutate(SIGN_UP, { email: 'new@example.com', password: 'another one', name: 'Again' });
      expect(taken.errors?.[0]?.extensions).toMatchObject({ code: 'CONFLICT', field: 'email' });
      const short = await mutate(SIGN_UP, { email: 'short@example.com', password: 'seven77', name: 'Short' });
      expect(short.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'password' });
      const rows = await server.store.db.selectFrom('users').select('id').where('email', '=', 'short@example.com').execute();
      expect(rows).toHaveLength(0);
    });

    it('signs in a seed user with the development password', async () => {
      const email = seedEmail('u00002');
      const res = await mutate<{ signIn: Session }>(SIGN_IN, { email: email.toUpperCase(), password: DEV_PASSWORD });
      expect(res.errors).toBeUndefined();
      expect(res.data!.signIn.user.id).toBe('u00002');
      const { payload } = await verify(res.data!.signIn.accessToken);
      expect(payload).toMatchObject({ sub: 'u00002', roles: ['customer'], scope: '' });
    });

    it('signs in the seeded admin with the development password: role admin, every scope', async () => {
      const res = await mutate<{ signIn: Session }>(SIGN_IN, { email: SEED_ADMIN.email, password: DEV_PASSWORD });
      expect(res.errors).toBeUndefined();
      // Signed in by this very request: the session's own user shows its email though the request is anonymous.
      expect(res.data!.signIn.user).toEqual({ id: SEED_ADMIN.id, email: SEED_ADMIN.email });
      const { payload } = await verify(res.data!.signIn.accessToken);
      expect(payload).toMatchObject({
        sub: SEED_ADMIN.id,
        roles: ['customer', 'admin'],
        scope: 'catalog:write inventory:write orders:admin',
      });
    });

    it('gives a wrong password and an unknown email the same UNAUTHENTICATED error, in similar time', async () => {
      const email = seedEmail('u00003');
      const attempt = async (variables: Record<string, unknown>) => {
        const started = performance.now();
        const res = await mutate<{ signIn: Session }>(SIGN_IN, variables);
        return { ms: performance.now() - started, data: res.data, errors: res.errors };
      };
      const wrong: number[] = [];
      const unknown: number[] = [];
      for (let i = 0; i < 15; i++) {
        const w = await attempt({ email, password: 'not the password' });
        const u = await attempt({ email: `nobody-${i}@example.com`, password: 'not the password' });
        expect(w.data).toBeNull();
        expect(w.errors).toHaveLength(1);
        expect(u.errors).toEqual(w.errors);
        expect(w.errors?.[0]).toMatchObject({ message: 'The email or password is wrong.', extensions: { code: 'UNAUTHENTICATED' } });
        wrong.push(w.ms);
        unknown.push(u.ms);
      }
      // Both verify an argon2id hash; skipping it for an unknown email made that a third as slow.
      // Medians of 15 interleaved pairs, within a factor of 2 either way: a loaded CI machine
      // stretched calls both ways (medians of 7 saw 19 ms against 27, and 25 against 17).
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
      expect(median(unknown)).toBeGreaterThan(median(wrong) * 0.5);
      expect(median(wrong)).toBeGreaterThan(median(unknown) * 0.5);
    });

    it('rotates the refresh token on use: the old one is refused after, and reusing it ends the session', async () => {
      const email = seedEmail('u00004');
      const first = (await mutate<{ signIn: Session }>(SIGN_IN, { email, password: DEV_PASSWORD })).data!.signIn;

      const second = await mutate<{ refresh: Session }>(REFRESH, { t: first.refreshToken });
      expect(second.errors).toBeUndefined();
      const next = second.data!.refresh;
      expect(next.refreshToken).not.toBe(first.refreshToken);
      expect(next.user.id).toBe('u00004');
      expect((await verify(next.accessToken)).payload.sub).toBe('u00004');

      const replay = await mutate(REFRESH, { t: first.refreshToken });
      expect(replay.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
      // The replay revoked the family: the token the refresh issued is refused as well.
      const after = await mutate(REFRESH, { t: next.refreshToken });
      expect(after.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
      const forged = await mutate(REFRESH, { t: 'not-a-token' });
      expect(forged.errors?.[0]).toMatchObject({
        message: 'The refresh token is not valid: sign in again.',
        extensions: { code: 'UNAUTHENTICATED' },
      });
    });

    it('signs out: the refresh token and its successors stop working; an unknown token is false', async () => {
      const email = seedEmail('u00005');
      const session = (await mutate<{ signIn: Session }>(SIGN_IN, { email, password: DEV_PASSWORD })).data!.signIn;
      const other = (await mutate<{ signIn: Session }>(SIGN_IN, { email, password: DEV_PASSWORD })).data!.signIn;
      const refreshed = (await mutate<{ refresh: Session }>(REFRESH, { t: session.refreshToken })).data!.refresh;

      expect((await mutate<{ signOut: boolean }>(SIGN_OUT, { t: refreshed.refreshToken })).data).toEqual({ signOut: true });
      expect((await mutate(REFRESH, { t: refreshed.refreshToken })).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
      // Another session of the same user lives on.
      expect((await mutate(REFRESH, { t: other.refreshToken })).errors).toBeUndefined();
      expect((await mutate<{ signOut: boolean }>(SIGN_OUT, { t: 'unknown' })).data).toEqual({ signOut: false });
    });

    it('prints a token for a seed user with `npm run token`, signed with the key the JWKS publishes', async () => {
      const run = (args: string[], env: Record<string, string> = {}) =>
        spawnSync(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'scripts', 'token.ts'), ...args], {
          cwd: REPO_ROOT,
          encoding: 'utf8',
          env: { ...process.env, NODE_ENV: 'development', ...cliEnv(location), ...env },
        });
      const admin = run(['u00001', '--scope', 'admin']);
      expect(admin.stderr).toBe('');
      expect(admin.status).toBe(0);
      const plain = run(['u00001', '--scope', 'inventory:write']);
      expect(plain.status).toBe(0);
      const production = run(['u00001'], { NODE_ENV: 'production' });
      expect(production.status).toBe(1);
      expect(production.stderr).toMatch(/refused with NODE_ENV=production/);
      const nobody = run(['u99999']);
      expect(nobody.status).toBe(1);
      expect(nobody.stderr).toMatch(/no user "u99999"/);
      expect((await verify(admin.stdout.trim())).payload).toMatchObject({
        sub: 'u00001',
        roles: ['customer', 'admin'],
        scope: 'catalog:write inventory:write orders:admin',
      });
      expect((await verify(plain.stdout.trim())).payload).toMatchObject({ sub: 'u00001', roles: ['customer'], scope: 'inventory:write' });
    });

    it('signs with the key accounts signs with, from its store (openAccountsRepository)', async () => {
      const { accounts, close } = await openAccountsRepository({ telemetry: testTelemetry('accounts'), store: location });
      try {
        const { token } = await accounts.issuer.issue({ sub: 'u00003', roles: ['customer'], scopes: [] });
        const served = (await jwksOf(server.base)).keys.map((k) => k.kid);
        expect(served).toContain(decodeProtectedHeader(token).kid);
        expect((await verify(token)).payload.sub).toBe('u00003');
      } finally {
        await close();
      }
    });
  });

  // A store of its own: this test moves its clock without disturbing the suite above.
  describe(`signing key rotation on ${backend.name}`, () => {
    let server: Running;
    let clock = Date.now();
    beforeAll(async () => {
      server = await start(await backend.location(), { now: () => clock, accessTokenTtlS: 600, signingKeyMaxAgeS: 3600 });
    });
    afterAll(async () => {
      await server?.stop();
      await backend.cleanup();
    });

    const signIn = async () => {
      const email = seedEmail('u00001');
      const res = await server.client.query<{ signIn: Session }>(SIGN_IN, { email, password: DEV_PASSWORD });
      expect(res.errors).toBeUndefined();
      return res.data!.signIn.accessToken;
    };
    const verifyAt = async (token: string, at: number) =>
      jwtVerify(token, createLocalJWKSet(await jwksOf(server.base)), { issuer: ISSUER, audience: AUDIENCE, currentDate: new Date(at) });

    it('a new key signs once the old one is too old; the old key stays published until its tokens expire', async () => {
      const issuedAt = clock;
      const old = await signIn();
      const oldKid = decodeProtectedHeader(old).kid;
      // Within its age the key keeps signing.
      clock += 3599 * 1000;
      expect(decodeProtectedHeader(await signIn()).kid).toBe(oldKid);

      clock += 2 * 1000;
      const fresh = await signIn();
      const freshKid = decodeProtectedHeader(fresh).kid;
      expect(freshKid).not.toBe(oldKid);
      expect((await jwksOf(server.base)).keys.map((k) => k.kid).sort()).toEqual([oldKid, freshKid].sort());
      // Nobody is signed out: a token of the retired key still verifies (at a time it is valid).
      expect((await verifyAt(old, issuedAt + 1000)).payload.sub).toBe('u00001');
      expect((await verifyAt(fresh, clock + 1000)).payload.sub).toBe('u00001');

      // One access token lifetime after the rotation, the retired key is gone from the JWKS.
      clock += 601 * 1000;
      expect((await jwksOf(server.base)).keys.map((k) => k.kid)).toEqual([freshKid]);
      await expect(verifyAt(old, issuedAt + 1000)).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' });
    });
  });
}
