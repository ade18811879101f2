import { JobCatalog } from '@berth/protocol';
import type { Queryable } from '../pool.js';
import { enqueueJob } from '../queue/jobs.js';

/** Live status fan-out (the control plane's socket.io relays it); delivered when the transaction commits. */
export const LIVE_CHANNEL = 'berth_live';

export const TASK_STATES = [
  'queued',
  'provisioning',
  'running',
  'succeeded',
  'failed',
  'canceled',
  'timed_out',
] as const;
export type TaskState = (typeof TASK_STATES)[number];
export const TERMINAL_STATES: readonly TaskState[] = ['succeeded', 'failed', 'canceled', 'timed_out'];
export const isTerminal = (s: TaskState) => TERMINAL_STATES.includes(s);

/** The state machine: every transition the engine may make, and no other. */
export const TRANSITIONS: Record<TaskState, readonly TaskState[]> = {
  queued: ['provisioning', 'canceled'],
  provisioning: ['running', 'failed', 'canceled', 'timed_out'],
  running: ['succeeded', 'failed', 'canceled', 'timed_out'],
  succeeded: [],
  failed: [],
  canceled: [],
  timed_out: [],
};

export interface TaskRow {
  id: string;
  owner_id: string;
  environment_id: string | null;
  idempotency_key: string | null;
  request_hash: string | null;
  command: string[];
  env: Record<string, string>;
  state: TaskState;
  timeout_seconds: number;
  deadline_at: Date | null;
  exit_code: number | null;
  error: string | null;
  cancel_requested_at: Date | null;
  last_message_seq: number;
  acked_message_seq: number;
  log_bytes: string;
  worker_id: string | null;
  node: string | null;
  created_at: Date;
  updated_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  launch_source: LaunchSource;
  secret_names: string[] | null;
  page_at: string;
}

/** Where a launch came from, as its client said (X-Berth-Client); `api` when it did not say. */
export type LaunchSource = 'web' | 'mobile' | 'cli' | 'api';

const TASK_COLUMNS = `id, owner_id, environment_id, idempotency_key, request_hash, command, env, state, timeout_seconds,
  deadline_at, exit_code, error, cancel_requested_at, last_message_seq, acked_message_seq, log_bytes, worker_id, node,
  created_at, updated_at, started_at, finished_at, launch_source, secret_names, created_at::text AS page_at`;

export interface TaskEventRow {
  id: string;
  task_id: string;
  from_state: TaskState | null;
  to_state: TaskState;
  reason: string | null;
  worker_id: string | null;
  node: string | null;
  at: Date;
}

export type ControlMessageKind = 'start' | 'stop' | 'signal' | 'stdin_close';

export interface TaskMessageRow {
  task_id: string;
  seq: number;
  kind: ControlMessageKind;
  body: Record<string, unknown>;
  created_at: Date;
  acked_at: Date | null;
}

export interface NewTask {
  ownerId: string;
  command: string[];
  env?: Record<string, string>;
  timeoutSeconds: number;
  environmentId?: string | null;
  idempotencyKey?: string | null;
  requestHash?: string | null;
  /** Run it in a pseudo-terminal rather than with pipes (carried in the `start` message). */
  tty?: boolean;
  launchSource?: LaunchSource;
  /** Env names of the owner's secret references to give the task; undefined: all of them. */
  secretNames?: string[];
}

/**
 * Creates a task with its first event, its `start` control message and the job that drives
 * it, all in the caller's transaction. With an idempotency key, a second call returns the task
 * the first one created (`created: false`), even when both race.
 */
export async function createTask(
  tx: Queryable,
  t: NewTask,
  now: Date,
): Promise<{ task: TaskRow; created: boolean }> {
  const { rows } = await tx.query<TaskRow>(
    `INSERT INTO tasks (owner_id, environment_id, idempotency_key, request_hash, command, env, timeout_seconds,
       launch_source, secret_names, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $9, $10, $8, $8)
     ON CONFLICT (owner_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
     RETURNING ${TASK_COLUMNS}`,
    [
      t.ownerId,
      t.environmentId ?? null,
      t.idempotencyKey ?? null,
      t.requestHash ?? null,
      t.command,
      JSON.stringify(t.env ?? {}),
      t.timeoutSeconds,
      now,
      t.launchSource ?? 'api',
      t.secretNames ?? null,
    ],
  );
  const task = rows[0];
  if (!task) {
    const existing = await tx.query<TaskRow>(
      `SELECT ${TASK_COLUMNS} FROM tasks WHERE owner_id = $1 AND idempotency_key = $2`,
      [t.ownerId, t.idempotencyKey],
    );
    return { task: existing.rows[0]!, created: false };
  }
  await tx.query(
    `INSERT INTO task_events (task_id, from_state, to_state, reason, at) VALUES ($1, NULL, 'queued', 'created', $2)`,
    [task.id, now],
  );
  await tx.query(`SELECT pg_notify($1, $2)`, [
    LIVE_CHANNEL,
    JSON.stringify({ kind: 'task', id: task.id, owner: task.owner_id, state: 'queued' }),
  ]);
  await appendControlMessage(
    tx,
    task.id,
    'start',
    { command: t.command, ...(t.tty ? { tty: true } : {}) },
    { deliver: false },
  );
  await enqueueJob(tx, JobCatalog, 'task.run', { taskId: task.id });
  return { task, created: true };
}

