import { Inject, Injectable } from '@nestjs/common';
import { CLOCK, type Clock } from '../common/di.js';
import { ApiError, notFound } from '../common/errors.js';
import { newSecret, sha256 } from '../common/tokens.js';
import type { AuthContext } from '../accounts/auth.types.js';
import { EnvironmentsRepository } from '../environments/environments.repository.js';
import { SharesRepository, type ShareRow } from './shares.repository.js';
import { TerminalsService, type Ticket } from './terminals.service.js';

export interface ShareDto {
  id: string;
  environmentId: string;
  sessionId: string;
  createdAt: string;
  expiresAt: string;
}

const toDto = (s: ShareRow): ShareDto => ({
  id: s.id,
  environmentId: s.environment_id,
  sessionId: s.session_id,
  createdAt: s.created_at.toISOString(),
  expiresAt: s.expires_at.toISOString(),
});

/**
 * Read-only links to a terminal session. The owner makes one; anyone signed in to this Berth who
 * has the link gets observer tickets under their own name (the gateway's session list shows
 * them) until it expires or the owner revokes it. Observers' keystrokes never reach the shell.
 */
@Injectable()
export class SharesService {
  constructor(
    @Inject(SharesRepository) private readonly shares: SharesRepository,
    @Inject(EnvironmentsRepository) private readonly envs: EnvironmentsRepository,
    @Inject(TerminalsService) private readonly terminals: TerminalsService,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  async create(
    ctx: AuthContext,
    environmentId: string,
    sessionId: string,
    minutes: number,
  ): Promise<{ share: ShareDto; token: string; path: string }> {
    await this.owned(ctx, environmentId);
    const { secret, hash } = newSecret('shr');
    const row = await this.shares.insert({
      environmentId,
      sessionId,
      tokenHash: hash,
      createdBy: ctx.userId,
      expiresAt: new Date(this.clock.now().getTime() + minutes * 60_000),
    });
    return { share: toDto(row), token: secret, path: `/share/?token=${encodeURIComponent(secret)}` };
  }

  async list(ctx: AuthContext, environmentId: string): Promise<{ items: ShareDto[] }> {
    await this.owned(ctx, environmentId);
    return { items: (await this.shares.live(environmentId, this.clock.now())).map(toDto) };
  }

  async revoke(ctx: AuthContext, environmentId: string, shareId: string): Promise<{ revoked: true }> {
    await this.owned(ctx, environmentId);
    if (!(await this.shares.revoke(environmentId, shareId, this.clock.now())))
      throw notFound('share', shareId);
    return { revoked: true };
  }

  /** What a viewer's browser asks for each time it (re)connects to the shared session. */
  async ticket(
    viewer: AuthContext,
    token: string,
  ): Promise<{ ticket: Ticket; environment: { id: string; name: string }; sharedBy: string }> {
    const share = await this.shares.byToken(sha256(token));
    if (!share || share.revoked_at)
      throw new ApiError(
        404,
        'share_not_found',
        'this read-only link does not exist or was revoked',
        'ask the person who shared the terminal for a new link',
      );
    if (share.expires_at <= this.clock.now())
      throw new ApiError(
        410,
        'share_expired',
        `this read-only link expired at ${share.expires_at.toISOString()}`,
        'ask the person who shared the terminal for a new link',
      );
    const ticket = await this.terminals
      .sharedTicket(viewer, share.environment_id, share.session_id)
      .catch((err) => {
        // The owner's hint (start it yourself) is no use to a viewer, who cannot.
        if (err instanceof ApiError && err.code === 'environment_not_ready')
          throw new ApiError(
            409,
            err.code,
            err.message,
            `ask ${share.shared_by}, who shared it, to start it; then open the link again`,
          );
        throw err;
      });
    const env = await this.envs.findById(share.environment_id);
    return {
      ticket,
      environment: { id: share.environment_id, name: env?.name ?? '' },
      sharedBy: share.shared_by,
    };
  }

  private async owned(ctx: AuthContext, environmentId: string): Promise<void> {
    const env = await this.envs.findOwned(ctx.userId, environmentId);
    if (!env || env.destroyed_at) throw notFound('environment', environmentId);
  }
}
