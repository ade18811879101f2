import { Inject, Injectable } from '@nestjs/common';
import { parseDevcontainer } from '@berth/providers';
import type { PortForwardTicket, PortInfo, PortList, PortOpen, PortSharing } from '@berth/protocol';
import type { Config } from '../config.js';
import { CLOCK, CONFIG, type Clock } from '../common/di.js';
import { ApiError, notFound } from '../common/errors.js';
import type { AuthContext } from '../accounts/auth.types.js';
import { AuditService, type AuditEntry } from '../audit/audit.service.js';
import { EnvironmentsRepository, type EnvironmentRow } from '../environments/environments.repository.js';
import { IdentityService } from '../identity/identity.service.js';
import { PortsRepository } from './ports.repository.js';

const TICKET_TTL_SECONDS = 60;
const RANK: Record<PortSharing, number> = { owner: 0, authenticated: 1, public: 2 };
/** Gateway query parameter a browser trades for the port cookie (see apps/gateway/src/ports). */
export const TICKET_PARAM = 'berth_ticket';

type ReadyEnv = EnvironmentRow & { gateway_url: string };

/** What `GET /p/:envId/:port` decided, for the controller to render. */
export type PreviewDecision =
  | { kind: 'redirect'; url: string }
  | { kind: 'sign_in' }
  | { kind: 'not_found' }
  | { kind: 'not_ready'; state: string };

function declaredPorts(spec: Record<string, unknown>): number[] {
  const text = spec.devcontainer;
  if (typeof text !== 'string') return [];
  try {
    return (parseDevcontainer(text).forwardPorts ?? [])
      .map((p) => (typeof p === 'number' ? p : /^\d{1,5}$/.test(p) ? Number(p) : NaN))
      .filter((p) => Number.isInteger(p) && p >= 1 && p <= 65535);
  } catch {
    return [];
  }
}

/**
 * Port previews and forwarding. The control plane decides who may open which port (owner, any
 * signed-in user, anyone) and mints one-minute tickets; the gateway checks them offline and
 * carries the traffic, so no app byte passes through here.
 */
