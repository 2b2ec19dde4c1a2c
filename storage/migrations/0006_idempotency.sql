-- Idempotency keys (API.md "Idempotency", docs/idempotency.md): one row per tenant,
-- principal and key; in flight under a lease, then the kept response until it expires.

CREATE TABLE idempotency_keys (
  tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  principal   text NOT NULL,
  key         text NOT NULL,
  fingerprint bytea NOT NULL,
  state       text NOT NULL CHECK (state IN ('in_flight', 'done')),
  lease_until timestamptz NOT NULL,
  status      integer,
  response    jsonb,
  expires_at  timestamptz NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, principal, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (tenant_id, expires_at);

ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON idempotency_keys
  USING (tenant_id = troupe_current_tenant())
  WITH CHECK (tenant_id = troupe_current_tenant());

GRANT SELECT, INSERT, UPDATE, DELETE ON idempotency_keys TO troupe_app;
