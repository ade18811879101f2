import { Inject, Injectable, Logger } from '@nestjs/common';
import { CLOCK, type Clock } from '../common/di.js';
import { ApiError, notFound } from '../common/errors.js';
import { newSecret, sha256 } from '../common/tokens.js';
import type { AuthContext } from '../accounts/auth.types.js';
import { EnvironmentsRepository, type EnvironmentRow } from '../environments/environments.repository.js';
import { GatewaySessions } from '../environments/gateway-sessions.js';
import { SharesRepository, type ShareRow } from './shares.repository.js';
import { TerminalsService, type Ticket } from './terminals.service.js';

export interface ShareDto {
  id: string;
  environmentId: string;
  sessionId: string;
  createdAt: string;
  expiresAt: string;
}

/**
 * What revoking did. `viewersCutOff` is false only when the environment runs but its gateway
 * could not be told: the link is revoked all the same, but someone already watching may go on
 * until the link's expiry.
 */
export interface RevokeResult {
  revoked: true;
  viewersCutOff: boolean;
  warning?: string;
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
 * Tickets carry the share's id and expiry, so the gateway closes viewers when the link expires,
 * and when told of a revoke.
 */
@Injectable()
export class SharesService {
  constructor(
    @Inject(SharesRepository) private readonly shares: SharesRepository,
    @Inject(EnvironmentsRepository) private readonly envs: EnvironmentsRepository,
    @Inject(TerminalsService) private readonly terminals: TerminalsService,
    @Inject(GatewaySessions) private readonly gateways: GatewaySessions,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  private readonly logger = new Logger(SharesService.name);

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

  /**
   * Postgres first (no new tickets from then on, whatever the gateway does), then the gateway, to
   * close whoever is watching. A stopped environment has nobody watching: its sessions went with
   * its gateway, and a started one only admits viewers with fresh tickets.
   */
  async revoke(ctx: AuthContext, environmentId: string, shareId: string): Promise<RevokeResult> {
    const env = await this.owned(ctx, environmentId);
    const share = await this.shares.revoke(environmentId, shareId, this.clock.now());
    if (!share) throw notFound('share', shareId);
    if (env.state !== 'ready' || !env.gateway_url) return { revoked: true, viewersCutOff: true };
    try {
      await this.gateways.revokeShare(env, { id: share.id, expiresAt: share.expires_at });
      return { revoked: true, viewersCutOff: true };
    } catch (err) {
      const why = (err as Error).message;
      this.logger.warn(`share ${share.id} revoked, but the gateway of ${env.id} was not reached: ${why}`);
      return {
        revoked: true,
        viewersCutOff: false,
        warning: `the link is revoked, but the environment did not answer (${why}): anyone watching now may keep watching until ${share.expires_at.toISOString()}`,
      };
    }
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
      .sharedTicket(viewer, share.environment_id, share.session_id, {
        id: share.id,
        expiresAt: share.expires_at,
      })
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

  private async owned(ctx: AuthContext, environmentId: string): Promise<EnvironmentRow> {
    const env = await this.envs.findOwned(ctx.userId, environmentId);
    if (!env || env.destroyed_at) throw notFound('environment', environmentId);
    return env;
  }
}
