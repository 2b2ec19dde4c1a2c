-- Monthly request counts per tenant (API.md "Rate limits and quotas", docs/rate-limits.md
-- "Quotas"): the tenant actor adds its counts in batches, at most one second apart.

CREATE TABLE usage_counters (
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  period    text NOT NULL CHECK (period ~ '^[0-9]{4}-[0-9]{2}$'),
  requests  bigint NOT NULL DEFAULT 0 CHECK (requests >= 0),
  PRIMARY KEY (tenant_id, period)
);

ALTER TABLE usage_counters ENABLE ROW LEVEL SECURITY;
ALTER TABLE usage_counters FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON usage_counters
  USING (tenant_id = troupe_current_tenant())
  WITH CHECK (tenant_id = troupe_current_tenant());

GRANT SELECT, INSERT, UPDATE ON usage_counters TO troupe_app;
