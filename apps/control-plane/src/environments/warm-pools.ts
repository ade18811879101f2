import { randomUUID } from 'node:crypto';
import {
  Inject,
  Injectable,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import type { EnvironmentInfo, EnvironmentSpec } from '@berth/protocol';
import type { WarmPool } from '@berth/providers';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { CONFIG } from '../common/di.js';
import { IdentityService } from '../identity/identity.service.js';
import { ENV_LOGGER } from './environment-workers.service.js';
import { EnvironmentsRepository } from './environments.repository.js';
import { PROVIDERS, type ProviderRegistry } from './providers.js';
import type { StoredSpec } from './spec.js';

/** Owner label of unclaimed members: not a user id, so the reaper never takes them for orphans. */
export const WARM_POOL_OWNER = 'warm-pool';

interface Pooled {
  pool: WarmPool;
  /** The gateway config (issuer, JWKS) its members were started with. */
  gatewayKey: string;
}

/**
 * `BERTH_WARM_POOL`: pre-started default-image environments per provider. A member is created
 * under a fresh UUID, so a claim makes it an environment row with that id: the container name,
 * its labels and the gateway's token audience already match, nothing is renamed or mapped.
 */
@Injectable()
export class WarmPools implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly pools = new Map<string, Pooled>();
  private readonly sizes = new Map<string, number>();
  /** Drains of pools replaced after a gateway config change. */
  private readonly retiring = new Set<Promise<void>>();
  private installation: string | undefined;
  private makePool: typeof WarmPool | undefined;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(PROVIDERS) private readonly providers: ProviderRegistry,
    @Inject(IdentityService) private readonly identity: IdentityService,
    @Inject(EnvironmentsRepository) private readonly envs: EnvironmentsRepository,
    @Inject(ENV_LOGGER) private readonly logger: Logger,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    // Only where lifecycle workers run: that process manages provider resources.
    if (!this.config.workers || this.config.warmPool.length === 0) return;
    this.installation = await this.envs.installationId();
    this.makePool = (await import('@berth/providers')).WarmPool;
    for (const { provider: name, size } of this.config.warmPool) {
      const provider = this.providers.get(name);
      if (!provider || size === 0) continue;
      // Members a previous run of this process left behind (it crashed before draining).
      const left = await provider.list().catch(() => []);
      for (const m of left)
        if (m.ownerId === WARM_POOL_OWNER && m.installation === this.installation)
          await provider.destroy(m.id).catch(() => undefined);
      this.sizes.set(name, size);
      this.current(name);
    }
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.sizes.clear();
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all([...pools.map((p) => p.pool.drain().catch(() => undefined)), ...this.retiring]);
  }

  /**
   * Resolves once `provider`'s pool is full and replaced pools are gone (at once without a
   * pool); rejects if a refill failed.
   */
  async filled(provider: string): Promise<void> {
    const pool = this.current(provider);
    await Promise.all([pool?.fill(), ...this.retiring]);
  }

  /**
   * A ready member for a request that asks for nothing the pool's default image does not give
   * (no image, repo, berth.yaml, devcontainer or resources); undefined otherwise or when empty.
   */
  async take(provider: string, spec: StoredSpec): Promise<{ id: string; info: EnvironmentInfo } | undefined> {
    if (Object.values(spec).some((v) => v !== undefined)) return undefined;
    return this.current(provider)?.take();
  }

  /** A member taken for a request that then failed (quota, name taken) goes back to the pool. */
  giveBack(provider: string, id: string): void {
    this.pools.get(provider)?.pool.giveBack(id);
  }

  /**
   * The pool of `provider`, started with the gateway config (issuer, JWKS) in force now. Members
   * started under another one (a signing-key change; with `--port 0` the issuer's port is known
   * only after bootstrap) would refuse the tickets: that pool is drained and a new one filled.
   */
  private current(name: string): WarmPool | undefined {
    const size = this.sizes.get(name);
    const provider = this.providers.get(name);
    if (!size || !provider || !this.makePool) return undefined;
    const gateway = this.gateway();
    const gatewayKey = JSON.stringify(gateway);
    const existing = this.pools.get(name);
    if (existing?.gatewayKey === gatewayKey) return existing.pool;
    const warn = (what: string) => (err: unknown) =>
      this.logger.warn({ provider: name, err: (err as Error).message }, what);
    if (existing) {
      const retiring = existing.pool.drain().catch(warn('warm pool drain failed'));
      this.retiring.add(retiring);
      void retiring.finally(() => this.retiring.delete(retiring));
    }
    const pool = new this.makePool({
      provider,
      size,
      template: {
        ownerId: WARM_POOL_OWNER,
        gateway,
        ...(this.installation ? { installation: this.installation } : {}),
      },
      newId: randomUUID,
      onError: warn('warm pool refill failed'),
    });
    this.pools.set(name, { pool, gatewayKey });
    pool.fill().catch(warn('warm pool fill failed'));
    return pool;
  }

  private gateway(): NonNullable<EnvironmentSpec['gateway']> {
    return this.identity.gatewaySpec();
  }
}
