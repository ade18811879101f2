import { Inject, Injectable } from '@nestjs/common';
import type { Pool, Queryable } from '@berth/db';
import { PG_POOL } from '../common/di.js';

export interface QuotaRow {
  user_id: string;
  max_environments: number | null;
  max_tasks: number | null;
  max_cpus: string | null;
  max_memory_mb: number | null;
  env_hours_per_day: string | null;
  updated_at: Date;
  updated_by: string | null;
}

export interface QuotaPatch {
  maxEnvironments?: number | null;
  maxTasks?: number | null;
  maxCpus?: number | null;
  maxMemoryMb?: number | null;
  envHoursPerDay?: number | null;
}

const FIELDS = {
  maxEnvironments: 'max_environments',
  maxTasks: 'max_tasks',
  maxCpus: 'max_cpus',
  maxMemoryMb: 'max_memory_mb',
  envHoursPerDay: 'env_hours_per_day',
} as const;

@Injectable()
export class QuotasRepository {
  constructor(@Inject(PG_POOL) private readonly db: Pool) {}

  async get(userId: string, db: Queryable = this.db): Promise<QuotaRow | undefined> {
    const { rows } = await db.query<QuotaRow>(`SELECT * FROM user_quotas WHERE user_id = $1`, [userId]);
    return rows[0];
  }

  /** Only the fields given change; null puts a field back to the installation default. */
  async put(userId: string, patch: QuotaPatch, by: string): Promise<QuotaRow> {
    const keys = (Object.keys(FIELDS) as Array<keyof typeof FIELDS>).filter((k) => patch[k] !== undefined);
    const cols = keys.map((k) => FIELDS[k]);
    const { rows } = await this.db.query<QuotaRow>(
      `INSERT INTO user_quotas (user_id, updated_by${cols.map((c) => `, ${c}`).join('')})
       VALUES ($1, $2${keys.map((_, i) => `, $${i + 3}`).join('')})
       ON CONFLICT (user_id) DO UPDATE SET updated_at = now(), updated_by = EXCLUDED.updated_by
         ${cols.map((c) => `, ${c} = EXCLUDED.${c}`).join('')}
       RETURNING *`,
      [userId, by, ...keys.map((k) => patch[k])],
    );
    return rows[0]!;
  }

  /** Serialises one user's admissions, so a count taken after it holds until the transaction ends. */
  async lockUser(tx: Queryable, userId: string): Promise<void> {
    await tx.query(`SELECT pg_advisory_xact_lock(hashtext('berth.quota:' || $1))`, [userId]);
  }

  /** Environments that hold or will hold resources: everything not ended. */
  async liveEnvironments(userId: string, db: Queryable = this.db): Promise<number> {
    const { rows } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM environments
       WHERE owner_id = $1 AND destroyed_at IS NULL AND state NOT IN ('failed', 'destroying', 'destroyed')`,
      [userId],
    );
    return rows[0]?.n ?? 0;
  }

  async activeTasks(userId: string, db: Queryable = this.db): Promise<number> {
    const { rows } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM tasks WHERE owner_id = $1 AND state IN ('queued', 'provisioning', 'running')`,
      [userId],
    );
    return rows[0]?.n ?? 0;
  }

  /** Environment-hours used in [from, to): open intervals count up to `to`. */
  async environmentHours(userId: string, from: Date, to: Date, db: Queryable = this.db): Promise<number> {
    const { rows } = await db.query<{ h: number }>(
      `SELECT coalesce(sum(extract(epoch FROM
           least(coalesce(ended_at, $3::timestamptz), $3::timestamptz) - greatest(started_at, $2::timestamptz)
         )), 0)::float8 / 3600 AS h
       FROM environment_usage
       WHERE owner_id = $1 AND started_at < $3::timestamptz AND (ended_at IS NULL OR ended_at > $2::timestamptz)`,
      [userId, from, to],
    );
    return rows[0]?.h ?? 0;
  }
}