export async function getTask(db: Queryable, id: string): Promise<TaskRow | undefined> {
  const { rows } = await db.query<TaskRow>(`SELECT ${TASK_COLUMNS} FROM tasks WHERE id = $1`, [id]);
  return rows[0];
}

export async function getTaskForUpdate(tx: Queryable, id: string): Promise<TaskRow | undefined> {
  const { rows } = await tx.query<TaskRow>(`SELECT ${TASK_COLUMNS} FROM tasks WHERE id = $1 FOR UPDATE`, [
    id,
  ]);
  return rows[0];
}

export async function getOwnedTask(db: Queryable, ownerId: string, id: string): Promise<TaskRow | undefined> {
  const { rows } = await db.query<TaskRow>(
    `SELECT ${TASK_COLUMNS} FROM tasks WHERE id = $1 AND owner_id = $2`,
    [id, ownerId],
  );
  return rows[0];
}

export async function listOwnedTasks(
  db: Queryable,
  ownerId: string,
  opts: { limit: number; after: { at: string; id: string } | null },
): Promise<TaskRow[]> {
  const { rows } = await db.query<TaskRow>(
    `SELECT ${TASK_COLUMNS} FROM tasks
     WHERE owner_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) > ($2::timestamptz, $3::uuid))
     ORDER BY created_at, id LIMIT $4`,
    [ownerId, opts.after?.at ?? null, opts.after?.id ?? null, opts.limit + 1],
  );
  return rows;
}

export interface TransitionArgs {
  to: TaskState;
  now: Date;
  reason?: string;
  workerId?: string | null;
  node?: string | null;
  exitCode?: number | null;
  error?: string | null;
  deadlineAt?: Date | null;
}

/**
 * Moves a task to `to` if the state machine allows it from the state it is in, and records the
 * event, in one statement. Returns the updated row, or undefined when the task is not in a
 * state that may move there (someone else moved it first: the caller re-reads and decides).
 */
export async function transitionTask(
  tx: Queryable,
  id: string,
  a: TransitionArgs,
): Promise<TaskRow | undefined> {
  const from = (Object.keys(TRANSITIONS) as TaskState[]).filter((s) => TRANSITIONS[s].includes(a.to));
  const terminal = isTerminal(a.to);
  const { rows } = await tx.query<TaskRow & { prev_state: TaskState }>(
    `WITH prev AS (SELECT id, state FROM tasks WHERE id = $1 AND state = ANY($3::text[]) FOR UPDATE),
     moved AS (
       UPDATE tasks t SET
         state = $2::text,
         updated_at = $4::timestamptz,
         worker_id = coalesce($6, t.worker_id),
         node = coalesce($7, t.node),
         exit_code = coalesce($8, t.exit_code),
         error = coalesce($9, t.error),
         deadline_at = coalesce($10, t.deadline_at),
         started_at = CASE WHEN $2::text = 'running' THEN $4 ELSE t.started_at END,
         finished_at = CASE WHEN $11::boolean THEN $4 ELSE t.finished_at END
       FROM prev WHERE t.id = prev.id
       RETURNING t.*, prev.state AS prev_state
     ), ev AS (
       INSERT INTO task_events (task_id, from_state, to_state, reason, worker_id, node, at)
       SELECT id, prev_state, state, $5, $6, coalesce($7, node), $4 FROM moved
     ), live AS (
       SELECT pg_notify('${LIVE_CHANNEL}', json_build_object('kind', 'task', 'id', id, 'owner', owner_id, 'state', state)::text) FROM moved
     )
     SELECT ${TASK_COLUMNS}, prev_state FROM moved, (SELECT count(*) FROM live) AS notified`,
    [
      id,
      a.to,
      from,
      a.now,
      a.reason ?? null,
      a.workerId ?? null,
      a.node ?? null,
      a.exitCode ?? null,
      a.error ?? null,
      a.deadlineAt ?? null,
      terminal,
    ],
  );
  return rows[0];
}

export async function listTaskEvents(db: Queryable, taskId: string): Promise<TaskEventRow[]> {
  const { rows } = await db.query<TaskEventRow>(
    `SELECT id, task_id, from_state, to_state, reason, worker_id, node, at FROM task_events WHERE task_id = $1 ORDER BY id`,
    [taskId],
  );
  return rows;
}

/**
 * Writes a control message with the task's next sequence number in the caller's transaction
 * (the one that caused it), and, unless told otherwise, the job that delivers it. The task row
 * is the sequence counter, so concurrent writers serialise on it and never share a number.
 */
