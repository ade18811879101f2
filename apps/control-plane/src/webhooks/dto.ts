import { z } from 'zod';
import { WebhookEvent } from '@berth/protocol';
import type { DeliveryRow, WebhookRow } from './webhooks.repository.js';

const Url = z
  .string()
  .max(2000)
  .url()
  .refine((u) => /^https?:$/.test(new URL(u).protocol), { message: 'must be an http:// or https:// URL' })
  .refine((u) => !new URL(u).username && !new URL(u).password, {
    message: 'must not contain a user name or password; verify deliveries with the signature instead',
  });

const Events = z
  .array(WebhookEvent)
  .min(1)
  .transform((e) => [...new Set(e)]);

export const CreateWebhookBody = z.strictObject({
  url: Url,
  events: Events,
  failureStreak: z.number().int().min(2).max(100).default(3),
  description: z.string().max(200).optional(),
});
export type CreateWebhookBody = z.output<typeof CreateWebhookBody>;

export const UpdateWebhookBody = z.strictObject({
  url: Url.optional(),
  events: Events.optional(),
  failureStreak: z.number().int().min(2).max(100).optional(),
  description: z.string().max(200).nullable().optional(),
});
export type UpdateWebhookBody = z.output<typeof UpdateWebhookBody>;

export interface WebhookDto {
  id: string;
  url: string;
  events: string[];
  failureStreak: number;
  description: string | null;
  createdAt: string;
  updatedAt: string;
}

export const toWebhookDto = (r: WebhookRow): WebhookDto => ({
  id: r.id,
  url: r.url,
  events: r.events,
  failureStreak: r.failure_streak,
  description: r.description,
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
});

export interface DeliveryDto {
  id: string;
  event: string;
  state: DeliveryRow['state'];
  attempts: number;
  responseStatus: number | null;
  lastError: string | null;
  createdAt: string;
  deliveredAt: string | null;
  payload: unknown;
}

export const toDeliveryDto = (r: DeliveryRow): DeliveryDto => ({
  id: r.id,
  event: r.event,
  state: r.state,
  attempts: r.attempts,
  responseStatus: r.response_status,
  lastError: r.last_error,
  createdAt: r.created_at.toISOString(),
  deliveredAt: r.delivered_at?.toISOString() ?? null,
  payload: r.payload,
});
