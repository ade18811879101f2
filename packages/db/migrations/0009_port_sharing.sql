-- Who may open a port of an environment through its preview URL. No row means the default,
-- owner only. Tickets and cookies are never stored: the control plane mints tickets on demand
-- and the gateway keeps its cookie key in memory.
CREATE TABLE environment_ports (
  environment_id uuid NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
  port integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
  sharing text NOT NULL DEFAULT 'owner' CHECK (sharing IN ('owner', 'authenticated', 'public')),
  updated_at timestamptz NOT NULL DEFAULT now(),
  updated_by uuid REFERENCES users (id) ON DELETE SET NULL,
  PRIMARY KEY (environment_id, port)
);
