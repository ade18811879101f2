import { WorkerPool, type Clock, type Pool, type QueueLogger } from '@berth/db';
import { EnvironmentJobCatalog, type EnvironmentSpec } from '@berth/protocol';
import { EnvironmentsRepository } from './environments.repository.js';
import { environmentJobHandlers } from './lifecycle.js';
import type { ProviderRegistry } from './providers.js';

export interface EnvironmentWorkersOptions {
  pool: Pool;
  databaseUrl: string;
  providers: ProviderRegistry;
  gateway: () => EnvironmentSpec['gateway'];
  dataDir: string;
  logger: QueueLogger;
  clock?: Clock;
  concurrency?: number;
}

/** Lifecycle jobs get their own pool: a slow image build never delays a task, nor the reverse. */
export async function startEnvironmentWorkers(opts: EnvironmentWorkersOptions): Promise<{ stop(graceMs?: number): Promise<void> }> {
  const pool = new WorkerPool({
    pool: opts.pool,
    url: opts.databaseUrl,
    catalog: EnvironmentJobCatalog,
    handlers: environmentJobHandlers({
      pool: opts.pool,
      envs: new EnvironmentsRepository(opts.pool),
      providers: opts.providers,
      gateway: opts.gateway,
      dataDir: opts.dataDir,
      logger: opts.logger,
    }),
    concurrency: opts.concurrency ?? 4,
    logger: opts.logger,
    // An image build can take minutes; the lease is kept by heartbeat, this only bounds a dead worker.
    leaseMs: 60_000,
    ...(opts.clock ? { clock: opts.clock } : {}),
  });
  await pool.start();
  return { stop: (graceMs = 10_000) => pool.stop(graceMs) };
}
