import {
  Inject,
  Injectable,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import type { Pool } from '@berth/db';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../config.js';
import { CLOCK, CONFIG, METRICS, PG_POOL, type Clock } from '../common/di.js';
import { startTaskWorkers, type TaskWorkers } from '../worker/task-workers.js';
import { IdentityService } from '../identity/identity.service.js';
import { execToken, workloadToken } from '../worker/gateway-runner.js';

export const TASKS_DATABASE_URL = Symbol('TASKS_DATABASE_URL');
export const TASKS_LOGGER = Symbol('TASKS_LOGGER');

/** `berth server` runs the task workers in-process (config `workers`, on by default). */
@Injectable()
export class TaskWorkersService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private workers: TaskWorkers | undefined;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(PG_POOL) private readonly pool: Pool,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(METRICS) private readonly registry: Registry,
    @Inject(TASKS_DATABASE_URL) private readonly databaseUrl: string,
    @Inject(TASKS_LOGGER) private readonly logger: Logger,
    @Inject(IdentityService) private readonly identity: IdentityService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    if (!this.config.workers) return;
    this.workers = await startTaskWorkers({
      pool: this.pool,
      databaseUrl: this.databaseUrl,
      logger: this.logger.child({ component: 'task-workers' }),
      clock: this.clock,
      registry: this.registry,
      signExecToken: (r) => execToken(this.identity, r),
      signWorkload: (r) => workloadToken(this.identity, r),
      leaseMs: this.config.taskLeaseSeconds * 1000,
    });
  }

  /** Before the pool closes: stop claiming, finish or release leases. */
  async beforeApplicationShutdown(): Promise<void> {
    await this.workers?.stop();
    this.workers = undefined;
  }
}
