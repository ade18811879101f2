import { z } from 'zod';

/** What a webhook can subscribe to. `ping` is sent on demand (POST /webhooks/:id/ping) only. */
export const WebhookEvent = z.enum([
  'task.finished',
  'task.failed',
  'task.timed_out',
  'task.failure_streak',
  'environment.stopped',
]);
export type WebhookEvent = z.infer<typeof WebhookEvent>;

/** Delivery jobs; the payload names the delivery row, which holds the body to send. */
export const WebhookJobCatalog = {
  'webhook.deliver': z.object({ deliveryId: z.string().uuid() }),
} as const;
