-- What a provider keeps per environment that the environment itself cannot hold (Modal: the
-- filesystem snapshot a stopped environment starts from, its resources and env), shared by every
-- control plane on this database, so any of them starts what another stopped. A table of its own
-- rather than a column on environments: warm-pool members are created before they have a row.
-- Small JSON written by the provider, never a credential (tokens and secrets are not in it).
CREATE TABLE provider_state (
  provider text NOT NULL,
  environment_id text NOT NULL,
  state jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (provider, environment_id)
);
