import { Inject, Injectable } from '@nestjs/common';
import type { LaunchSource, Pool, Queryable } from '@berth/db';
import { PG_POOL } from '../common/di.js';
import type { PageKey } from '../common/pagination.js';

export type EnvironmentState =
  | 'pending'
  | 'provisioning'
  | 'ready'
  | 'stopping'
  | 'stopped'
  | 'starting'
  | 'destroying'
  | 'destroyed'
  | 'failed';

export interface EnvironmentRow {
  id: string;
  owner_id: string;
  name: string;
  provider: string;
  spec: Record<string, unknown>;
  spec_hash: string;
  state: EnvironmentState;
  state_reason: string | null;
  gateway_url: string | null;
  node: string | null;
  created_at: Date;
  updated_at: Date;
  ready_at: Date | null;
  last_activity_at: Date;
  destroyed_at: Date | null;
  launch_source: LaunchSource;
  page_at: string;
}

export interface EnvironmentEventRow {
  id: string;
  environment_id: string;
  at: Date;
  kind: string;
  message: string;
  data: unknown;
}

const COLUMNS = `id, owner_id, name, provider, spec, spec_hash, state, state_reason, gateway_url, node,
  created_at, updated_at, ready_at, last_activity_at, destroyed_at, launch_source, created_at::text AS page_at`;

@Injectable()
export class EnvironmentsRepository {
  constructor(@Inject(PG_POOL) private readonly db: Pool) {}

  /** Undefined when the owner already has a live environment of that name. */
  async insert(
    q: Queryable,
    e: {
      ownerId: string;
      name: string;
      provider: string;
      spec: unknown;
      specHash: string;
      id?: string;
      launchSource?: LaunchSource;
    },
  ): Promise<EnvironmentRow | undefined> {
    const { rows } = await q.query<EnvironmentRow>(
      `INSERT INTO environments (id, owner_id, name, provider, spec, spec_hash, launch_source)
       VALUES (COALESCE($6::uuid, gen_random_uuid()), $1, $2, $3, $4, $5, $7)
       ON CONFLICT DO NOTHING RETURNING ${COLUMNS}`,
      [
        e.ownerId,
        e.name,
        e.provider,
        JSON.stringify(e.spec),
        e.specHash,
        e.id ?? null,
        e.launchSource ?? 'api',
      ],
    );
    return rows[0];
  }

  async findOwned(ownerId: string, id: string, q: Queryable = this.db): Promise<EnvironmentRow | undefined> {
    const { rows } = await q.query<EnvironmentRow>(
      `SELECT ${COLUMNS} FROM environments WHERE id = $1 AND owner_id = $2`,
      [id, ownerId],
    );
    return rows[0];
  }

  async findById(id: string, q: Queryable = this.db): Promise<EnvironmentRow | undefined> {
    const { rows } = await q.query<EnvironmentRow>(`SELECT ${COLUMNS} FROM environments WHERE id = $1`, [id]);
    return rows[0];
  }

  /** Locks the row for a state change in the caller's transaction. */
  async lockOwned(q: Queryable, ownerId: string, id: string): Promise<EnvironmentRow | undefined> {
    const { rows } = await q.query<EnvironmentRow>(
      `SELECT ${COLUMNS} FROM environments WHERE id = $1 AND owner_id = $2 FOR UPDATE`,
      [id, ownerId],
    );
    return rows[0];
  }

  async lock(q: Queryable, id: string): Promise<EnvironmentRow | undefined> {
    const { rows } = await q.query<EnvironmentRow>(
      `SELECT ${COLUMNS} FROM environments WHERE id = $1 FOR UPDATE`,
      [id],
    );
    return rows[0];
  }

  async listOwned(
    ownerId: string,
    opts: { limit: number; after: PageKey | null; includeDestroyed: boolean },
  ): Promise<EnvironmentRow[]> {
    const { rows } = await this.db.query<EnvironmentRow>(
      `SELECT ${COLUMNS} FROM environments
       WHERE owner_id = $1 AND ($2 OR destroyed_at IS NULL)
         AND ($3::timestamptz IS NULL OR (created_at, id) > ($3::timestamptz, $4::uuid))
       ORDER BY created_at, id LIMIT $5`,
      [ownerId, opts.includeDestroyed, opts.after?.at ?? null, opts.after?.id ?? null, opts.limit + 1],
    );
    return rows;
  }

  async setState(
    q: Queryable,
    id: string,
    state: EnvironmentState,
    patch: { reason?: string | null; gatewayUrl?: string | null; node?: string | null } = {},
  ): Promise<EnvironmentRow> {
    const { rows } = await q.query<EnvironmentRow>(
      `UPDATE environments SET
         state = $2,
         state_reason = $3,
         gateway_url = CASE WHEN $4 THEN $5 ELSE gateway_url END,
         node = COALESCE($6, node),
         ready_at = CASE WHEN $2 = 'ready' THEN now() ELSE ready_at END,
         destroyed_at = CASE WHEN $2 = 'destroyed' THEN now() ELSE destroyed_at END,
         last_activity_at = CASE WHEN $2 IN ('ready', 'starting') THEN now() ELSE last_activity_at END,
         updated_at = now()
       WHERE id = $1 RETURNING ${COLUMNS}`,
      [
        id,
        state,
        patch.reason ?? null,
        patch.gatewayUrl !== undefined,
        patch.gatewayUrl ?? null,
        patch.node ?? null,
      ],
    );
    return rows[0]!;
  }

