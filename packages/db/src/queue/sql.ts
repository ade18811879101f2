/**
 * The queue's SQL, in one place so it reads in review. Times come in as parameters ($now) from an
 * injected clock, so tests can move time and every control plane agrees on one rule.
 */

export const NOTIFY_CHANNEL = 'berth_jobs';

export const JOB_COLUMNS = `id, kind, payload, state, priority, run_at, attempts, max_attempts, locked_by, locked_until, last_error, created_at, trace_parent`;

/** $1 kinds[], $2 payloads jsonb[], $3 run_at[], $4 priority[], $5 max_attempts[], $6 dedupe_key[], $7 traceparent */
export const ENQUEUE = `
  INSERT INTO jobs (kind, payload, run_at, priority, max_attempts, dedupe_key, trace_parent)
  SELECT k, p, coalesce(r, now()), pr, ma, dk, $7::text
  FROM unnest($1::text[], $2::jsonb[], $3::timestamptz[], $4::smallint[], $5::integer[], $6::text[])
    AS t(k, p, r, pr, ma, dk)
  ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND state <> 'dead' DO NOTHING
  RETURNING id`;

/**
 * Claims up to $4 ready jobs of the given kinds. SKIP LOCKED lets concurrent workers take
 * disjoint rows without waiting on each other; each claim counts as an attempt.
 * $1 worker id, $2 now, $3 lease ms, $4 limit, $5 kinds[]
 */
export const CLAIM = `
  UPDATE jobs SET
    state = 'running',
    attempts = attempts + 1,
    -- A dedupe key guards only waiting jobs: once one is claimed, the next enqueue of the key
    -- makes a new job, so a change committed while this one runs is never dropped.
    dedupe_key = NULL,
    locked_by = $1,
    locked_until = $2::timestamptz + $3 * interval '1 millisecond',
    updated_at = $2
  WHERE id IN (
    SELECT id FROM jobs
    WHERE state = 'ready' AND run_at <= $2 AND kind = ANY($5::text[])
    ORDER BY priority, run_at, id
    LIMIT $4
    FOR UPDATE SKIP LOCKED
  )
  RETURNING ${JOB_COLUMNS}`;

/**
 * Completion is fenced: the row must still be ours (same worker, same attempt). If the lease
 * was reaped and the job claimed again, nothing is deleted and the caller's transaction aborts,
 * so its effects are never applied twice. $1 id, $2 worker id, $3 attempt
 */
export const COMPLETE_ONE = `
  DELETE FROM jobs WHERE id = $1 AND locked_by = $2 AND attempts = $3 AND state = 'running' RETURNING id`;

/** Batched completion of jobs with no transactional effects. $1 ids[], $2 attempts[], $3 worker id */
export const COMPLETE_MANY = `
  DELETE FROM jobs j USING unnest($1::bigint[], $2::integer[]) AS d(id, attempts)
  WHERE j.id = d.id AND j.attempts = d.attempts AND j.locked_by = $3 AND j.state = 'running'
  RETURNING j.id`;

/**
 * A failed attempt: back to ready after the backoff, or dead when attempts are used up (or the
 * failure is permanent). $1 id, $2 worker id, $3 attempt, $4 now, $5 delay ms, $6 error, $7 permanent
 */
export const FAIL = `
  UPDATE jobs SET
    state = CASE WHEN $7::boolean OR attempts >= max_attempts THEN 'dead' ELSE 'ready' END,
    run_at = $4::timestamptz + $5 * interval '1 millisecond',
    locked_by = NULL,
    locked_until = NULL,
    last_error = $6,
    updated_at = $4
  WHERE id = $1 AND locked_by = $2 AND attempts = $3 AND state = 'running'
  RETURNING state`;

/** Hands a job back untouched (graceful shutdown): the attempt it used is given back. $1 ids[], $2 worker id, $3 now */
export const RELEASE = `
  UPDATE jobs SET state = 'ready', attempts = greatest(attempts - 1, 0), locked_by = NULL, locked_until = NULL, updated_at = $3
  WHERE id = ANY($1::bigint[]) AND locked_by = $2 AND state = 'running'
  RETURNING id`;

/** One statement extends every lease this worker holds. $1 ids[], $2 worker id, $3 now, $4 lease ms */
export const HEARTBEAT = `
  UPDATE jobs SET locked_until = $3::timestamptz + $4 * interval '1 millisecond'
  WHERE id = ANY($1::bigint[]) AND locked_by = $2 AND state = 'running'
  RETURNING id`;

/**
 * Frees leases that expired, and records each with the worker that held it. A job whose
 * attempts are used up dies here (a job that kills its worker every time must not loop forever).
 * $1 now, $2 reaper id, $3 limit
 */
export const REAP = `
  WITH expired AS (
    SELECT id, locked_by, locked_until FROM jobs
    WHERE state = 'running' AND locked_until < $1
    ORDER BY locked_until
    LIMIT $3
    FOR UPDATE SKIP LOCKED
  ), freed AS (
    UPDATE jobs j SET
      state = CASE WHEN j.attempts >= j.max_attempts THEN 'dead' ELSE 'ready' END,
      locked_by = NULL,
      locked_until = NULL,
      -- run_at untouched: the job goes back to its place in line, ahead of newer work.
      last_error = format('lease expired: worker %s held it until %s and stopped heartbeating', e.locked_by, e.locked_until),
      updated_at = $1
    FROM expired e
    WHERE j.id = e.id
    RETURNING j.id, j.kind, j.attempts, j.state, e.locked_by, e.locked_until
  )
  INSERT INTO job_lease_expirations (job_id, kind, worker_id, locked_until, attempts, outcome, reaped_by, reaped_at)
  SELECT id, kind, locked_by, locked_until, attempts, CASE WHEN state = 'dead' THEN 'dead' ELSE 'requeued' END, $2, $1
  FROM freed
  RETURNING job_id, outcome`;

/** When the next delayed job becomes ready, so an idle worker can sleep exactly that long. $1 kinds[] */
export const NEXT_RUN_AT = `
  SELECT min(run_at) AS run_at FROM jobs WHERE state = 'ready' AND kind = ANY($1::text[])`;

export const QUEUE_DEPTH = `
  SELECT state, count(*)::int AS n FROM jobs GROUP BY state`;
