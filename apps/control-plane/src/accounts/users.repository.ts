import { Inject, Injectable } from '@nestjs/common';
import { transaction, type Pool } from '@berth/db';
import { PG_POOL } from '../common/di.js';
import type { PageKey } from '../common/pagination.js';

export type Role = 'admin' | 'member';

export interface UserRow {
  id: string;
  email: string;
  password_hash: string | null;
  role: Role;
  display_name: string | null;
  created_at: Date;
  updated_at: Date;
  page_at: string;
}

const COLUMNS = `id, email, password_hash, role, display_name, created_at, updated_at, created_at::text AS page_at`;

@Injectable()
export class UsersRepository {
  constructor(@Inject(PG_POOL) private readonly db: Pool) {}

  async findById(id: string): Promise<UserRow | undefined> {
    const { rows } = await this.db.query<UserRow>(`SELECT ${COLUMNS} FROM users WHERE id = $1`, [id]);
    return rows[0];
  }

  async findByEmail(email: string): Promise<UserRow | undefined> {
    const { rows } = await this.db.query<UserRow>(
      `SELECT ${COLUMNS} FROM users WHERE lower(email) = lower($1)`,
      [email],
    );
    return rows[0];
  }

  /** Undefined when the email is taken (unique index on lower(email)). */
  async create(u: {
    email: string;
    passwordHash: string;
    role: Role;
    displayName?: string | null;
  }): Promise<UserRow | undefined> {
    const { rows } = await this.db.query<UserRow>(
      `INSERT INTO users (email, password_hash, role, display_name) VALUES ($1, $2, $3, $4)
       ON CONFLICT DO NOTHING RETURNING ${COLUMNS}`,
      [u.email, u.passwordHash, u.role, u.displayName ?? null],
    );
    return rows[0];
  }

  async list(opts: { limit: number; after: PageKey | null; onlyId?: string }): Promise<UserRow[]> {
    const { rows } = await this.db.query<UserRow>(
      `SELECT ${COLUMNS} FROM users
       WHERE ($1::uuid IS NULL OR id = $1)
         AND ($2::timestamptz IS NULL OR (created_at, id) > ($2::timestamptz, $3::uuid))
       ORDER BY created_at, id LIMIT $4`,
      [opts.onlyId ?? null, opts.after?.at ?? null, opts.after?.id ?? null, opts.limit + 1],
    );
    return rows;
  }

  async update(
    id: string,
    patch: { role?: Role; passwordHash?: string; displayName?: string | null },
  ): Promise<UserRow | undefined> {
    const { rows } = await this.db.query<UserRow>(
      `UPDATE users SET
         role = COALESCE($2, role),
         password_hash = COALESCE($3, password_hash),
         display_name = CASE WHEN $4 THEN $5 ELSE display_name END,
         updated_at = now()
       WHERE id = $1 RETURNING ${COLUMNS}`,
      [
        id,
        patch.role ?? null,
        patch.passwordHash ?? null,
        patch.displayName !== undefined,
        patch.displayName ?? null,
      ],
    );
    return rows[0];
  }

  /**
   * Deletes the user unless they still have environments that are not destroyed (their rows would
   * cascade away while the containers keep running). The user row is locked first, so an
   * environment created meanwhile (its foreign key takes a share lock on it) cannot slip in.
   */
  async deleteUnlessEnvironments(id: string): Promise<{ deleted: boolean; liveEnvironments: string[] }> {
    return transaction(this.db, async (tx) => {
      const { rowCount } = await tx.query(`SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, [id]);
      if (!rowCount) return { deleted: false, liveEnvironments: [] };
      const { rows } = await tx.query<{ name: string }>(
        `SELECT name FROM environments WHERE owner_id = $1 AND destroyed_at IS NULL ORDER BY name`,
        [id],
      );
      if (rows.length) return { deleted: false, liveEnvironments: rows.map((r) => r.name) };
      await tx.query(`DELETE FROM users WHERE id = $1`, [id]);
      return { deleted: true, liveEnvironments: [] };
    });
  }

  async countAdmins(): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM users WHERE role = 'admin'`,
    );
    return rows[0]?.n ?? 0;
  }
}
