-- Audit log: who did what, when, from where. One row per mutating API call (failed ones
-- included, result = HTTP status) and per terminal attach. Never request bodies or secrets.
-- user_id is SET NULL on user deletion so the trail outlives the account; actor_email keeps
-- who it was. token_id has no FK: revoked or cascaded tokens must not take rows with them.
CREATE TABLE audit_log (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at timestamptz NOT NULL DEFAULT now(),
  user_id uuid REFERENCES users (id) ON DELETE SET NULL,
  actor_email text,
  token_id uuid,
  ip text,
  action text NOT NULL,
  route text,
  target_type text,
  target_id text,
  result integer NOT NULL,
  request_id text,
  details jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (octet_length(details::text) <= 4096)
);
CREATE INDEX audit_log_page ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_user ON audit_log (user_id, at DESC, id DESC);
CREATE INDEX audit_log_action ON audit_log (action, at DESC, id DESC);
CREATE INDEX audit_log_target ON audit_log (target_id, at DESC, id DESC);
