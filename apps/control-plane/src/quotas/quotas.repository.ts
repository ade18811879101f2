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
      `SELECT ${HOURS_USED} AS h
       FROM environment_usage u
       WHERE u.owner_id = $1 AND ${OVERLAPS}`,
      [userId, from, to],
    );
    return rows[0]?.h ?? 0;
  }

  /**
   * Ready environments whose owner has used their environment-hours for [from, to) (for the
   * reaper: create and start are refused past the quota, this catches what keeps running).
   * `defaultLimit` is the installation's default; a user's override wins; 0 is no limit.
   */
  async readyOverDailyHours(
    defaultLimit: number,
    from: Date,
    to: Date,
    limit: number,
  ): Promise<OverHoursRow[]> {
    const { rows } = await this.db.query<OverHoursRow>(
      `WITH owners AS (
         SELECT o.owner_id, coalesce(q.env_hours_per_day, $1)::float8 AS limit_hours
         FROM (SELECT DISTINCT owner_id FROM environments WHERE state = 'ready') o
         LEFT JOIN user_quotas q ON q.user_id = o.owner_id
       ),
       over AS (
         SELECT o.owner_id, o.limit_hours, used.hours AS used_hours
         FROM owners o
         CROSS JOIN LATERAL (
           SELECT ${HOURS_USED} AS hours
           FROM environment_usage u
           WHERE u.owner_id = o.owner_id AND ${OVERLAPS}
         ) used
         WHERE o.limit_hours > 0 AND used.hours >= o.limit_hours
       )
       SELECT e.id, e.owner_id, over.limit_hours, over.used_hours
       FROM environments e JOIN over ON over.owner_id = e.owner_id
       WHERE e.state = 'ready'
       ORDER BY e.owner_id, e.id
       LIMIT $4`,
      [defaultLimit, from, to, limit],
    );
    return rows;
  }
}

export interface OverHoursRow {
  id: string;
  owner_id: string;
  limit_hours: number;
  used_hours: number;
}

/** Hours of `environment_usage u` inside [$2, $3): open intervals count up to $3. */
const HOURS_USED = `coalesce(sum(extract(epoch FROM
    least(coalesce(u.ended_at, $3::timestamptz), $3::timestamptz) - greatest(u.started_at, $2::timestamptz)
  )), 0)::float8 / 3600`;
const OVERLAPS = `u.started_at < $3::timestamptz AND (u.ended_at IS NULL OR u.ended_at > $2::timestamptz)`;
