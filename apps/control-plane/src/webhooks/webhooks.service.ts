import { Inject, Injectable } from '@nestjs/common';
import type { AuthContext } from '../accounts/auth.types.js';
import { CLOCK, type Clock } from '../common/di.js';
import { ApiError, notFound } from '../common/errors.js';
import { decodeCursor, toPage, type Page, type PageQuery } from '../common/pagination.js';
import {
  toDeliveryDto,
  toWebhookDto,
  type CreateWebhookBody,
  type DeliveryDto,
  type UpdateWebhookBody,
  type WebhookDto,
} from './dto.js';
import { webhookSecret } from './secret.js';
import { WebhooksRepository, type WebhookRow } from './webhooks.repository.js';

export const WEBHOOK_ROOT_KEY = Symbol('WEBHOOK_ROOT_KEY');
export const MAX_WEBHOOKS_PER_USER = 20;

/** Webhooks belong to their creator: another user's id is a 404, never a 403 that confirms it exists. */
@Injectable()
export class WebhooksService {
  constructor(
    @Inject(WebhooksRepository) private readonly repo: WebhooksRepository,
    @Inject(WEBHOOK_ROOT_KEY) private readonly rootKey: Buffer,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  private withSecret(row: WebhookRow): WebhookDto & { secret: string } {
    return { ...toWebhookDto(row), secret: webhookSecret(this.rootKey, row.id, row.secret_version) };
  }

  private async owned(ctx: AuthContext, id: string): Promise<WebhookRow> {
    const row = await this.repo.getOwned(ctx.userId, id);
    if (!row) throw notFound('webhook', id);
    return row;
  }

  /** The signing secret is shown here and on rotation only; it is derived, never stored. */
  async create(ctx: AuthContext, body: CreateWebhookBody): Promise<WebhookDto & { secret: string }> {
    if ((await this.repo.countOwned(ctx.userId)) >= MAX_WEBHOOKS_PER_USER)
      throw new ApiError(
        409,
        'limit_reached',
        `you have ${MAX_WEBHOOKS_PER_USER} webhooks, the most one user may have`,
        'delete one you no longer use (DELETE /api/v1/webhooks/:id), or subscribe an existing one to more events',
      );
    const row = await this.repo.create({
      ownerId: ctx.userId,
      url: body.url,
      events: body.events,
      failureStreak: body.failureStreak,
      description: body.description ?? null,
    });
    return this.withSecret(row);
  }

  async list(ctx: AuthContext, q: PageQuery): Promise<Page<WebhookDto>> {
    const rows = await this.repo.listOwned(ctx.userId, decodeCursor(q.cursor), q.limit);
    return toPage(rows, q.limit, toWebhookDto);
  }

  async get(ctx: AuthContext, id: string): Promise<WebhookDto> {
    return toWebhookDto(await this.owned(ctx, id));
  }

  async update(ctx: AuthContext, id: string, body: UpdateWebhookBody): Promise<WebhookDto> {
    const row = await this.repo.update(ctx.userId, id, body);
    if (!row) throw notFound('webhook', id);
    return toWebhookDto(row);
  }

  /** The old secret stops working at once: deliveries still queued are signed with the new one. */
  async rotateSecret(ctx: AuthContext, id: string): Promise<WebhookDto & { secret: string }> {
    const row = await this.repo.rotateSecret(ctx.userId, id);
    if (!row) throw notFound('webhook', id);
    return this.withSecret(row);
  }

  async remove(ctx: AuthContext, id: string): Promise<{ deleted: true }> {
    if (!(await this.repo.delete(ctx.userId, id))) throw notFound('webhook', id);
    return { deleted: true };
  }

  /** A `ping` delivery through the same path as real events: checks URL, signature and log. */
  async ping(ctx: AuthContext, id: string): Promise<DeliveryDto> {
    const row = await this.owned(ctx, id);
    const d = await this.repo.enqueueDelivery(row.id, 'ping', {
      event: 'ping',
      occurredAt: this.clock.now().toISOString(),
      data: { webhook: toWebhookDto(row) },
    });
    return toDeliveryDto(d);
  }

  async deliveries(ctx: AuthContext, id: string, q: PageQuery): Promise<Page<DeliveryDto>> {
    await this.owned(ctx, id);
    const rows = await this.repo.listDeliveries(id, decodeCursor(q.cursor), q.limit);
    return toPage(rows, q.limit, toDeliveryDto);
  }
}
