import { Inject, Injectable } from '@nestjs/common';
import type { Pool, Queryable } from '@berth/db';
import { PG_POOL } from '../common/di.js';

/** One-time facts about this installation (e.g. that the bootstrap token was issued). */
@Injectable()
export class MetadataRepository {
  constructor(@Inject(PG_POOL) private readonly db: Pool) {}

  async get<T>(key: string, q: Queryable = this.db): Promise<T | undefined> {
    const { rows } = await q.query<{ value: T }>(`SELECT value FROM metadata WHERE key = $1`, [key]);
    return rows[0]?.value;
  }

  /** False when the key was already set: the first writer wins. */
  async setOnce(key: string, value: unknown, q: Queryable = this.db): Promise<boolean> {
    const { rowCount } = await q.query(
      `INSERT INTO metadata (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`,
      [key, JSON.stringify(value)],
    );
    return (rowCount ?? 0) > 0;
  }

  async set(key: string, value: unknown, q: Queryable = this.db): Promise<void> {
    await q.query(
      `INSERT INTO metadata (key, value) VALUES ($1, $2)
       ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`,
      [key, JSON.stringify(value)],
    );
  }
}
