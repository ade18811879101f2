import { Inject, Injectable } from '@nestjs/common';
import type { Pool } from '@berth/db';
import type { PortSharing } from '@berth/protocol';
import { PG_POOL } from '../common/di.js';

export interface PortRow {
  environment_id: string;
  port: number;
  sharing: PortSharing;
  updated_at: Date;
}

@Injectable()
export class PortsRepository {
  constructor(@Inject(PG_POOL) private readonly db: Pool) {}

  async list(environmentId: string): Promise<PortRow[]> {
    const { rows } = await this.db.query<PortRow>(
      `SELECT environment_id, port, sharing, updated_at FROM environment_ports
       WHERE environment_id = $1 ORDER BY port`,
      [environmentId],
    );
    return rows;
  }

  async sharing(environmentId: string, port: number): Promise<PortSharing> {
    const { rows } = await this.db.query<{ sharing: PortSharing }>(
      `SELECT sharing FROM environment_ports WHERE environment_id = $1 AND port = $2`,
      [environmentId, port],
    );
    return rows[0]?.sharing ?? 'owner';
  }

  /** Sets the level and returns the one it replaced, in one statement (no lost update between two owners' tabs). */
  async setSharing(
    environmentId: string,
    port: number,
    sharing: PortSharing,
    by: string,
  ): Promise<PortSharing> {
    const { rows } = await this.db.query<{ previous: PortSharing | null }>(
      `WITH prev AS (
         SELECT sharing FROM environment_ports WHERE environment_id = $1 AND port = $2 FOR UPDATE
       ), up AS (
         INSERT INTO environment_ports (environment_id, port, sharing, updated_by)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (environment_id, port)
         DO UPDATE SET sharing = EXCLUDED.sharing, updated_at = now(), updated_by = EXCLUDED.updated_by
       )
       SELECT (SELECT sharing FROM prev) AS previous`,
      [environmentId, port, sharing, by],
    );
    return rows[0]?.previous ?? 'owner';
  }
}