  /** setState only if the row is still in `from`; undefined when another request moved it first. */
  async transition(
    q: Queryable,
    id: string,
    from: EnvironmentState,
    to: EnvironmentState,
    patch: { reason?: string | null } = {},
  ): Promise<EnvironmentRow | undefined> {
    const { rows } = await q.query<EnvironmentRow>(
      `UPDATE environments SET state = $3, state_reason = $4, updated_at = now()
       WHERE id = $1 AND state = $2 RETURNING ${COLUMNS}`,
      [id, from, to, patch.reason ?? null],
    );
    return rows[0];
  }

  /** A new reason for the current state; `state = state` so live clients are told to re-read it. */
  async setReason(q: Queryable, id: string, reason: string): Promise<void> {
    await q.query(
      `UPDATE environments SET state = state, state_reason = $2, updated_at = now() WHERE id = $1`,
      [id, reason],
    );
  }

  /**
   * Environments mid-operation whose newest lifecycle job is dead (attempts used up, e.g. by
   * workers that crashed while holding it) and nothing is queued or running for them any more.
   */
  async stuckOnDeadJobs(
    limit: number,
  ): Promise<Array<{ id: string; state: EnvironmentState; kind: string; last_error: string | null }>> {
    const { rows } = await this.db.query<{
      id: string;
      state: EnvironmentState;
      kind: string;
      last_error: string | null;
    }>(
      `SELECT e.id, e.state, j.kind, j.last_error
       FROM environments e
       JOIN LATERAL (
         SELECT kind, state, last_error FROM jobs
         WHERE kind LIKE 'environment.%' AND payload->>'environmentId' = e.id::text
         ORDER BY id DESC LIMIT 1
       ) j ON j.state = 'dead'
       WHERE e.state IN ('pending', 'provisioning', 'stopping', 'starting', 'destroying')
       LIMIT $1`,
      [limit],
    );
    return rows;
  }

  async touchActivity(id: string, at: Date): Promise<void> {
    await this.db.query(
      `UPDATE environments SET last_activity_at = greatest(last_activity_at, $2) WHERE id = $1`,
      [id, at],
    );
  }

  async addEvent(
    q: Queryable,
    environmentId: string,
    kind: string,
    message: string,
    data?: unknown,
  ): Promise<void> {
    await q.query(
      `INSERT INTO environment_events (environment_id, kind, message, data) VALUES ($1, $2, $3, $4)`,
      [environmentId, kind, message, data === undefined ? null : JSON.stringify(data)],
    );
  }

  async events(environmentId: string, afterId: string | null, limit: number): Promise<EnvironmentEventRow[]> {
    const { rows } = await this.db.query<EnvironmentEventRow>(
      `SELECT id::text, environment_id, at, kind, message, data FROM environment_events
       WHERE environment_id = $1 AND ($2::bigint IS NULL OR id > $2::bigint) ORDER BY id LIMIT $3`,
      [environmentId, afterId, limit + 1],
    );
    return rows;
  }

  /** Ready environments idle since before `cutoff` (for auto-stop). */
  async idleSince(cutoff: Date, limit: number): Promise<EnvironmentRow[]> {
    const { rows } = await this.db.query<EnvironmentRow>(
      `SELECT ${COLUMNS} FROM environments WHERE state = 'ready' AND last_activity_at < $1 ORDER BY last_activity_at LIMIT $2`,
      [cutoff, limit],
    );
    return rows;
  }

  /** Environments not yet destroyed that were created before `cutoff` (global lifetime). */
  async createdBefore(cutoff: Date, limit: number): Promise<EnvironmentRow[]> {
    const { rows } = await this.db.query<EnvironmentRow>(
      `SELECT ${COLUMNS} FROM environments
       WHERE destroyed_at IS NULL AND state NOT IN ('destroying', 'destroyed') AND created_at < $1
       ORDER BY created_at LIMIT $2`,
      [cutoff, limit],
    );
    return rows;
  }

  /** Ids of environments of a provider that should exist there (not destroyed). */
  /** The owner's Vault settings and the secret reference named `envName`, for a repo token. */
  async secretSource(
    ownerId: string,
    envName: string,
  ): Promise<{ settings: SecretSettingsRow | undefined; ref: SecretRefRow | undefined }> {
    const [settings, ref] = await Promise.all([
      this.db.query<SecretSettingsRow>(
        `SELECT vault_address, auth_mount, role, audience, namespace, ca_cert, kv_mount
         FROM secret_settings WHERE user_id = $1`,
        [ownerId],
      ),
      this.db.query<SecretRefRow>(
        `SELECT env_name, path, key, mount FROM secret_refs WHERE user_id = $1 AND env_name = $2`,
        [ownerId, envName],
      ),
    ]);
    return { settings: settings.rows[0], ref: ref.rows[0] };
  }

  async installationId(): Promise<string | undefined> {
    const { rows } = await this.db.query<{ value: string }>(
      `SELECT value FROM metadata WHERE key = 'installation_id'`,
    );
    return rows[0]?.value;
  }

  async liveIds(
    provider: string,
  ): Promise<Map<string, { state: EnvironmentRow['state']; node: string | null }>> {
    const { rows } = await this.db.query<{ id: string; state: EnvironmentRow['state']; node: string | null }>(
      `SELECT id, state, node FROM environments WHERE provider = $1 AND destroyed_at IS NULL`,
      [provider],
    );
    return new Map(rows.map((r) => [r.id, { state: r.state, node: r.node }]));
  }
}

export interface SecretSettingsRow {
  vault_address: string;
  auth_mount: string;
  role: string;
  audience: string;
  namespace: string | null;
  ca_cert: string | null;
  kv_mount: string;
}

export interface SecretRefRow {
  env_name: string;
  path: string;
  key: string;
  mount: string | null;
}
