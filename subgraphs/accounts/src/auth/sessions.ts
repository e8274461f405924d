import { DomainError } from '@shop/server';
import type { SessionsRepository } from '../data/sessions';
import type { UserRow, UsersRepository } from '../data/repository';
import { parseRoles, scopesFor } from './claims';
import { checkPassword, hashPassword } from './passwords';
import type { TokenIssuer } from './tokens';

/** What signing up, signing in and refreshing return. */
export interface AuthResult {
  accessToken: string;
  tokenType: 'Bearer';
  /** Seconds until the access token expires. */
  expiresIn: number;
  refreshToken: string;
  /** When the refresh token expires, ISO 8601. */
  refreshExpiresAt: string;
  user: UserRow;
}

// One message for an unknown email and a wrong password: which one it was is not the caller's to learn.
const wrongCredentials = () => new DomainError('UNAUTHENTICATED', 'The email or password is wrong.');
const refusedRefresh = () => new DomainError('UNAUTHENTICATED', 'The refresh token is not valid: sign in again.');

/** Sign-up, sign-in, refresh and sign-out: accounts' sessions. */
export class Sessions {
  constructor(
    private readonly users: UsersRepository,
    private readonly sessions: SessionsRepository,
    private readonly issuer: TokenIssuer,
  ) {}

  /** A new user who can sign in, signed in. A taken email is CONFLICT (see `UsersRepository.create`). */
  async signUp(input: { email: string; password: string; name: string }): Promise<AuthResult> {
    const user = await this.users.create(
      { name: input.name, email: input.email, passwordHash: await hashPassword(input.password) },
      'email',
    );
    return this.payload(user, 'customer');
  }

  /** UNAUTHENTICATED, the same error in about the same time, for an unknown email and a wrong password. */
  async signIn(input: { email: string; password: string }): Promise<AuthResult> {
    const found = await this.users.credentialsByEmail(input.email);
    const ok = await checkPassword(found?.passwordHash, input.password);
    if (!found || !ok) throw wrongCredentials();
    return this.payload(found.user, found.roles);
  }

  /** Spends `refreshToken` for a new access token and its successor; a used, revoked or expired one is UNAUTHENTICATED. */
  async refresh(refreshToken: string): Promise<AuthResult> {
    const rotated = await this.sessions.rotate(refreshToken, this.issuer.settings.refreshTokenTtlS);
    if ('refused' in rotated) throw refusedRefresh();
    const [user] = await this.users.byIds([rotated.userId]);
    const roles = await this.users.rolesOf(rotated.userId);
    if (!user || roles === undefined) throw refusedRefresh();
    const access = await this.issuer.issue({ sub: user.id, roles: parseRoles(roles), scopes: scopesFor(parseRoles(roles)) });
    return this.shape(user, access, rotated.next);
  }

  /** Ends the session of `refreshToken` (it and its successors stop working); false when it was unknown. */
  signOut(refreshToken: string): Promise<boolean> {
    return this.sessions.revoke(refreshToken);
  }

  private async payload(user: UserRow, storedRoles: string): Promise<AuthResult> {
    const roles = parseRoles(storedRoles);
    const access = await this.issuer.issue({ sub: user.id, roles, scopes: scopesFor(roles) });
    const refresh = await this.sessions.start(user.id, this.issuer.settings.refreshTokenTtlS);
    return this.shape(user, access, refresh);
  }

  private shape(user: UserRow, access: { token: string; expiresIn: number }, refresh: { token: string; expiresAt: Date }): AuthResult {
    return {
      accessToken: access.token,
      tokenType: 'Bearer',
      expiresIn: access.expiresIn,
      refreshToken: refresh.token,
      refreshExpiresAt: refresh.expiresAt.toISOString(),
      user,
    };
  }
}
