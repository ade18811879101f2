-- Per-user quotas set by an admin (NULL: the installation's default from the config), and the
-- intervals during which each environment held resources, for environment-hours per day.

CREATE TABLE user_quotas (
  user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  max_environments integer CHECK (max_environments >= 0),
  max_tasks integer CHECK (max_tasks >= 0),
  max_cpus numeric CHECK (max_cpus > 0),
  max_memory_mb integer CHECK (max_memory_mb > 0),
  env_hours_per_day numeric CHECK (env_hours_per_day >= 0),
  updated_at timestamptz NOT NULL DEFAULT now(),
  updated_by uuid REFERENCES users (id) ON DELETE SET NULL
);

CREATE TABLE environment_usage (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  environment_id uuid NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
  owner_id uuid NOT NULL,
  started_at timestamptz NOT NULL,
  ended_at timestamptz
);
CREATE INDEX environment_usage_owner ON environment_usage (owner_id, started_at);
CREATE UNIQUE INDEX environment_usage_open ON environment_usage (environment_id) WHERE ended_at IS NULL;

-- An interval opens when an environment starts holding resources (provisioning, ready,
-- starting, stopping) and closes when it lets them go. A trigger, so every path that moves an
-- environment (API, lifecycle jobs, reaper, a task's cleanup) is counted, in its transaction.
CREATE FUNCTION berth_environment_usage() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  held text[] := ARRAY['provisioning', 'ready', 'starting', 'stopping'];
  was_held boolean := TG_OP = 'UPDATE' AND OLD.state = ANY (held);
  now_held boolean := NEW.state = ANY (held);
BEGIN
  IF now_held AND NOT was_held THEN
    INSERT INTO environment_usage (environment_id, owner_id, started_at)
      VALUES (NEW.id, NEW.owner_id, now())
      ON CONFLICT (environment_id) WHERE ended_at IS NULL DO NOTHING;
  ELSIF was_held AND NOT now_held THEN
    UPDATE environment_usage SET ended_at = now() WHERE environment_id = NEW.id AND ended_at IS NULL;
  END IF;
  RETURN NULL;
END;
$$;

CREATE TRIGGER environments_usage AFTER INSERT OR UPDATE OF state ON environments
  FOR EACH ROW EXECUTE FUNCTION berth_environment_usage();
