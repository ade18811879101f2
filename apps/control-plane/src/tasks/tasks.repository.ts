import type { Queryable } from '@berth/db';

/**
 * The control plane's own task SQL (the engine's lives in @berth/db): per-user admission and
 * the link between a task and the environment it brought.
 */

/**
 * Serialises task creation per user for the rest of the caller's transaction, so two requests
 * at once cannot both slip under the concurrency limit.
 */
export async function lockUserTaskAdmission(tx: Queryable, ownerId: string): Promise<void> {
  await tx.query(`SELECT pg_advisory_xact_lock(hashtext('berth.task-admission'), hashtext($1))`, [ownerId]);
}

export async function countActiveTasks(db: Queryable, ownerId: string): Promise<number> {
  const { rows } = await db.query<{ n: string }>(
    `SELECT count(*) AS n FROM tasks WHERE owner_id = $1 AND state IN ('queued', 'provisioning', 'running')`,
    [ownerId],
  );
  return Number(rows[0]?.n ?? 0);
}

export async function idempotencyKeyUsed(db: Queryable, ownerId: string, key: string): Promise<boolean> {
  const { rowCount } = await db.query(`SELECT 1 FROM tasks WHERE owner_id = $1 AND idempotency_key = $2`, [
    ownerId,
    key,
  ]);
  return (rowCount ?? 0) > 0;
}

/**
 * The names among `names` that are not env names of the owner's secret references, and whether
 * the owner has told Berth where their Vault is at all.
 */
export async function checkSecretNames(
  db: Queryable,
  ownerId: string,
  names: string[],
): Promise<{ unknown: string[]; vaultConfigured: boolean }> {
  const { rows } = await db.query<{ unknown: string[]; configured: boolean }>(
    `SELECT ARRAY(SELECT n FROM unnest($2::text[]) AS n
                  WHERE NOT EXISTS (SELECT 1 FROM secret_refs r WHERE r.user_id = $1 AND r.env_name = n)) AS unknown,
            EXISTS (SELECT 1 FROM secret_settings WHERE user_id = $1) AS configured`,
    [ownerId, names],
  );
  return { unknown: rows[0]?.unknown ?? names, vaultConfigured: rows[0]?.configured ?? false };
}

/** Marks the task's environment as its own: a trigger (migration 0007) destroys it when the task ends. */
export async function markDestroyEnvironment(tx: Queryable, taskId: string): Promise<void> {
  await tx.query(`UPDATE tasks SET destroy_environment = true WHERE id = $1`, [taskId]);
}

/** An environment the user may run a task in: theirs and not destroyed (or being destroyed). */
export async function usableEnvironment(
  db: Queryable,
  ownerId: string,
  environmentId: string,
): Promise<{ id: string; state: string } | undefined> {
  const { rows } = await db.query<{ id: string; state: string }>(
    `SELECT id, state FROM environments WHERE id = $1 AND owner_id = $2 AND destroyed_at IS NULL`,
    [environmentId, ownerId],
  );
  return rows[0];
}

/**
 * Adds terminal settings to the task's `start` control message, in the transaction that wrote
 * it (before any worker can deliver it): the gateway reads them from there.
 */
export async function setStartOptions(
  tx: Queryable,
  taskId: string,
  opts: { tty: true; cols?: number; rows?: number },
): Promise<void> {
  await tx.query(
    `UPDATE task_messages SET body = body || $2::jsonb WHERE task_id = $1 AND kind = 'start' AND acked_at IS NULL`,
    [taskId, JSON.stringify(opts)],
  );
}
