-- Read-only links to a terminal session, for other people signed in to this Berth. The link's
-- token is shown once; only its SHA-256 is kept. A share ends at its expiry or when revoked.
CREATE TABLE terminal_shares (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  environment_id uuid NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
  session_id text NOT NULL,
  token_hash bytea NOT NULL UNIQUE,
  created_by uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz
);
CREATE INDEX terminal_shares_env ON terminal_shares (environment_id, created_at);
