import { Inject, Injectable } from '@nestjs/common';
import { IdentityService } from '../identity/identity.service.js';
import type { EnvironmentRow } from './environments.repository.js';

/** Asks an environment's gateway about its terminal sessions, with a short-lived ticket. */
@Injectable()
export class GatewaySessions {
  constructor(@Inject(IdentityService) private readonly identity: IdentityService) {}

  async list(
    env: Pick<EnvironmentRow, 'id' | 'owner_id' | 'gateway_url'>,
  ): Promise<Array<{ clients?: unknown[] }>> {
    if (!env.gateway_url) return [];
    const { token } = await this.identity.signGatewayToken({
      environmentId: env.id,
      userId: env.owner_id,
      scope: 'terminal',
      ttlSeconds: 30,
    });
    const res = await fetch(`${env.gateway_url}/sessions`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(5000),
    });
    if (!res.ok) throw new Error(`gateway answered ${res.status}`);
    return ((await res.json()) as { sessions?: Array<{ clients?: unknown[] }> }).sessions ?? [];
  }

  /**
   * Tells the gateway a read-only link was revoked: it closes the viewers who came through it and
   * refuses their resume tokens and any ticket still within its minute. Answers how many it closed.
   */
  async revokeShare(
    env: Pick<EnvironmentRow, 'id' | 'owner_id' | 'gateway_url'>,
    share: { id: string; expiresAt: Date },
  ): Promise<number> {
    if (!env.gateway_url) return 0;
    // Scope `exec`, which no terminal ticket (a viewer's included) has; the exec tokens that do
    // leave the control plane name a task or launch, never a share. The claim ties it to one link.
    const { token } = await this.identity.signGatewayToken({
      environmentId: env.id,
      userId: env.owner_id,
      scope: 'exec',
      share,
      ttlSeconds: 30,
    });
    const res = await fetch(`${env.gateway_url.replace(/\/+$/, '')}/shares/${encodeURIComponent(share.id)}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(5000),
    });
    if (!res.ok) throw new Error(`gateway answered ${res.status}`);
    return ((await res.json()) as { closed?: number }).closed ?? 0;
  }

  async attachedClients(env: Pick<EnvironmentRow, 'id' | 'owner_id' | 'gateway_url'>): Promise<number> {
    return (await this.list(env)).reduce((n, s) => n + (s.clients?.length ?? 0), 0);
  }
}
