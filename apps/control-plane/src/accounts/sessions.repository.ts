import { Inject, Injectable } from '@nestjs/common';
import type { Pool } from '@berth/db';
import { PG_POOL } from '../common/di.js';

export interface SessionRow {
  id: string;
  user_id: string;
  expires_at: Date;
}

@Injectable()
export class SessionsRepository {
  constructor(@Inject(PG_POOL) private readonly db: Pool) {}

  async create(userId: string, hash: Buffer, expiresAt: Date): Promise<SessionRow> {
    const { rows } = await this.db.query<SessionRow>(
      `INSERT INTO sessions (user_id, token_hash, expires_at) VALUES ($1, $2, $3) RETURNING id, user_id, expires_at`,
      [userId, hash, expiresAt],
    );
    return rows[0]!;
  }

  async findActiveByHash(hash: Buffer, now: Date): Promise<SessionRow | undefined> {
    const { rows } = await this.db.query<SessionRow>(
      `SELECT id, user_id, expires_at FROM sessions WHERE token_hash = $1 AND expires_at > $2`,
      [hash, now],
    );
    return rows[0];
  }

  async isActive(id: string, now: Date): Promise<boolean> {
    const { rowCount } = await this.db.query(`SELECT 1 FROM sessions WHERE id = $1 AND expires_at > $2`, [
      id,
      now,
    ]);
    return (rowCount ?? 0) > 0;
  }

  async delete(id: string): Promise<void> {
    const { rowCount } = await this.db.query(`DELETE FROM sessions WHERE id = $1`, [id]);
    if (rowCount) await notifyRevoked(this.db);
  }

  async deleteForUser(userId: string): Promise<void> {
    const { rowCount } = await this.db.query(`DELETE FROM sessions WHERE user_id = $1`, [userId]);
    if (rowCount) await notifyRevoked(this.db);
  }
}

/** Tells every replica's live sockets to re-check their credentials now (see LiveService). */
export async function notifyRevoked(db: Pool): Promise<void> {
  await db.query(`SELECT pg_notify('berth_live', '{"kind":"revoked"}')`);
}
