import { Inject, Injectable } from '@nestjs/common';
import type { Config } from '../config.js';
import { CLOCK, CONFIG, type Clock } from '../common/di.js';
import { ApiError, unauthorized } from '../common/errors.js';
import { newSecret, sha256 } from '../common/tokens.js';
import type { AuthContext, Scope } from './auth.types.js';
import { verifyPassword } from './passwords.js';
import { LoginRateLimiter } from './rate-limiter.js';
import { SessionsRepository } from './sessions.repository.js';
import { TokensRepository } from './tokens.repository.js';
import { UsersRepository, type UserRow } from './users.repository.js';

const ALL_SCOPES: Scope[] = ['read', 'write', 'admin'];

@Injectable()
export class AuthService {
  private readonly limiter: LoginRateLimiter;

  constructor(
    @Inject(UsersRepository) private readonly users: UsersRepository,
    @Inject(TokensRepository) private readonly tokens: TokensRepository,
    @Inject(SessionsRepository) private readonly sessions: SessionsRepository,
    @Inject(CONFIG) private readonly config: Config,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {
    this.limiter = new LoginRateLimiter(config.loginRateLimit, config.loginRateWindowSeconds * 1000, clock);
  }

  async login(
    email: string,
    password: string,
    clientIp: string,
  ): Promise<{ user: UserRow; session: string; expiresAt: Date }> {
    const key = `${clientIp}|${email.trim().toLowerCase()}`;
    const wait = this.limiter.hit(key);
    if (wait > 0)
      throw new ApiError(429, 'rate_limited', 'too many sign-in attempts', `wait ${wait} s and try again`, {
        retryAfterSeconds: wait,
      });
    const user = await this.users.findByEmail(email.trim());
    const ok = await verifyPassword(user?.password_hash ?? null, password);
    if (!user || !ok)
      throw new ApiError(
        401,
        'invalid_credentials',
        'wrong email or password',
        'check both; an admin can reset your password',
      );
    this.limiter.reset(key);
    const { session, expiresAt } = await this.startSession(user.id);
    return { user, session, expiresAt };
  }

  async startSession(userId: string): Promise<{ session: string; expiresAt: Date }> {
    const s = newSecret('ses');
    const expiresAt = new Date(this.clock.now().getTime() + this.config.sessionTtlHours * 3600_000);
    await this.sessions.create(userId, s.hash, expiresAt);
    return { session: s.secret, expiresAt };
  }

  async logout(ctx: AuthContext): Promise<void> {
    if (ctx.sessionId) await this.sessions.delete(ctx.sessionId);
  }

  /**
   * Whether what a long-lived connection (a live socket) authenticated with still stands: the
   * session not ended or expired, the token not revoked or expired, the user not deleted.
   */
  async stillValid(ctx: AuthContext): Promise<boolean> {
    const now = this.clock.now();
    const credential =
      ctx.via === 'session'
        ? ctx.sessionId !== undefined && (await this.sessions.isActive(ctx.sessionId, now))
        : ctx.tokenId !== undefined && (await this.tokens.isActive(ctx.tokenId, now));
    return credential && (await this.users.findById(ctx.userId)) !== undefined;
  }

  /** Resolves a bearer token or a session cookie to the caller; anything else is a 401. */
  async authenticate(bearer: string | undefined, cookie: string | undefined): Promise<AuthContext> {
    const now = this.clock.now();
    if (bearer) {
      const token = await this.tokens.findActiveByHash(sha256(bearer), now);
      if (!token) throw unauthorized('token is invalid, expired or revoked');
      const user = await this.users.findById(token.user_id);
      if (!user) throw unauthorized('token is invalid, expired or revoked');
      await this.tokens.touch(token.id, now);
      const scopes = token.scopes.filter((s): s is Scope => (ALL_SCOPES as string[]).includes(s));
      return { userId: user.id, email: user.email, role: user.role, via: 'token', tokenId: token.id, scopes };
    }
    if (cookie) {
      const session = await this.sessions.findActiveByHash(sha256(cookie), now);
      const user = session && (await this.users.findById(session.user_id));
      if (!session || !user) throw unauthorized('your session has ended');
      const scopes: Scope[] = user.role === 'admin' ? ALL_SCOPES : ['read', 'write'];
      return {
        userId: user.id,
        email: user.email,
        role: user.role,
        via: 'session',
        sessionId: session.id,
        scopes,
      };
    }
    throw unauthorized();
  }
}
