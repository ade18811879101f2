import { WorkerPool, systemClock, type Clock, type Pool, type QueueLogger } from '@berth/db';
import { EnvironmentJobCatalog, type EnvironmentSpec } from '@berth/protocol';
import { QuotasRepository } from '../quotas/quotas.repository.js';
import { EnvironmentsRepository } from './environments.repository.js';
import { environmentJobHandlers } from './lifecycle.js';
import type { ProviderRegistry } from './providers.js';
import { EnvironmentReaper } from './reaper.js';
import type { EnvironmentRow } from './environments.repository.js';
import { QueueEnvironmentJobs } from './queue-environment-jobs.js';
import type { SignWorkload } from './repo-token.js';

export interface EnvironmentWorkersOptions {
  pool: Pool;
  databaseUrl: string;
  providers: ProviderRegistry;
  gateway: () => EnvironmentSpec['gateway'];
  dataDir: string;
  logger: QueueLogger;
  clock?: Clock;
  concurrency?: number;
  idleStopMinutes: number;
  maxLifetimeHours: number;
  /** The installation's default environment-hours per UTC day (users' quotas override it). */
  envHoursPerDay: number;
  reapSeconds: number;
  attachedClients: (env: EnvironmentRow) => Promise<number>;
  signWorkload?: SignWorkload;
}

/** Lifecycle jobs get their own pool: a slow image build never delays a task, nor the reverse. */
export async function startEnvironmentWorkers(
  opts: EnvironmentWorkersOptions,
): Promise<{ stop(graceMs?: number): Promise<void> }> {
  const envs = new EnvironmentsRepository(opts.pool);
  // Written by every server and worker at start (before this), so it is there to read.
  const installation = await envs.installationId();
  const pool = new WorkerPool({
    pool: opts.pool,
    url: opts.databaseUrl,
    catalog: EnvironmentJobCatalog,
    handlers: environmentJobHandlers({
      pool: opts.pool,
      envs,
      providers: opts.providers,
      gateway: opts.gateway,
      dataDir: opts.dataDir,
      logger: opts.logger,
      ...(installation ? { installation } : {}),
      ...(opts.signWorkload ? { signWorkload: opts.signWorkload } : {}),
    }),
    concurrency: opts.concurrency ?? 4,
    logger: opts.logger,
    // An image build can take minutes; the lease is kept by heartbeat, this only bounds a dead worker.
    leaseMs: 60_000,
    ...(opts.clock ? { clock: opts.clock } : {}),
  });
  await pool.start();
  const jobs = new QueueEnvironmentJobs(opts.providers);
  const reaper = new EnvironmentReaper({
    pool: opts.pool,
    envs,
    providers: opts.providers,
    clock: opts.clock ?? systemClock,
    idleStopMinutes: opts.idleStopMinutes,
    maxLifetimeHours: opts.maxLifetimeHours,
    quotas: new QuotasRepository(opts.pool),
    envHoursPerDay: opts.envHoursPerDay,
    enqueue: (tx, kind, id) => jobs.enqueue(tx, kind, id),
    attachedClients: opts.attachedClients,
    logger: opts.logger,
    installation,
  });
  let sweeping: Promise<unknown> | undefined;
  const timer = setInterval(() => {
    sweeping ??= reaper
      .sweep()
      .then((r) => {
        if (
          r.idleStopped.length +
          r.quotaStopped.length +
          r.expired.length +
          r.orphansDestroyed.length +
          r.gone.length +
          r.deadJobs.length
        )
          opts.logger.info({ ...r }, 'environment reaper');
      })
      .catch((err: unknown) => opts.logger.warn({ err: (err as Error).message }, 'environment reaper failed'))
      .finally(() => (sweeping = undefined));
  }, opts.reapSeconds * 1000);
  timer.unref();
  return {
    async stop(graceMs = 10_000) {
      clearInterval(timer);
      await sweeping;
      await pool.stop(graceMs);
    },
  };
}
