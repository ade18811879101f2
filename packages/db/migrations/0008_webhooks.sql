-- Webhooks per user: what happened to their tasks and environments, POSTed to their URL.
--
-- No signing secret is stored: each webhook's secret is derived from the installation's
-- webhook key and (id, secret_version), so a copy of this database cannot forge deliveries.

CREATE TABLE webhooks (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  url text NOT NULL,
  events text[] NOT NULL CHECK (cardinality(events) > 0),
  -- `task.failure_streak` fires when this many tasks with the same command fail in a row.
  failure_streak integer NOT NULL DEFAULT 3 CHECK (failure_streak BETWEEN 2 AND 100),
  description text,
  secret_version integer NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_owner ON webhooks (owner_id, created_at, id);

-- The delivery log the user sees: one row per event per webhook, updated at each attempt.
CREATE TABLE webhook_deliveries (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  webhook_id uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
  event text NOT NULL,
  payload jsonb NOT NULL,
  state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'succeeded', 'failed')),
  attempts integer NOT NULL DEFAULT 0,
  response_status integer,
  last_error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  delivered_at timestamptz
);
CREATE INDEX webhook_deliveries_page ON webhook_deliveries (webhook_id, created_at DESC, id DESC);

-- Queues one delivery per subscribed webhook of `owner`, with the job that sends it, in the
-- transaction of the change itself: no code path can forget it, and a rolled-back change
-- sends nothing. The job's payload matches WebhookJobCatalog.
CREATE FUNCTION berth_webhook_emit(owner uuid, ev text, data jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  d record;
BEGIN
  FOR d IN
    INSERT INTO webhook_deliveries (webhook_id, event, payload)
      SELECT w.id, ev, jsonb_build_object('event', ev, 'occurredAt', now(), 'data', data)
      FROM webhooks w WHERE w.owner_id = owner AND ev = ANY (w.events)
      RETURNING id
  LOOP
    INSERT INTO jobs (kind, payload, max_attempts)
      VALUES ('webhook.deliver', jsonb_build_object('deliveryId', d.id), 8);
  END LOOP;
END;
$$;

CREATE FUNCTION berth_webhook_task() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  data jsonb;
  streak integer := 0;
  t record;
  w record;
BEGIN
  IF NEW.state NOT IN ('succeeded', 'failed', 'canceled', 'timed_out')
     OR OLD.state IN ('succeeded', 'failed', 'canceled', 'timed_out') THEN
    RETURN NULL;
  END IF;
  -- Cheap exit for the common case: this user has no webhooks.
  IF NOT EXISTS (SELECT 1 FROM webhooks WHERE owner_id = NEW.owner_id) THEN
    RETURN NULL;
  END IF;
  data := jsonb_build_object('task', jsonb_build_object(
    'id', NEW.id, 'state', NEW.state, 'command', to_jsonb(NEW.command), 'exitCode', NEW.exit_code,
    'error', NEW.error, 'environmentId', NEW.environment_id, 'createdAt', NEW.created_at,
    'startedAt', NEW.started_at, 'finishedAt', NEW.finished_at));
  PERFORM berth_webhook_emit(NEW.owner_id, 'task.finished', data);
  IF NEW.state IN ('failed', 'timed_out') THEN
    PERFORM berth_webhook_emit(NEW.owner_id, 'task.' || NEW.state, data);
    -- How many of this user's latest runs of the same command failed in a row, this one included.
    FOR t IN
      SELECT state FROM tasks
      WHERE owner_id = NEW.owner_id AND command = NEW.command AND finished_at IS NOT NULL
      ORDER BY finished_at DESC, id DESC LIMIT 101
    LOOP
      EXIT WHEN t.state NOT IN ('failed', 'timed_out');
      streak := streak + 1;
    END LOOP;
    -- Exactly at the threshold, so a long streak is one alert rather than one per failure.
    FOR w IN
      SELECT id FROM webhooks
      WHERE owner_id = NEW.owner_id AND 'task.failure_streak' = ANY (events) AND failure_streak = streak
    LOOP
      WITH d AS (
        INSERT INTO webhook_deliveries (webhook_id, event, payload)
          VALUES (w.id, 'task.failure_streak', jsonb_build_object('event', 'task.failure_streak',
            'occurredAt', now(), 'data', data || jsonb_build_object('failuresInARow', streak)))
          RETURNING id)
      INSERT INTO jobs (kind, payload, max_attempts)
        SELECT 'webhook.deliver', jsonb_build_object('deliveryId', d.id), 8 FROM d;
    END LOOP;
  END IF;
  RETURN NULL;
END;
$$;

CREATE TRIGGER tasks_webhooks AFTER UPDATE OF state ON tasks
  FOR EACH ROW EXECUTE FUNCTION berth_webhook_task();

CREATE FUNCTION berth_webhook_environment() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.state <> 'stopped' OR OLD.state = 'stopped' THEN
    RETURN NULL;
  END IF;
  PERFORM berth_webhook_emit(NEW.owner_id, 'environment.stopped', jsonb_build_object('environment',
    jsonb_build_object('id', NEW.id, 'name', NEW.name, 'provider', NEW.provider, 'state', NEW.state,
                       'reason', NEW.state_reason)));
  RETURN NULL;
END;
$$;

CREATE TRIGGER environments_webhooks AFTER UPDATE OF state ON environments
  FOR EACH ROW EXECUTE FUNCTION berth_webhook_environment();
