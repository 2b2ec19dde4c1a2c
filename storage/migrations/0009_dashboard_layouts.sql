-- The table of the feature-actor tutorial's worked example, `dashboard.save_layout`
-- (docs/feature-actors.md, features/dashboard.cpp): one dashboard layout per user. A feature's
-- own table follows the same rules as ours: tenant_id, forced row-level security.

CREATE TABLE dashboard_layouts (
  tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  user_id    uuid NOT NULL,
  layout     jsonb NOT NULL,
  version    integer NOT NULL DEFAULT 1,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, user_id)
);
ALTER TABLE dashboard_layouts ENABLE ROW LEVEL SECURITY;
ALTER TABLE dashboard_layouts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dashboard_layouts USING (tenant_id = troupe_current_tenant())
  WITH CHECK (tenant_id = troupe_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON dashboard_layouts TO troupe_app;
