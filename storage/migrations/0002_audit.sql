-- The audit log (API.md "Audit log", docs/audit.md): an append-only hash chain per tenant.
-- The server's role may INSERT and SELECT entries and nothing else: it can neither change nor
-- remove history. Retention pruning runs as the owner and leaves a signed checkpoint.

-- Entries. No foreign key to tenants: a deleted tenant's history (its tenant.deleted entry
-- included) outlives it; the tenant's data keys go with it, so its personal data is erased.
CREATE TABLE audit_log (
  tenant_id     uuid NOT NULL,
  seq           bigint NOT NULL CHECK (seq > 0),
  id            uuid NOT NULL,
  at            timestamptz NOT NULL,
  actor_type    text NOT NULL,
  actor_id      text,
  action        text NOT NULL,
  resource_type text,
  resource_id   text,
  outcome       text NOT NULL,
  request_id    text,
  entry         text NOT NULL,  -- the canonical entry: exactly the text the hash covers
  prev_hash     bytea NOT NULL,
  hash          bytea NOT NULL,
  PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX audit_log_actor ON audit_log (tenant_id, actor_id, seq);
CREATE INDEX audit_log_action ON audit_log (tenant_id, action, seq);
CREATE INDEX audit_log_resource ON audit_log (tenant_id, resource_type, resource_id, seq);
CREATE INDEX audit_log_at ON audit_log (tenant_id, at);

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_log
  USING (tenant_id = troupe_current_tenant())
  WITH CHECK (tenant_id = troupe_current_tenant());

-- Per-subject data keys (crypto-shredding). wrapped_key is AES-256-GCM under a key derived
-- from auth.key-encryption-key; NULL once destroyed (the subject was erased).
CREATE TABLE audit_data_keys (
  tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  id           uuid NOT NULL,
  subject      text NOT NULL,
  wrapped_key  bytea,
  created_at   timestamptz NOT NULL DEFAULT now(),
  destroyed_at timestamptz,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, subject)
);

ALTER TABLE audit_data_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_data_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_data_keys
  USING (tenant_id = troupe_current_tenant())
  WITH CHECK (tenant_id = troupe_current_tenant());

-- Retention checkpoints: the last pruned entry's seq and hash, signed (HMAC-SHA-256 under a
-- key derived from auth.key-encryption-key), so the kept chain still verifies.
CREATE TABLE audit_checkpoints (
  tenant_id  uuid NOT NULL,
  seq        bigint NOT NULL,
  hash       bytea NOT NULL,
  signature  bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, seq)
);

ALTER TABLE audit_checkpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_checkpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_checkpoints
  USING (tenant_id = troupe_current_tenant())
  WITH CHECK (tenant_id = troupe_current_tenant());

-- Every tenant that has a chain (platform-owned, like tenants): how retention finds them,
-- deleted tenants included.
CREATE TABLE audit_chains (
  id         uuid PRIMARY KEY,  -- the chain's tenant id (no tenant_id column: not RLS-scoped)
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Which key-encryption key this database was set up with: a value derived from the key (not
-- the key), checked at every start so that a wrong key stops the server instead of making the
-- audit log's personal data unreadable.
CREATE TABLE platform_keys (
  name        text PRIMARY KEY,
  check_value bytea NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);

REVOKE ALL ON audit_log, audit_checkpoints, audit_chains, audit_data_keys FROM troupe_app;
GRANT SELECT, INSERT ON audit_log TO troupe_app;
GRANT SELECT ON audit_checkpoints TO troupe_app;
GRANT SELECT, INSERT ON audit_chains TO troupe_app;
GRANT SELECT, INSERT, UPDATE ON audit_data_keys TO troupe_app;
REVOKE ALL ON platform_keys FROM troupe_app;
