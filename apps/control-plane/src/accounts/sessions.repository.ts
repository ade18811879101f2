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

  async delete(id: string): Promise<void> {
    await this.db.query(`DELETE FROM sessions WHERE id = $1`, [id]);
  }

  async deleteForUser(userId: string): Promise<void> {
    await this.db.query(`DELETE FROM sessions WHERE user_id = $1`, [userId]);
  }
}