@Injectable()
export class PortsService {
  constructor(
    @Inject(EnvironmentsRepository) private readonly envs: EnvironmentsRepository,
    @Inject(PortsRepository) private readonly ports: PortsRepository,
    @Inject(IdentityService) private readonly identity: IdentityService,
    @Inject(AuditService) private readonly audit: AuditService,
    @Inject(CONFIG) private readonly config: Config,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  previewUrl(environmentId: string, port: number): string {
    return `${this.config.publicUrl}/p/${environmentId}/${port}`;
  }

  async list(ctx: AuthContext, environmentId: string): Promise<PortList> {
    const env = await this.owned(ctx, environmentId);
    const rows = await this.ports.list(env.id);
    const declared = new Set(declaredPorts(env.spec));
    let gateway: PortList['gateway'] = 'not_ready';
    let listening: Array<{ port: number; addresses: string[] }> = [];
    if (env.state === 'ready' && env.gateway_url) {
      try {
        listening = await this.listening(env as ReadyEnv);
        gateway = 'ok';
      } catch {
        gateway = 'unreachable';
      }
    }
    const all = new Set<number>([...declared, ...rows.map((r) => r.port), ...listening.map((l) => l.port)]);
    const sharing = new Map(rows.map((r) => [r.port, r.sharing]));
    const addrs = new Map(listening.map((l) => [l.port, l.addresses]));
    const ports: PortInfo[] = [...all]
      .sort((a, b) => a - b)
      .map((port) => ({
        port,
        listening: gateway === 'ok' ? addrs.has(port) : null,
        declared: declared.has(port),
        sharing: sharing.get(port) ?? 'owner',
        addresses: addrs.get(port) ?? [],
        previewUrl: this.previewUrl(env.id, port),
      }));
    return { ports, gateway };
  }

  async open(ctx: AuthContext, environmentId: string, port: number): Promise<PortOpen> {
    const env = this.ready(await this.owned(ctx, environmentId));
    const { token, expiresAt } = await this.ticket(env, ctx.userId, port, 'preview');
    return {
      port,
      url: this.gatewayPreviewUrl(env, port, token),
      previewUrl: this.previewUrl(env.id, port),
      sharing: await this.ports.sharing(env.id, port),
      expiresAt: expiresAt.toISOString(),
    };
  }

  async forward(ctx: AuthContext, environmentId: string, port: number): Promise<PortForwardTicket> {
    const env = this.ready(await this.owned(ctx, environmentId));
    const { token, expiresAt } = await this.ticket(env, ctx.userId, port, 'forward');
    const url = `${env.gateway_url.replace(/^http/, 'ws').replace(/\/+$/, '')}/tcp/${port}`;
    return { port, url, token, expiresAt: expiresAt.toISOString() };
  }

  async setSharing(
    ctx: AuthContext,
    environmentId: string,
    port: number,
    sharing: PortSharing,
    actor: Pick<AuditEntry, 'ip' | 'requestId' | 'tokenId' | 'actorEmail'>,
  ): Promise<{
    port: number;
    sharing: PortSharing;
    previous: PortSharing;
    previewUrl: string;
    /** Lowered: whether browsers that opened it before were cut off now (false: within the hour). */
    openBrowsersRevoked: boolean | null;
  }> {
    const env = await this.owned(ctx, environmentId);
    const previous = await this.ports.setSharing(env.id, port, sharing, ctx.userId);
    const lowered = RANK[sharing] < RANK[previous];
    const openBrowsersRevoked = lowered ? await this.revokeCookies(env, port) : null;
    if (previous !== sharing)
      await this.audit.record({
        ...actor,
        userId: ctx.userId,
        action: 'ports.sharing.change',
        result: 200,
        targetType: 'port',
        targetId: String(port),
        details: {
          environmentId: env.id,
          port,
          from: previous,
          to: sharing,
          ...(lowered ? { openBrowsersRevoked } : {}),
        },
      });
    return { port, sharing, previous, previewUrl: this.previewUrl(env.id, port), openBrowsersRevoked };
  }

  /**
   * Tells the gateway to stop honouring cookies it issued for the port. A stopped environment
   * has no cookies to honour (a restarted gateway has a new key), so that counts as done.
   */
  private async revokeCookies(env: EnvironmentRow, port: number): Promise<boolean> {
    if (env.state !== 'ready' || !env.gateway_url) return true;
    try {
      const { token } = await this.identity.signGatewayToken({
        environmentId: env.id,
        userId: env.owner_id,
        scope: 'exec',
        port,
        ttlSeconds: 30,
      });
      const res = await fetch(`${env.gateway_url.replace(/\/+$/, '')}/ports/${port}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(5000),
      });
      return res.status === 204;
    } catch {
      return false;
    }
  }

  /**
   * The stable preview link. Who may open it follows the port's sharing level; everyone else
   * gets what an unknown environment gets (a stranger cannot tell a private port from none).
   */
  async preview(
    viewer: AuthContext | undefined,
    environmentId: string,
    port: number,
    actor: Pick<AuditEntry, 'ip' | 'requestId'>,
  ): Promise<PreviewDecision> {
    const env = await this.envs.findById(environmentId);
    const sharing = env && !env.destroyed_at ? await this.ports.sharing(env.id, port) : 'owner';
    const allowed =
      env &&
      !env.destroyed_at &&
      (viewer?.userId === env.owner_id ||
        sharing === 'public' ||
        (sharing === 'authenticated' && viewer !== undefined));
    const record = (result: number) =>
      this.audit.record({
        ...actor,
        userId: viewer?.userId ?? null,
        actorEmail: viewer?.email ?? null,
        action: 'ports.open',
        result,
        route: 'GET /p/:id/:port',
        targetType: 'port',
        targetId: String(port),
        details: { environmentId, port, sharing: allowed ? sharing : null, via: 'link' },
      });
    if (!env || !allowed) {
      await record(viewer ? 404 : 401);
      return viewer ? { kind: 'not_found' } : { kind: 'sign_in' };
    }
    if (env.state !== 'ready' || !env.gateway_url) {
      await record(409);
      return { kind: 'not_ready', state: env.state };
    }
    const { token } = await this.ticket(env as ReadyEnv, viewer?.userId ?? 'anonymous', port, 'preview');
    await record(302);
    return { kind: 'redirect', url: this.gatewayPreviewUrl(env as ReadyEnv, port, token) };
  }

  /**
   * Path routing on the gateway by default; with BERTH_PORTS_DOMAIN each port is its own origin
   * (`<port>-<env>.<domain>`, which the operator's wildcard proxy sends to the gateway).
   */
  private gatewayPreviewUrl(env: ReadyEnv, port: number, token: string): string {
    const ticket = `${TICKET_PARAM}=${encodeURIComponent(token)}`;
    if (this.config.portsDomain) {
      const scheme = new URL(this.config.publicUrl).protocol;
      return `${scheme}//${port}-${env.id}.${this.config.portsDomain.toLowerCase()}/?${ticket}`;
    }
    return `${env.gateway_url.replace(/\/+$/, '')}/ports/${port}/?${ticket}`;
  }

  private async ticket(env: ReadyEnv, userId: string, port: number, access: 'preview' | 'forward') {
    await this.envs.touchActivity(env.id, this.clock.now());
    return this.identity.signGatewayToken({
      environmentId: env.id,
      userId,
      scope: 'port',
      port,
      access,
      ttlSeconds: TICKET_TTL_SECONDS,
    });
  }

  /** Asks the gateway which ports something listens on (it reads /proc/net/tcp there). */
  private async listening(env: ReadyEnv): Promise<Array<{ port: number; addresses: string[] }>> {
    const { token } = await this.identity.signGatewayToken({
      environmentId: env.id,
      userId: env.owner_id,
      scope: 'port',
      ttlSeconds: 30,
    });
    const res = await fetch(`${env.gateway_url.replace(/\/+$/, '')}/ports`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(5000),
    });
    if (!res.ok) throw new Error(`gateway answered ${res.status}`);
    const body = (await res.json()) as { ports?: Array<{ port: number; addresses: string[] }> };
    return body.ports ?? [];
  }

  private async owned(ctx: AuthContext, environmentId: string): Promise<EnvironmentRow> {
    const env = await this.envs.findOwned(ctx.userId, environmentId);
    if (!env) throw notFound('environment', environmentId);
    return env;
  }

  private ready(env: EnvironmentRow): ReadyEnv {
    if (env.state !== 'ready' || !env.gateway_url)
      throw new ApiError(
        409,
        'environment_not_ready',
        `environment ${env.name} is ${env.state}`,
        env.state === 'stopped'
          ? `start it first: berth env start ${env.id}`
          : 'wait until it is ready (berth env show)',
      );
    return env as ReadyEnv;
  }
}
