-- Tasks that bring their own environment, and output notices for followers.

-- True when the task created its environment and nobody asked to keep it: the environment is
-- destroyed when the task ends.
ALTER TABLE tasks ADD COLUMN destroy_environment boolean NOT NULL DEFAULT false;

-- In the very transaction that makes such a task terminal, whichever path does it (a worker
-- recording the exit, a cancel of a queued task, a future reaper), its environment moves to
-- `destroying` and the destroy job is enqueued, exactly as `DELETE /environments/:id` does.
-- A trigger rather than code in each path: no path can forget it, and it commits or rolls back
-- with the transition.
CREATE FUNCTION berth_task_environment_cleanup() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.state NOT IN ('succeeded', 'failed', 'canceled', 'timed_out')
     OR OLD.state IN ('succeeded', 'failed', 'canceled', 'timed_out')
     OR NEW.environment_id IS NULL THEN
    RETURN NULL;
  END IF;
  UPDATE environments SET state = 'destroying', state_reason = 'task ' || NEW.id || ' ended', updated_at = now()
    WHERE id = NEW.environment_id
      AND state IN ('pending', 'provisioning', 'ready', 'stopping', 'stopped', 'starting', 'failed');
  IF FOUND THEN
    INSERT INTO environment_events (environment_id, kind, message, data)
      VALUES (NEW.environment_id, 'destroy', 'destroy requested: its task ended (' || NEW.state || ')',
              json_build_object('taskId', NEW.id));
    -- Same shape as the control plane's enqueue (EnvironmentJobCatalog, one pending job per env).
    INSERT INTO jobs (kind, payload, max_attempts, dedupe_key)
      VALUES ('environment.destroy', json_build_object('environmentId', NEW.environment_id), 5,
              'environment.destroy:' || NEW.environment_id)
      ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND state <> 'dead' DO NOTHING;
  END IF;
  RETURN NULL;
END;
$$;

CREATE TRIGGER tasks_environment_cleanup AFTER UPDATE OF state ON tasks
  FOR EACH ROW WHEN (NEW.destroy_environment) EXECUTE FUNCTION berth_task_environment_cleanup();

-- A nudge per stored output chunk, so followers (SSE, socket.io) read new output at once
-- instead of polling. Like the other live notices it carries no data: followers re-read.
CREATE FUNCTION berth_task_output_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('berth_live', json_build_object(
    'kind', 'task_output', 'id', NEW.task_id, 'end', NEW.start_offset + length(NEW.data))::text);
  RETURN NULL;
END;
$$;

CREATE TRIGGER task_log_chunks_live AFTER INSERT ON task_log_chunks
  FOR EACH ROW EXECUTE FUNCTION berth_task_output_notify();
