import { Inject, Injectable } from '@nestjs/common';
import type { Pool } from '@berth/db';
import { PG_POOL } from '../common/di.js';

export interface ShareRow {
  id: string;
  environment_id: string;
  session_id: string;
  created_by: string;
  created_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
}

/** A share found by its token, with what a viewer needs: the environment and who shared it. */
export interface ShareLookup extends ShareRow {
  owner_id: string;
  shared_by: string;
}

const COLUMNS =
  's.id, s.environment_id, s.session_id, s.created_by, s.created_at, s.expires_at, s.revoked_at';

@Injectable()
export class SharesRepository {
  constructor(@Inject(PG_POOL) private readonly db: Pool) {}

  async insert(s: {
    environmentId: string;
    sessionId: string;
    tokenHash: Buffer;
    createdBy: string;
    expiresAt: Date;
  }): Promise<ShareRow> {
    const { rows } = await this.db.query<ShareRow>(
      `INSERT INTO terminal_shares AS s (environment_id, session_id, token_hash, created_by, expires_at)
       VALUES ($1, $2, $3, $4, $5) RETURNING ${COLUMNS}`,
      [s.environmentId, s.sessionId, s.tokenHash, s.createdBy, s.expiresAt],
    );
    return rows[0]!;
  }

  /** Shares of the environment still usable at `now`. */
  async live(environmentId: string, now: Date): Promise<ShareRow[]> {
    const { rows } = await this.db.query<ShareRow>(
      `SELECT ${COLUMNS} FROM terminal_shares s
       WHERE s.environment_id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2
       ORDER BY s.created_at, s.id`,
      [environmentId, now],
    );
    return rows;
  }

  /** The share as revoked now; undefined when there is none or it was revoked before. */
  async revoke(environmentId: string, id: string, now: Date): Promise<ShareRow | undefined> {
    const { rows } = await this.db.query<ShareRow>(
      `UPDATE terminal_shares AS s SET revoked_at = $3
       WHERE s.id = $2 AND s.environment_id = $1 AND s.revoked_at IS NULL
       RETURNING ${COLUMNS}`,
      [environmentId, id, now],
    );
    return rows[0];
  }

  async byToken(tokenHash: Buffer): Promise<ShareLookup | undefined> {
    const { rows } = await this.db.query<ShareLookup>(
      `SELECT ${COLUMNS}, e.owner_id, u.email AS shared_by
       FROM terminal_shares s
       JOIN environments e ON e.id = s.environment_id
       JOIN users u ON u.id = s.created_by
       WHERE s.token_hash = $1`,
      [tokenHash],
    );
    return rows[0];
  }
}
