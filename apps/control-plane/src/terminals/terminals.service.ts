import { Inject, Injectable } from '@nestjs/common';
import type { Config } from '../config.js';
import { CLOCK, CONFIG, type Clock } from '../common/di.js';
import { ApiError, notFound } from '../common/errors.js';
import type { AuthContext } from '../accounts/auth.types.js';
import { EnvironmentsRepository, type EnvironmentRow } from '../environments/environments.repository.js';
import { IdentityService } from '../identity/identity.service.js';
import { GatewaySessions } from '../environments/gateway-sessions.js';

export const TERMINAL_PATH = '/terminal';
const TICKET_TTL_SECONDS = 60;

export interface Ticket {
  url: string;
  token: string;
  sessionId: string | null;
  role: 'driver' | 'observer';
  expiresAt: string;
}

/**
 * Terminal tickets: short-lived EdDSA tokens the gateway verifies offline. The control plane
 * never carries a keystroke; it only says who may connect to which environment, as what.
 */
@Injectable()
export class TerminalsService {
  constructor(
    @Inject(EnvironmentsRepository) private readonly envs: EnvironmentsRepository,
    @Inject(IdentityService) private readonly identity: IdentityService,
    @Inject(GatewaySessions) private readonly gateways: GatewaySessions,
    @Inject(CONFIG) private readonly config: Config,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  async newSession(ctx: AuthContext, environmentId: string): Promise<Ticket> {
    return this.ticket(ctx, await this.reachable(ctx, environmentId), null, 'driver');
  }

  async attach(
    ctx: AuthContext,
    environmentId: string,
    sessionId: string,
    role: 'driver' | 'observer',
  ): Promise<Ticket> {
    return this.ticket(ctx, await this.reachable(ctx, environmentId), sessionId, role);
  }

  /** The gateway's own list: who is attached to which session, as what. */
  async list(ctx: AuthContext, environmentId: string): Promise<{ sessions: unknown[] }> {
    const env = await this.reachable(ctx, environmentId);
    try {
      return { sessions: await this.gateways.list(env) };
    } catch (err) {
      throw new ApiError(
        502,
        'gateway_unreachable',
        `the environment's gateway did not answer: ${(err as Error).message}`,
        'check the environment (berth env show); it may have stopped',
      );
    }
  }

  /**
   * An observer ticket for someone the owner shared a session with (see SharesService, which
   * has checked the share): the viewer's own identity, never the owner's, bound to the share so
   * the gateway ends the viewer's connection with it.
   */
  async sharedTicket(
    viewer: AuthContext,
    environmentId: string,
    sessionId: string,
    share: { id: string; expiresAt: Date },
  ): Promise<Ticket> {
    this.attachAllowed();
    const env = await this.envs.findById(environmentId);
    if (!env) throw notFound('environment', environmentId);
    return this.ticket(viewer, await this.ready(env), sessionId, 'observer', share);
  }

  private async reachable(
    ctx: AuthContext,
    environmentId: string,
  ): Promise<EnvironmentRow & { gateway_url: string }> {
    this.attachAllowed();
    const env = await this.envs.findOwned(ctx.userId, environmentId);
    if (!env) throw notFound('environment', environmentId);
    return this.ready(env);
  }

  private attachAllowed(): void {
    if (!this.config.interactiveAttach)
      throw new ApiError(
        403,
        'attach_disabled',
        'interactive terminals are turned off on this Berth',
        'run a task instead (berth run), or ask the operator',
      );
  }

  private async ready(env: EnvironmentRow): Promise<EnvironmentRow & { gateway_url: string }> {
    if (env.state !== 'ready' || !env.gateway_url)
      throw new ApiError(
        409,
        'environment_not_ready',
        `environment ${env.name} is ${env.state}`,
        env.state === 'stopped'
          ? `start it first: berth env start ${env.id}`
          : 'wait until it is ready (berth env show)',
      );
    await this.envs.touchActivity(env.id, this.clock.now());
    return env as EnvironmentRow & { gateway_url: string };
  }

  private async ticket(
    ctx: AuthContext,
    env: EnvironmentRow & { gateway_url: string },
    sessionId: string | null,
    role: 'driver' | 'observer',
    share?: { id: string; expiresAt: Date },
  ): Promise<Ticket> {
    const { token, expiresAt } = await this.identity.signGatewayToken({
      environmentId: env.id,
      userId: ctx.userId,
      scope: 'terminal',
      role,
      ...(sessionId ? { sessionId } : {}),
      ...(share ? { share } : {}),
      ttlSeconds: TICKET_TTL_SECONDS,
    });
    const url = env.gateway_url.replace(/^http/, 'ws').replace(/\/+$/, '') + TERMINAL_PATH;
    return { url, token, sessionId, role, expiresAt: expiresAt.toISOString() };
  }
}
