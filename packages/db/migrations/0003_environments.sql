-- Environments and their timeline. The spec holds what was asked for (image, repo URL and
-- ref, setup, resources) and never a credential: git tokens and secrets are not stored.

CREATE TABLE environments (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name text NOT NULL,
  provider text NOT NULL,
  spec jsonb NOT NULL,
  spec_hash text NOT NULL,
  state text NOT NULL DEFAULT 'pending' CHECK (state IN
    ('pending', 'provisioning', 'ready', 'stopping', 'stopped', 'starting', 'destroying', 'destroyed', 'failed')),
  state_reason text,
  gateway_url text,
  node text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  ready_at timestamptz,
  last_activity_at timestamptz NOT NULL DEFAULT now(),
  destroyed_at timestamptz
);
CREATE UNIQUE INDEX environments_owner_name ON environments (owner_id, name) WHERE destroyed_at IS NULL;
CREATE INDEX environments_owner_page ON environments (owner_id, created_at, id);
CREATE INDEX environments_live ON environments (state) WHERE destroyed_at IS NULL;

CREATE TABLE environment_events (
  id bigserial PRIMARY KEY,
  environment_id uuid NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
  at timestamptz NOT NULL DEFAULT now(),
  kind text NOT NULL,
  message text NOT NULL,
  data jsonb
);
CREATE INDEX environment_events_env ON environment_events (environment_id, id);
