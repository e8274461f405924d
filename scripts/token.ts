// `npm run token`: prints an access token for a user (a seed user, in development), signed with
// accounts' current key exactly as signIn signs: the same store (ACCOUNTS_DATABASE_URL, or the
// SQLite file under DATA_DIR), the same settings (JWT_ISSUER, JWT_AUDIENCE, ACCESS_TOKEN_TTL_S).
// The user's stored roles give the claims; `--scope` adds to them for trying things out.
//
//   npm run token -- u00001                          the user's own roles and scopes
//   npm run token -- u00001 --scope admin            role admin, every scope
//   npm run token -- u00001 --scope catalog:write    one scope more (repeat --scope for several)
//
// Refused with NODE_ENV=production: there, tokens come from signIn only.
// Exit code: 0 printed, 1 failed (no such user, store unreachable), 2 usage error.
import { SCOPES, type Role, type Scope, openAccountsRepository, parseRoles, scopesFor } from '@shop/accounts';
import { loadAccountsAuthConfig, loadSubgraphConfig } from '@shop/config';
import { redact, sqliteFileFor } from '@shop/store';
import { createTelemetry } from '@shop/telemetry';
import { UsageError, parseCli, runCli } from './lib/cli';

const USAGE = `usage: npm run token -- <user id> [--scope admin|${SCOPES.join('|')}]...`;

const isScope = (value: string): value is Scope => (SCOPES as readonly string[]).includes(value);

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(USAGE, {
    args: argv,
    allowPositionals: true,
    options: { scope: { type: 'string', multiple: true } },
  });
  const [userId, ...extra] = positionals;
  if (userId === undefined || extra.length > 0) throw new UsageError(`expected one user id\n${USAGE}`);
  const asked = values.scope ?? [];
  const unknown = asked.filter((s) => s !== 'admin' && !isScope(s));
  if (unknown.length > 0) throw new UsageError(`unknown scope ${unknown.join(', ')}\n${USAGE}`);

  const config = loadSubgraphConfig('accounts', 4001);
  if (config.nodeEnv === 'production') throw new Error('refused with NODE_ENV=production: tokens come from signIn there');
  const telemetry = createTelemetry({ service: 'accounts', logLevel: 'warn' });
  const store = config.databaseUrl ? { postgresUrl: config.databaseUrl } : { sqlitePath: sqliteFileFor(config.dataDir, 'accounts') };
  const { accounts, close } = await openAccountsRepository({ telemetry, store, auth: loadAccountsAuthConfig() });
  try {
    const stored = await accounts.users.rolesOf(userId);
    if (stored === undefined) {
      const where = config.databaseUrl ? redact(config.databaseUrl) : store.sqlitePath;
      throw new Error(`no user ${JSON.stringify(userId)} in ${where} (start the stack once to seed it)`);
    }
    const roles: Role[] = parseRoles(stored);
    if (asked.includes('admin') && !roles.includes('admin')) roles.push('admin');
    const scopes = new Set<Scope>(scopesFor(roles));
    for (const s of asked) if (isScope(s)) scopes.add(s);
    const { token } = await accounts.issuer.issue({ sub: userId, roles, scopes: [...scopes] });
    process.stdout.write(`${token}\n`);
  } finally {
    await close();
  }
  return 0;
}

runCli('token', main, { exit: true });
