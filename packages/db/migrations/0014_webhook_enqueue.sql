-- One place that queues a webhook delivery: the delivery row the user sees and the job that sends
-- it, with the number of attempts. Used by the triggers below and by the API's ping.
CREATE FUNCTION berth_webhook_enqueue(webhook uuid, ev text, payload jsonb) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
  delivery uuid;
BEGIN
  INSERT INTO webhook_deliveries (webhook_id, event, payload) VALUES (webhook, ev, payload)
    RETURNING id INTO delivery;
  INSERT INTO jobs (kind, payload, max_attempts)
    VALUES ('webhook.deliver', jsonb_build_object('deliveryId', delivery), 8);
  RETURN delivery;
END;
$$;

CREATE OR REPLACE FUNCTION berth_webhook_emit(owner uuid, ev text, data jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM berth_webhook_enqueue(w.id, ev, jsonb_build_object('event', ev, 'occurredAt', now(), 'data', data))
  FROM webhooks w WHERE w.owner_id = owner AND ev = ANY (w.events);
END;
$$;

-- As in 0008, with the failure-streak delivery queued through berth_webhook_enqueue.
CREATE OR REPLACE FUNCTION berth_webhook_task() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  data jsonb;
  streak integer := 0;
  t record;
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
    PERFORM berth_webhook_enqueue(w.id, 'task.failure_streak', jsonb_build_object(
      'event', 'task.failure_streak', 'occurredAt', now(),
      'data', data || jsonb_build_object('failuresInARow', streak)))
    FROM webhooks w
    WHERE w.owner_id = NEW.owner_id AND 'task.failure_streak' = ANY (w.events) AND w.failure_streak = streak;
  END IF;
  RETURN NULL;
END;
$$;
