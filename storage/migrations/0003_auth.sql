-- Authentication (docs/auth.md): MFA columns, sessions and their refresh tokens, MFA login
-- challenges, recovery codes, API keys, and the JWT signing keys. Every tenant-owned table
-- has forced row-level security like users.

ALTER TABLE users
  ADD COLUMN mfa_enabled    boolean NOT NULL DEFAULT false,
  ADD COLUMN totp_secret    bytea,   -- sealed with AES-256-GCM (storage/auth.cpp)
  ADD COLUMN totp_pending   bytea,   -- sealed; enrolled, not yet activated
  ADD COLUMN totp_last_step bigint NOT NULL DEFAULT 0; -- the last accepted TOTP time step

-- One row per refresh-token family (a login).
CREATE TABLE sessions (
  tenant_id      uuid NOT NULL,
  id             uuid NOT NULL,
  user_id        uuid NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  last_used_at   timestamptz NOT NULL DEFAULT now(),
  expires_at     timestamptz NOT NULL,
  revoked_at     timestamptz,
  revoked_reason text,
  ip             text,
  user_agent     text,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX sessions_by_user ON sessions (tenant_id, user_id, id DESC);

-- Every refresh token ever issued, by SHA-256: the current one of a family has no spent_at;
-- a spent one presented again is reuse.
CREATE TABLE refresh_tokens (
  tenant_id  uuid NOT NULL,
  token_hash bytea NOT NULL,
  session_id uuid NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  spent_at   timestamptz,
  PRIMARY KEY (tenant_id, token_hash),
  FOREIGN KEY (tenant_id, session_id) REFERENCES sessions (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (tenant_id, session_id);

-- The second step of a login with MFA on: single use, short-lived, a few tries.
CREATE TABLE mfa_challenges (
  tenant_id   uuid NOT NULL,
  id          uuid NOT NULL,
  user_id     uuid NOT NULL,
  secret_hash bytea NOT NULL,
  expires_at  timestamptz NOT NULL,
  used_at     timestamptz,
  failures    integer NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE recovery_codes (
  tenant_id uuid NOT NULL,
  user_id   uuid NOT NULL,
  code_hash bytea NOT NULL,
  used_at   timestamptz,
  PRIMARY KEY (tenant_id, user_id, code_hash),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE api_keys (
  tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  id          uuid NOT NULL,
  name        text NOT NULL,
  prefix      text NOT NULL,
  key_hash    bytea NOT NULL UNIQUE,
  permissions text[] NOT NULL,
  created_by  uuid,
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz,
  revoked_at  timestamptz,
  PRIMARY KEY (tenant_id, id)
);

DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['sessions', 'refresh_tokens', 'mfa_challenges', 'recovery_codes',
                           'api_keys'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = troupe_current_tenant()) '
                   'WITH CHECK (tenant_id = troupe_current_tenant())', t);
  END LOOP;
END
$$;

-- Which tenant an API key belongs to, for a request that names no tenant (and to tell a
-- key of another tenant, 403 tenant-mismatch, from an unknown one). It holds SHA-256 hashes
-- of random 256-bit keys and tenant ids, nothing of a tenant's data, so reading it is the one
-- deliberately cross-tenant policy; writing stays scoped to the transaction's tenant.
CREATE TABLE api_key_tenants (
  key_hash  bytea PRIMARY KEY,
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE
);
ALTER TABLE api_key_tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_key_tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY lookup_by_hash ON api_key_tenants FOR SELECT USING (true);
CREATE POLICY tenant_writes ON api_key_tenants FOR INSERT
  WITH CHECK (tenant_id = troupe_current_tenant());
CREATE POLICY tenant_deletes ON api_key_tenants FOR DELETE
  USING (tenant_id = troupe_current_tenant());

-- Ed25519 signing keys of access tokens. The private key is sealed under a key derived
-- from auth.key-encryption-key; the newest key signs, retired ones only verify.
CREATE TABLE signing_keys (
  kid            text PRIMARY KEY,
  public_key     bytea NOT NULL,
  private_sealed bytea NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  retired_at     timestamptz
);

GRANT SELECT, INSERT, UPDATE, DELETE ON sessions, refresh_tokens, mfa_challenges,
  recovery_codes, api_keys TO troupe_app;
GRANT SELECT, INSERT, DELETE ON api_key_tenants TO troupe_app;
GRANT SELECT, INSERT, UPDATE ON signing_keys TO troupe_app;
