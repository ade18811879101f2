import type { JobHandlers } from '@berth/db';
import type { WebhookJobCatalog } from '@berth/protocol';
import type { Clock } from '../common/di.js';
import { signatureHeader, webhookSecret } from './secret.js';
import { RefusedAddressError, type WebhookSender } from './sender.js';
import type { WebhooksRepository } from './webhooks.repository.js';

export interface DeliveryDeps {
  repo: Pick<WebhooksRepository, 'getWork' | 'recordAttempt'>;
  rootKey: Buffer;
  clock: Clock;
  send: WebhookSender;
}

/**
 * Sends one delivery. Every attempt is written to the delivery log before the job's own retry
 * bookkeeping, so the user sees each status code; the last attempt marks the delivery failed.
 * A delivery already sent (a job re-run after a crash) is not sent again.
 */
export function webhookJobHandlers(deps: DeliveryDeps): JobHandlers<typeof WebhookJobCatalog> {
  return {
    'webhook.deliver': async ({ deliveryId }, ctx) => {
      const work = await deps.repo.getWork(deliveryId);
      if (!work || work.state !== 'pending') return;
      const body = JSON.stringify({ id: work.id, ...(work.payload as object) });
      const secret = webhookSecret(deps.rootKey, work.webhook_id, work.secret_version);
      const at = deps.clock.now();
      let status: number | null = null;
      let error: string | null = null;
      let permanent = false;
      try {
        const r = await deps.send(work.url, body, {
          'content-type': 'application/json',
          'user-agent': 'Berth-Webhooks/1',
          'berth-event': work.event,
          'berth-delivery': work.id,
          'berth-signature': signatureHeader(secret, body, Math.floor(at.getTime() / 1000)),
        });
        status = r.status;
        if (status < 200 || status >= 300)
          error = `receiver answered ${status}: ${r.bodyStart.slice(0, 200)}`;
      } catch (err) {
        error = (err as Error).message;
        permanent = err instanceof RefusedAddressError;
      }
      const last = permanent || ctx.job.attempts >= ctx.job.max_attempts;
      const state = error === null ? 'succeeded' : last ? 'failed' : 'pending';
      await deps.repo.recordAttempt(deliveryId, { state, status, error, at });
      // Not the last attempt: fail the job so the queue retries it with backoff.
      if (state === 'pending') throw new Error(error ?? 'delivery failed');
    },
  };
}
