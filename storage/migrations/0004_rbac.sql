-- Custom roles (docs/rbac.md). Built-in roles (owner, admin, member, viewer) are code, not
-- rows; users.roles names built-in and custom roles alike.

CREATE TABLE roles (
  tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  name        text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_-]{0,62}$'),
  permissions text[] NOT NULL DEFAULT '{}',
  inherits    text[] NOT NULL DEFAULT '{}',
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, name)
);

ALTER TABLE roles ENABLE ROW LEVEL SECURITY;
ALTER TABLE roles FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON roles
  USING (tenant_id = troupe_current_tenant())
  WITH CHECK (tenant_id = troupe_current_tenant());

-- "Who has this role" (deletion checks, the last owner).
CREATE INDEX users_by_role ON users USING gin (roles);

GRANT SELECT, INSERT, UPDATE, DELETE ON roles TO troupe_app;
