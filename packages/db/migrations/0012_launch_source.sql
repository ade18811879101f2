-- Where a launch came from (the client's X-Berth-Client header), carried into the workload
-- identity JWT's `launch_source` claim so a user's Vault policy can tell a phone from the CLI.
-- It is what the client says, not proof: the token that made the request is the proof of who.
ALTER TABLE tasks ADD COLUMN launch_source text NOT NULL DEFAULT 'api'
  CHECK (launch_source IN ('web', 'mobile', 'cli', 'api'));
ALTER TABLE environments ADD COLUMN launch_source text NOT NULL DEFAULT 'api'
  CHECK (launch_source IN ('web', 'mobile', 'cli', 'api'));

-- The env names of the owner's secret references this task asked for. NULL: all of them (the
-- behaviour before tasks could choose). Names only; values are read from the user's Vault at start.
ALTER TABLE tasks ADD COLUMN secret_names text[];
