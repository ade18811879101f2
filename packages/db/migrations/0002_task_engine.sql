-- Transactional task engine: the jobs outbox, tasks, their control messages, events and output.

-- The outbox. A row is written in the same transaction as the state change that needs it; the
-- table is the truth, NOTIFY only a nudge. Finished jobs are deleted (in the transaction that
-- applies their effects); dead ones stay with their last error.
CREATE TABLE jobs (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind text NOT NULL,
  payload jsonb NOT NULL DEFAULT '{}',
  state text NOT NULL DEFAULT 'ready' CHECK (state IN ('ready', 'running', 'dead')),
  priority smallint NOT NULL DEFAULT 0,
  run_at timestamptz NOT NULL DEFAULT now(),
  -- Incremented at each claim; with locked_by it fences a worker whose lease was taken away.
  attempts integer NOT NULL DEFAULT 0,
  max_attempts integer NOT NULL DEFAULT 10 CHECK (max_attempts > 0),
  locked_by text,
  locked_until timestamptz,
  last_error text,
  -- Enqueueing the same key twice while the first is pending yields one job.
  dedupe_key text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
-- Claim order: the planner walks this partial index and stops after n rows.
CREATE INDEX jobs_ready ON jobs (priority, run_at, id) WHERE state = 'ready';
CREATE INDEX jobs_leases ON jobs (locked_until) WHERE state = 'running';
CREATE UNIQUE INDEX jobs_dedupe ON jobs (dedupe_key) WHERE dedupe_key IS NOT NULL AND state <> 'dead';

-- One nudge per inserting statement (not per row), with no data: workers re-read the table.
CREATE FUNCTION berth_jobs_nudge() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('berth_jobs', '');
  RETURN NULL;
END;
$$;
CREATE TRIGGER jobs_nudge AFTER INSERT ON jobs FOR EACH STATEMENT EXECUTE FUNCTION berth_jobs_nudge();

-- Why a lease was taken back: the worker that held it stopped heartbeating (crash, freeze,
-- partition). Kept for the timeline of incidents; small, since it only grows on failures.
CREATE TABLE job_lease_expirations (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job_id bigint NOT NULL,
  kind text NOT NULL,
  worker_id text,
  locked_until timestamptz,
  attempts integer NOT NULL,
  outcome text NOT NULL CHECK (outcome IN ('requeued', 'dead')),
  reaped_by text NOT NULL,
  reaped_at timestamptz NOT NULL
);
CREATE INDEX job_lease_expirations_job ON job_lease_expirations (job_id);

CREATE TABLE tasks (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- No FK yet: the environments table arrives in a later migration.
  environment_id uuid,
  idempotency_key text,
  -- Fingerprint of the request that used the key: the same key with another body is a conflict.
  request_hash text,
  command text[] NOT NULL,
  env jsonb NOT NULL DEFAULT '{}',
  state text NOT NULL DEFAULT 'queued'
    CHECK (state IN ('queued', 'provisioning', 'running', 'succeeded', 'failed', 'canceled', 'timed_out')),
  timeout_seconds integer NOT NULL CHECK (timeout_seconds > 0),
  -- Set when the task starts provisioning; the worker enforces it, the reaper of jobs does not.
  deadline_at timestamptz,
  exit_code integer,
  error text,
  cancel_requested_at timestamptz,
  -- Highest control-message sequence written, and acknowledged by the receiver.
  last_message_seq integer NOT NULL DEFAULT 0,
  acked_message_seq integer NOT NULL DEFAULT 0,
  -- Bytes of output stored so far: the next chunk starts here.
  log_bytes bigint NOT NULL DEFAULT 0,
  worker_id text,
  node text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  finished_at timestamptz
);
CREATE UNIQUE INDEX tasks_idempotency ON tasks (owner_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX tasks_owner_page ON tasks (owner_id, created_at, id);

-- Control messages (start, stop, signal, stdin close), per-task sequence, acknowledged by seq.
CREATE TABLE task_messages (
  task_id uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  seq integer NOT NULL CHECK (seq > 0),
  kind text NOT NULL CHECK (kind IN ('start', 'stop', 'signal', 'stdin_close')),
  body jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  acked_at timestamptz,
  PRIMARY KEY (task_id, seq)
);

-- The timeline: every transition, when, by which worker, on which node.
CREATE TABLE task_events (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  task_id uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  from_state text,
  to_state text NOT NULL,
  reason text,
  worker_id text,
  node text,
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX task_events_task ON task_events (task_id, id);

-- Output in batched chunks addressed by byte offset; (task_id, start_offset) makes a re-written
-- chunk after a crash a conflict rather than a duplicate.
CREATE TABLE task_log_chunks (
  task_id uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  start_offset bigint NOT NULL CHECK (start_offset >= 0),
  data bytea NOT NULL CHECK (length(data) > 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (task_id, start_offset)
);
