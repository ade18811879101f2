-- References to secrets in each user's own Vault. No secret value is ever stored: only where
-- the values live (address, auth mount, role, audience, KV paths) and which env var each feeds.

CREATE TABLE secret_settings (
  user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  vault_address text NOT NULL,
  auth_mount text NOT NULL DEFAULT 'jwt',
  role text NOT NULL,
  audience text NOT NULL,
  namespace text,
  -- A public CA certificate (PEM) for a Vault with a private CA; not a secret.
  ca_cert text,
  kv_mount text NOT NULL DEFAULT 'secret',
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE secret_refs (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  env_name text NOT NULL,
  path text NOT NULL,
  key text NOT NULL,
  mount text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX secret_refs_env ON secret_refs (user_id, env_name);
CREATE INDEX secret_refs_page ON secret_refs (user_id, created_at, id);
