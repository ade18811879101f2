import {
  Inject,
  Injectable,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import type { Pool } from '@berth/db';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { CLOCK, CONFIG, PG_POOL, type Clock } from '../common/di.js';
import { IdentityService } from '../identity/identity.service.js';
import { startEnvironmentWorkers } from './environment-workers.js';
import { GatewaySessions } from './gateway-sessions.js';
import { PROVIDERS, type ProviderRegistry } from './providers.js';

export const ENV_DATABASE_URL = Symbol('ENV_DATABASE_URL');
export const ENV_LOGGER = Symbol('ENV_LOGGER');

/** `berth server` runs the environment lifecycle workers in-process (config `workers`). */
@Injectable()
export class EnvironmentWorkersService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private workers: { stop(graceMs?: number): Promise<void> } | undefined;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(PG_POOL) private readonly pool: Pool,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(PROVIDERS) private readonly providers: ProviderRegistry,
    @Inject(IdentityService) private readonly identity: IdentityService,
    @Inject(GatewaySessions) private readonly terminals: GatewaySessions,
    @Inject(ENV_DATABASE_URL) private readonly databaseUrl: string,
    @Inject(ENV_LOGGER) private readonly logger: Logger,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (!this.config.workers) return;
    this.workers = await startEnvironmentWorkers({
      pool: this.pool,
      databaseUrl: this.databaseUrl,
      providers: this.providers,
      gateway: () => this.identity.gatewaySpec(),
      dataDir: this.config.dataDir,
      logger: this.logger.child({ component: 'environment-workers' }),
      clock: this.clock,
      idleStopMinutes: this.config.envIdleStopMinutes,
      maxLifetimeHours: this.config.envMaxLifetimeHours,
      envHoursPerDay: this.config.quotaEnvHoursPerDay,
      reapSeconds: this.config.envReapSeconds,
      attachedClients: (env) => this.terminals.attachedClients(env),
      signWorkload: async (r) => (await this.identity.signWorkloadIdentity(r)).token,
    });
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.workers?.stop();
    this.workers = undefined;
  }
}
