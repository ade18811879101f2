import { Inject, Injectable } from '@nestjs/common';
import type { Pool } from '@berth/db';
import { PG_POOL } from '../common/di.js';
import type { PageKey } from '../common/pagination.js';

export interface SecretSettingsRow {
  user_id: string;
  vault_address: string;
  auth_mount: string;
  role: string;
  audience: string;
  namespace: string | null;
  ca_cert: string | null;
  kv_mount: string;
  updated_at: Date;
}

export interface SecretRefRow {
  id: string;
  user_id: string;
  env_name: string;
  path: string;
  key: string;
  mount: string | null;
  created_at: Date;
  page_at: string;
}

const REF_COLUMNS = `id, user_id, env_name, path, key, mount, created_at, created_at::text AS page_at`;

@Injectable()
export class SecretsRepository {
  constructor(@Inject(PG_POOL) private readonly db: Pool) {}

  async getSettings(userId: string): Promise<SecretSettingsRow | undefined> {
    const { rows } = await this.db.query<SecretSettingsRow>(
      `SELECT * FROM secret_settings WHERE user_id = $1`,
      [userId],
    );
    return rows[0];
  }

  async putSettings(s: Omit<SecretSettingsRow, 'updated_at'>): Promise<SecretSettingsRow> {
    const { rows } = await this.db.query<SecretSettingsRow>(
      `INSERT INTO secret_settings (user_id, vault_address, auth_mount, role, audience, namespace, ca_cert, kv_mount)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (user_id) DO UPDATE SET vault_address = EXCLUDED.vault_address, auth_mount = EXCLUDED.auth_mount,
         role = EXCLUDED.role, audience = EXCLUDED.audience, namespace = EXCLUDED.namespace,
         ca_cert = EXCLUDED.ca_cert, kv_mount = EXCLUDED.kv_mount, updated_at = now()
       RETURNING *`,
      [s.user_id, s.vault_address, s.auth_mount, s.role, s.audience, s.namespace, s.ca_cert, s.kv_mount],
    );
    return rows[0]!;
  }

  async deleteSettings(userId: string): Promise<boolean> {
    const { rowCount } = await this.db.query(`DELETE FROM secret_settings WHERE user_id = $1`, [userId]);
    return (rowCount ?? 0) > 0;
  }

  /** Undefined when the env var already has a reference. */
  async addRef(r: {
    userId: string;
    env: string;
    path: string;
    key: string;
    mount: string | null;
  }): Promise<SecretRefRow | undefined> {
    const { rows } = await this.db.query<SecretRefRow>(
      `INSERT INTO secret_refs (user_id, env_name, path, key, mount) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT DO NOTHING RETURNING ${REF_COLUMNS}`,
      [r.userId, r.env, r.path, r.key, r.mount],
    );
    return rows[0];
  }

  async listRefs(userId: string, opts: { limit: number; after: PageKey | null }): Promise<SecretRefRow[]> {
    const { rows } = await this.db.query<SecretRefRow>(
      `SELECT ${REF_COLUMNS} FROM secret_refs
       WHERE user_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) > ($2::timestamptz, $3::uuid))
       ORDER BY created_at, id LIMIT $4`,
      [userId, opts.after?.at ?? null, opts.after?.id ?? null, opts.limit + 1],
    );
    return rows;
  }

  /** Every reference of a user, for a launch (bounded by the per-user limit on refs). */
  async allRefs(userId: string): Promise<SecretRefRow[]> {
    const { rows } = await this.db.query<SecretRefRow>(
      `SELECT ${REF_COLUMNS} FROM secret_refs WHERE user_id = $1 ORDER BY env_name`,
      [userId],
    );
    return rows;
  }

  /** The user's own environment (another user's is as absent as a missing one). */
  async ownedEnvironment(
    userId: string,
    id: string,
  ): Promise<{ id: string; name: string; state: string; gateway_url: string | null } | undefined> {
    const { rows } = await this.db.query<{
      id: string;
      name: string;
      state: string;
      gateway_url: string | null;
    }>(`SELECT id, name, state, gateway_url FROM environments WHERE id = $1 AND owner_id = $2`, [id, userId]);
    return rows[0];
  }

  async countRefs(userId: string): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM secret_refs WHERE user_id = $1`,
      [userId],
    );
    return rows[0]?.n ?? 0;
  }

  async deleteRef(userId: string, id: string): Promise<boolean> {
    const { rowCount } = await this.db.query(`DELETE FROM secret_refs WHERE id = $1 AND user_id = $2`, [
      id,
      userId,
    ]);
    return (rowCount ?? 0) > 0;
  }
}