export async function appendControlMessage(
  tx: Queryable,
  taskId: string,
  kind: ControlMessageKind,
  body: Record<string, unknown> = {},
  opts: { deliver?: boolean } = {},
): Promise<number> {
  const { rows } = await tx.query<{ seq: number }>(
    `WITH next AS (UPDATE tasks SET last_message_seq = last_message_seq + 1 WHERE id = $1 RETURNING last_message_seq AS seq)
     INSERT INTO task_messages (task_id, seq, kind, body) SELECT $1, seq, $2, $3 FROM next RETURNING seq`,
    [taskId, kind, JSON.stringify(body)],
  );
  const seq = rows[0]?.seq;
  if (seq === undefined) throw new Error(`task ${taskId} not found`);
  // One waiting delivery per task covers every message written before it is claimed.
  if (opts.deliver !== false)
    await enqueueJob(tx, JobCatalog, 'task.deliver', { taskId }, { dedupeKey: `task.deliver:${taskId}` });
  return seq;
}

export async function unackedMessages(
  db: Queryable,
  taskId: string,
  limit = 1000,
): Promise<TaskMessageRow[]> {
  const { rows } = await db.query<TaskMessageRow>(
    `SELECT task_id, seq, kind, body, created_at, acked_at FROM task_messages WHERE task_id = $1 AND acked_at IS NULL ORDER BY seq LIMIT $2`,
    [taskId, limit],
  );
  return rows;
}

export async function listMessages(db: Queryable, taskId: string): Promise<TaskMessageRow[]> {
  const { rows } = await db.query<TaskMessageRow>(
    `SELECT task_id, seq, kind, body, created_at, acked_at FROM task_messages WHERE task_id = $1 ORDER BY seq`,
    [taskId],
  );
  return rows;
}

/** Records the receiver's acknowledgement: every message up to `seq` arrived and was applied. */
export async function ackMessages(tx: Queryable, taskId: string, seq: number, now: Date): Promise<void> {
  await tx.query(
    `UPDATE task_messages SET acked_at = $3 WHERE task_id = $1 AND seq <= $2 AND acked_at IS NULL`,
    [taskId, seq, now],
  );
  await tx.query(`UPDATE tasks SET acked_message_seq = greatest(acked_message_seq, $2) WHERE id = $1`, [
    taskId,
    seq,
  ]);
}

export async function markCancelRequested(tx: Queryable, taskId: string, now: Date): Promise<void> {
  await tx.query(
    `UPDATE tasks SET cancel_requested_at = coalesce(cancel_requested_at, $2), updated_at = $2 WHERE id = $1`,
    [taskId, now],
  );
}

export class LogOffsetConflictError extends Error {
  constructor(
    readonly taskId: string,
    readonly expected: number,
  ) {
    super(`task ${taskId}: output at offset ${expected} was already stored by another writer`);
  }
}

/**
 * Stores one chunk of output at `offset`, which must be exactly where the stored log ends. A
 * writer that lost its job to another (and would write the same bytes again) gets
 * LogOffsetConflictError instead of a duplicate.
 */
export async function appendLogChunk(
  tx: Queryable,
  taskId: string,
  offset: number,
  data: Buffer,
): Promise<number> {
  if (data.length === 0) return offset;
  const { rowCount } = await tx.query(
    `UPDATE tasks SET log_bytes = log_bytes + $3 WHERE id = $1 AND log_bytes = $2`,
    [taskId, offset, data.length],
  );
  if (!rowCount) throw new LogOffsetConflictError(taskId, offset);
  await tx.query(`INSERT INTO task_log_chunks (task_id, start_offset, data) VALUES ($1, $2, $3)`, [
    taskId,
    offset,
    data,
  ]);
  return offset + data.length;
}

export interface LogSlice {
  /** Where `data` starts: the offset asked for, or the end of the log if it was past it. */
  offset: number;
  data: Buffer;
  nextOffset: number;
  /** Bytes stored so far. */
  totalBytes: number;
}

/** Output from any byte offset, up to about `maxBytes`; pass nextOffset back to continue. */
export async function readLog(
  db: Queryable,
  taskId: string,
  offset: number,
  maxBytes = 1 << 20,
): Promise<LogSlice> {
  const { rows } = await db.query<{ start_offset: string; data: Buffer; total: string }>(
    `SELECT c.start_offset, c.data, t.log_bytes AS total
     FROM tasks t LEFT JOIN LATERAL (
       SELECT start_offset, data FROM task_log_chunks
       WHERE task_id = t.id AND start_offset + length(data) > $2
       ORDER BY start_offset
       LIMIT 64
     ) c ON true
     WHERE t.id = $1`,
    [taskId, offset],
  );
  const total = Number(rows[0]?.total ?? 0);
  const parts: Buffer[] = [];
  let at = Math.min(offset, total);
  const start = at;
  for (const r of rows) {
    if (r.start_offset === null || !r.data) continue;
    const s = Number(r.start_offset);
    if (s > at) break; // a gap cannot happen (offsets are fenced); stop rather than skip bytes
    const piece = r.data.subarray(at - s);
    const room = maxBytes - (at - start);
    if (room <= 0) break;
    parts.push(piece.subarray(0, room));
    at += Math.min(piece.length, room);
  }
  return { offset: start, data: Buffer.concat(parts), nextOffset: at, totalBytes: total };
}
