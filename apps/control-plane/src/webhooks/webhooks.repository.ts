import { Inject, Injectable } from '@nestjs/common';
import type { Pool } from '@berth/db';
import { PG_POOL } from '../common/di.js';
import type { PageKey } from '../common/pagination.js';

export interface WebhookRow {
  id: string;
  owner_id: string;
  url: string;
  events: string[];
  failure_streak: number;
  description: string | null;
  secret_version: number;
  created_at: Date;
  updated_at: Date;
  page_at: string;
}

export interface DeliveryRow {
  id: string;
  webhook_id: string;
  event: string;
  payload: unknown;
  state: 'pending' | 'succeeded' | 'failed';
  attempts: number;
  response_status: number | null;
  last_error: string | null;
  created_at: Date;
  updated_at: Date;
  delivered_at: Date | null;
  page_at: string;
}

/** A delivery with what sending it needs from its webhook. */
export type DeliveryWork = DeliveryRow & { url: string; secret_version: number };

const HOOK = `id, owner_id, url, events, failure_streak, description, secret_version, created_at, updated_at,
  created_at::text AS page_at`;
const DELIVERY = `d.id, d.webhook_id, d.event, d.payload, d.state, d.attempts, d.response_status, d.last_error,
  d.created_at, d.updated_at, d.delivered_at, d.created_at::text AS page_at`;

@Injectable()
export class WebhooksRepository {
  constructor(@Inject(PG_POOL) private readonly db: Pool) {}

  async countOwned(ownerId: string): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM webhooks WHERE owner_id = $1`,
      [ownerId],
    );
    return rows[0]?.n ?? 0;
  }

  async create(h: {
    ownerId: string;
    url: string;
    events: string[];
    failureStreak: number;
    description: string | null;
  }): Promise<WebhookRow> {
    const { rows } = await this.db.query<WebhookRow>(
      `INSERT INTO webhooks (owner_id, url, events, failure_streak, description)
       VALUES ($1, $2, $3, $4, $5) RETURNING ${HOOK}`,
      [h.ownerId, h.url, h.events, h.failureStreak, h.description],
    );
    return rows[0]!;
  }

  async listOwned(ownerId: string, after: PageKey | null, limit: number): Promise<WebhookRow[]> {
    const { rows } = await this.db.query<WebhookRow>(
      `SELECT ${HOOK} FROM webhooks WHERE owner_id = $1
         AND ($2::timestamptz IS NULL OR (created_at, id) > ($2::timestamptz, $3::uuid))
       ORDER BY created_at, id LIMIT $4`,
      [ownerId, after?.at ?? null, after?.id ?? null, limit + 1],
    );
    return rows;
  }

  async getOwned(ownerId: string, id: string): Promise<WebhookRow | undefined> {
    const { rows } = await this.db.query<WebhookRow>(
      `SELECT ${HOOK} FROM webhooks WHERE owner_id = $1 AND id = $2`,
      [ownerId, id],
    );
    return rows[0];
  }

  async update(
    ownerId: string,
    id: string,
    patch: { url?: string; events?: string[]; failureStreak?: number; description?: string | null },
  ): Promise<WebhookRow | undefined> {
    const { rows } = await this.db.query<WebhookRow>(
      `UPDATE webhooks SET url = coalesce($3, url), events = coalesce($4, events),
         failure_streak = coalesce($5, failure_streak),
         description = CASE WHEN $6::boolean THEN $7 ELSE description END, updated_at = now()
       WHERE owner_id = $1 AND id = $2 RETURNING ${HOOK}`,
      [
        ownerId,
        id,
        patch.url ?? null,
        patch.events ?? null,
        patch.failureStreak ?? null,
        patch.description !== undefined,
        patch.description ?? null,
      ],
    );
    return rows[0];
  }

  async rotateSecret(ownerId: string, id: string): Promise<WebhookRow | undefined> {
    const { rows } = await this.db.query<WebhookRow>(
      `UPDATE webhooks SET secret_version = secret_version + 1, updated_at = now()
       WHERE owner_id = $1 AND id = $2 RETURNING ${HOOK}`,
      [ownerId, id],
    );
    return rows[0];
  }

  async delete(ownerId: string, id: string): Promise<boolean> {
    const { rowCount } = await this.db.query(`DELETE FROM webhooks WHERE owner_id = $1 AND id = $2`, [
      ownerId,
      id,
    ]);
    return (rowCount ?? 0) > 0;
  }

  /** A delivery and its job, in one statement (a CTE is one transaction). */
  async enqueueDelivery(webhookId: string, event: string, payload: unknown): Promise<DeliveryRow> {
    // Two statements: a row a function inserts is not visible to the statement that called it.
    const made = await this.db.query<{ id: string }>(`SELECT berth_webhook_enqueue($1, $2, $3) AS id`, [
      webhookId,
      event,
      JSON.stringify(payload),
    ]);
    const { rows } = await this.db.query<DeliveryRow>(
      `SELECT ${DELIVERY} FROM webhook_deliveries d WHERE d.id = $1`,
      [made.rows[0]!.id],
    );
    return rows[0]!;
  }

  /** Newest first: the log a user reads when a receiver misbehaves. */
  async listDeliveries(webhookId: string, before: PageKey | null, limit: number): Promise<DeliveryRow[]> {
    const { rows } = await this.db.query<DeliveryRow>(
      `SELECT ${DELIVERY} FROM webhook_deliveries d WHERE d.webhook_id = $1
         AND ($2::timestamptz IS NULL OR (d.created_at, d.id) < ($2::timestamptz, $3::uuid))
       ORDER BY d.created_at DESC, d.id DESC LIMIT $4`,
      [webhookId, before?.at ?? null, before?.id ?? null, limit + 1],
    );
    return rows;
  }

  async getWork(deliveryId: string): Promise<DeliveryWork | undefined> {
    const { rows } = await this.db.query<DeliveryWork>(
      `SELECT ${DELIVERY}, w.url, w.secret_version
       FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = $1`,
      [deliveryId],
    );
    return rows[0];
  }

  async recordAttempt(
    deliveryId: string,
    r: { state: DeliveryRow['state']; status: number | null; error: string | null; at: Date },
  ): Promise<void> {
    await this.db.query(
      `UPDATE webhook_deliveries SET attempts = attempts + 1, state = $2::text, response_status = $3,
         last_error = $4, updated_at = $5::timestamptz,
         delivered_at = CASE WHEN $2::text = 'succeeded' THEN $5::timestamptz END
       WHERE id = $1`,
      [deliveryId, r.state, r.status, r.error, r.at],
    );
  }
}
