import type { Queryable } from '@berth/db';
import type { ProviderStateStore } from '@berth/providers';

/**
 * A provider's per-environment state in Postgres (`provider_state`), so every control plane of
 * the installation sees what any of them wrote: a stop on one and a start on another work.
 */
export class PostgresProviderStateStore implements ProviderStateStore {
  constructor(
    private readonly db: Queryable,
    private readonly provider: string,
  ) {}

  async get(id: string): Promise<unknown> {
    const { rows } = await this.db.query<{ state: unknown }>(
      'SELECT state FROM provider_state WHERE provider = $1 AND environment_id = $2',
      [this.provider, id],
    );
    return rows[0]?.state;
  }

  async put(id: string, state: unknown): Promise<void> {
    await this.db.query(
      `INSERT INTO provider_state (provider, environment_id, state) VALUES ($1, $2, $3)
       ON CONFLICT (provider, environment_id) DO UPDATE SET state = EXCLUDED.state, updated_at = now()`,
      [this.provider, id, JSON.stringify(state)],
    );
  }

  async delete(id: string): Promise<void> {
    await this.db.query('DELETE FROM provider_state WHERE provider = $1 AND environment_id = $2', [
      this.provider,
      id,
    ]);
  }

  async list(): Promise<{ id: string; state: unknown }[]> {
    const { rows } = await this.db.query<{ id: string; state: unknown }>(
      'SELECT environment_id AS id, state FROM provider_state WHERE provider = $1 ORDER BY environment_id',
      [this.provider],
    );
    return rows;
  }
}
