import { Inject, Injectable } from '@nestjs/common';
import type { Pool } from '@berth/db';
import { PG_POOL } from '../common/di.js';
import type { PageKey } from '../common/pagination.js';
import { notifyRevoked } from './sessions.repository.js';

export interface TokenRow {
  id: string;
  user_id: string;
  name: string;
  prefix: string;
  scopes: string[];
  expires_at: Date | null;
  last_used_at: Date | null;
  revoked_at: Date | null;
  created_at: Date;
  page_at: string;
}

const COLUMNS = `id, user_id, name, prefix, scopes, expires_at, last_used_at, revoked_at, created_at, created_at::text AS page_at`;

@Injectable()
export class TokensRepository {
  constructor(@Inject(PG_POOL) private readonly db: Pool) {}

  async create(t: {
    userId: string;
    name: string;
    hash: Buffer;
    prefix: string;
    scopes: string[];
    expiresAt: Date | null;
  }): Promise<TokenRow> {
    const { rows } = await this.db.query<TokenRow>(
      `INSERT INTO api_tokens (user_id, name, token_hash, prefix, scopes, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${COLUMNS}`,
      [t.userId, t.name, t.hash, t.prefix, t.scopes, t.expiresAt],
    );
    return rows[0]!;
  }

  /** A live token by its hash; expired and revoked ones are not found. */
  async findActiveByHash(hash: Buffer, now: Date): Promise<TokenRow | undefined> {
    const { rows } = await this.db.query<TokenRow>(
      `SELECT ${COLUMNS} FROM api_tokens
       WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)`,
      [hash, now],
    );
    return rows[0];
  }

  /** Written at most once a minute per token, so a busy script does not write on every call. */
  async touch(id: string, now: Date): Promise<void> {
    await this.db.query(
      `UPDATE api_tokens SET last_used_at = $2
       WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2::timestamptz - interval '1 minute')`,
      [id, now],
    );
  }

  async findOwned(userId: string, id: string): Promise<TokenRow | undefined> {
    const { rows } = await this.db.query<TokenRow>(
      `SELECT ${COLUMNS} FROM api_tokens WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL`,
      [id, userId],
    );
    return rows[0];
  }

  async listOwned(userId: string, opts: { limit: number; after: PageKey | null }): Promise<TokenRow[]> {
    const { rows } = await this.db.query<TokenRow>(
      `SELECT ${COLUMNS} FROM api_tokens
       WHERE user_id = $1 AND revoked_at IS NULL
         AND ($2::timestamptz IS NULL OR (created_at, id) > ($2::timestamptz, $3::uuid))
       ORDER BY created_at, id LIMIT $4`,
      [userId, opts.after?.at ?? null, opts.after?.id ?? null, opts.limit + 1],
    );
    return rows;
  }

  async rename(userId: string, id: string, name: string): Promise<TokenRow | undefined> {
    const { rows } = await this.db.query<TokenRow>(
      `UPDATE api_tokens SET name = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL RETURNING ${COLUMNS}`,
      [id, userId, name],
    );
    return rows[0];
  }

  async isActive(id: string, now: Date): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `SELECT 1 FROM api_tokens WHERE id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)`,
      [id, now],
    );
    return (rowCount ?? 0) > 0;
  }

  async revoke(userId: string, id: string, now: Date): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `UPDATE api_tokens SET revoked_at = $3 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL`,
      [id, userId, now],
    );
    if (rowCount) await notifyRevoked(this.db);
    return (rowCount ?? 0) > 0;
  }
}
