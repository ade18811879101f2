-- Live status for clients (socket.io /events), fanned out through Postgres so a client on any
-- control plane sees changes made through any other. The payload is a tiny pointer (kind, id,
-- owner, state); clients re-read the row through the API, which checks access again.

CREATE FUNCTION berth_live_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('berth_live', json_build_object(
    'kind', TG_ARGV[0], 'id', NEW.id, 'owner', NEW.owner_id, 'state', NEW.state)::text);
  RETURN NULL;
END;
$$;

CREATE TRIGGER environments_live AFTER INSERT OR UPDATE OF state ON environments
  FOR EACH ROW EXECUTE FUNCTION berth_live_notify('environment');
CREATE TRIGGER tasks_live AFTER INSERT OR UPDATE OF state ON tasks
  FOR EACH ROW EXECUTE FUNCTION berth_live_notify('task');
