import { WorkerPool, type BackoffPolicy, type Clock, type Pool, type QueueLogger } from '@berth/db';
import { WebhookJobCatalog } from '@berth/protocol';
import { webhookJobHandlers } from './delivery.js';
import { createSender, type SendOptions } from './sender.js';
import { WebhooksRepository } from './webhooks.repository.js';

export interface WebhookWorkersOptions extends SendOptions {
  pool: Pool;
  databaseUrl: string;
  rootKey: Buffer;
  clock: Clock;
  logger: QueueLogger;
  backoff?: BackoffPolicy;
}

/** Deliveries get their own worker pool: a slow receiver never holds up tasks or environments. */
export async function startWebhookWorkers(
  opts: WebhookWorkersOptions,
): Promise<{ stop(graceMs?: number): Promise<void> }> {
  const pool = new WorkerPool({
    pool: opts.pool,
    url: opts.databaseUrl,
    catalog: WebhookJobCatalog,
    handlers: webhookJobHandlers({
      repo: new WebhooksRepository(opts.pool),
      rootKey: opts.rootKey,
      clock: opts.clock,
      send: createSender({ allowPrivate: opts.allowPrivate, timeoutMs: opts.timeoutMs }),
    }),
    concurrency: 4,
    logger: opts.logger,
    // Above the send timeout: a lease never expires under a receiver that answers slowly.
    leaseMs: opts.timeoutMs + 20_000,
    clock: opts.clock,
    // A retry is due at a future time, which no NOTIFY announces: poll at least as often as the
    // shortest retry delay, so short delays (tests) are kept and long ones cost nothing extra.
    ...(opts.backoff
      ? { backoff: opts.backoff, pollMs: Math.max(50, Math.min(2000, opts.backoff.baseMs)) }
      : {}),
  });
  await pool.start();
  return { stop: (graceMs = 10_000) => pool.stop(graceMs) };
}
