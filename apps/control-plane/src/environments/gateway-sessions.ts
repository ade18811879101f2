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

  async attachedClients(env: Pick<EnvironmentRow, 'id' | 'owner_id' | 'gateway_url'>): Promise<number> {
    return (await this.list(env)).reduce((n, s) => n + (s.clients?.length ?? 0), 0);
  }
}
