-- Platform tables, the server's role, and row-level security for tenant-owned tables.
-- Runs as the migrating role, which owns every table. The server logs in as troupe_app:
-- not an owner, no BYPASSRLS, so forced row-level security applies to everything it reads.

-- Roles belong to the whole cluster: two databases migrating at once may both try to create
-- it, and the loser sees duplicate_object or a unique violation on pg_authid.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'troupe_app') THEN
    CREATE ROLE troupe_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
  END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
  NULL;
END
$$;

-- The tenant of the current transaction, set with set_config('troupe.tenant_id', id, true).
-- NULL when unset (or reset to ''), so a query that forgets its tenant matches nothing.
CREATE FUNCTION troupe_current_tenant() RETURNS uuid
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT nullif(current_setting('troupe.tenant_id', true), '')::uuid $$;

CREATE TABLE tenants (
  id         uuid PRIMARY KEY,
  slug       text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
  name       text NOT NULL,
  plan       text NOT NULL DEFAULT 'free',
  status     text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
  limits     jsonb NOT NULL DEFAULT '{}',
  settings   jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
  tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  id            uuid NOT NULL,
  email         text NOT NULL,
  password_hash text,
  display_name  text,
  roles         text[] NOT NULL DEFAULT '{}',
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, email)
);

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON users
  USING (tenant_id = troupe_current_tenant())
  WITH CHECK (tenant_id = troupe_current_tenant());

GRANT USAGE ON SCHEMA public TO troupe_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON tenants, users TO troupe_app;
GRANT EXECUTE ON FUNCTION troupe_current_tenant() TO troupe_app;
