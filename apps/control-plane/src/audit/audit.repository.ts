import { Inject, Injectable } from '@nestjs/common';
import type { Pool } from '@berth/db';
import { PG_POOL } from '../common/di.js';

export interface AuditRow {
  id: string;
  at: Date;
  user_id: string | null;
  actor_email: string | null;
  token_id: string | null;
  ip: string | null;
  action: string;
  route: string | null;
  target_type: string | null;
  target_id: string | null;
  result: number;
  request_id: string | null;
  details: Record<string, unknown>;
  page_at: string;
}

export interface NewAuditRow {
  at: Date;
  userId: string | null;
  actorEmail: string | null;
  tokenId: string | null;
  ip: string | null;
  action: string;
  route: string | null;
  targetType: string | null;
  targetId: string | null;
  result: number;
  requestId: string | null;
  details: Record<string, unknown>;
}

export interface AuditFilter {
  userId?: string;
  /** Exact action or route; a trailing `*` matches a prefix (`tokens.*`). */
  action?: string;
  since?: Date;
  until?: Date;
  targetType?: string;
  targetId?: string;
}

/** Keyset position, newest first: (at as Postgres text, id). */
export interface AuditKey {
  at: string;
  id: string;
}

const COLUMNS = `id::text AS id, at, user_id, actor_email, token_id, ip, action, route, target_type, target_id,
  result, request_id, details, at::text AS page_at`;

@Injectable()
export class AuditRepository {
  constructor(@Inject(PG_POOL) private readonly db: Pool) {}

  async insert(r: NewAuditRow): Promise<void> {
    // The user may have been deleted by this very request (DELETE /users/:id on oneself is
    // refused, but a race with another admin is not): insert NULL rather than fail the FK.
    await this.db.query(
      `INSERT INTO audit_log (at, user_id, actor_email, token_id, ip, action, route, target_type, target_id, result, request_id, details)
       VALUES ($1, (SELECT id FROM users WHERE id = $2::uuid), $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
      [
        r.at,
        r.userId,
        r.actorEmail,
        r.tokenId,
        r.ip,
        r.action,
        r.route,
        r.targetType,
        r.targetId,
        r.result,
        r.requestId,
        r.details,
      ],
    );
  }

  async list(f: AuditFilter, opts: { limit: number; before: AuditKey | null }): Promise<AuditRow[]> {
    const prefix = f.action?.endsWith('*') ? f.action.slice(0, -1) : null;
    const { rows } = await this.db.query<AuditRow>(
      `SELECT ${COLUMNS} FROM audit_log
       WHERE ($1::uuid IS NULL OR user_id = $1)
         AND ($2::text IS NULL OR action = $2 OR route = $2)
         AND ($3::text IS NULL OR starts_with(action, $3) OR starts_with(route, $3))
         AND ($4::timestamptz IS NULL OR at >= $4)
         AND ($5::timestamptz IS NULL OR at < $5)
         AND ($6::text IS NULL OR target_type = $6)
         AND ($7::text IS NULL OR target_id = $7)
         AND ($8::timestamptz IS NULL OR (at, id) < ($8::timestamptz, $9::bigint))
       ORDER BY at DESC, id DESC LIMIT $10`,
      [
        f.userId ?? null,
        prefix === null ? (f.action ?? null) : null,
        prefix,
        f.since ?? null,
        f.until ?? null,
        f.targetType ?? null,
        f.targetId ?? null,
        opts.before?.at ?? null,
        opts.before?.id ?? null,
        opts.limit + 1,
      ],
    );
    return rows;
  }
}
