-- Events, outbound webhooks and inbound webhooks (API.md "Events and outbound webhooks",
-- "Inbound webhooks", docs/webhooks.md). Publishing an event writes the event and one
-- delivery per subscribed endpoint in the same transaction (an outbox); dispatchers claim
-- due deliveries under a lease, so a node that dies mid-delivery loses nothing.

CREATE TABLE event_types (
  tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  name        text NOT NULL,
  description text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, name)
);

CREATE TABLE events (
  tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  id         uuid NOT NULL,
  type       text NOT NULL,
  payload    jsonb NOT NULL,
  traceparent text, -- of the request that published it (W3C Trace Context), passed on
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);

-- The secrets are sealed (AES-256-GCM under a key derived from auth.key-encryption-key,
-- bound to the endpoint id); `previous_secret` keeps signing until `previous_until`.
CREATE TABLE webhook_endpoints (
  tenant_id            uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  id                   uuid NOT NULL,
  url                  text NOT NULL,
  description          text,
  events               text[],
  rate_limit_per_s     integer CHECK (rate_limit_per_s > 0),
  ordered              boolean NOT NULL DEFAULT false,
  disabled             boolean NOT NULL DEFAULT false,
  disabled_reason      text CHECK (disabled_reason IN ('manual', 'gone', 'failures')),
  secret               bytea NOT NULL,
  previous_secret      bytea,
  previous_until       timestamptz,
  consecutive_failures integer NOT NULL DEFAULT 0,
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);

CREATE TABLE webhook_deliveries (
  tenant_id        uuid NOT NULL,
  id               uuid NOT NULL,
  endpoint_id      uuid NOT NULL,
  event_id         uuid NOT NULL,
  event_type       text NOT NULL,
  status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'succeeded', 'failed')),
  attempt_count    integer NOT NULL DEFAULT 0,
  next_attempt_at  timestamptz,
  last_status_code integer,
  lease_until      timestamptz,
  leased_by        text,
  retry_requested  boolean NOT NULL DEFAULT false,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, endpoint_id) REFERENCES webhook_endpoints (tenant_id, id)
    ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, event_id) REFERENCES events (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (tenant_id, next_attempt_at)
  WHERE status = 'pending';
-- A queue table: every delivery is updated twice (claimed, then recorded), and the dead rows
-- slow the claims down until they are vacuumed. Vacuum it early.
ALTER TABLE webhook_deliveries SET (autovacuum_vacuum_scale_factor = 0.02,
  autovacuum_vacuum_insert_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (tenant_id, endpoint_id, id);

CREATE TABLE webhook_attempts (
  tenant_id     uuid NOT NULL,
  delivery_id   uuid NOT NULL,
  n             integer NOT NULL,
  at            timestamptz NOT NULL,
  status_code   integer,
  duration_ms   integer NOT NULL,
  response_body text,
  error         text,
  PRIMARY KEY (tenant_id, delivery_id, n),
  FOREIGN KEY (tenant_id, delivery_id) REFERENCES webhook_deliveries (tenant_id, id)
    ON DELETE CASCADE
);

CREATE TABLE inbound_sources (
  tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  name        text NOT NULL CHECK (name ~ '^[a-z0-9_]{1,64}$'),
  scheme      text NOT NULL CHECK (scheme IN ('standard-webhooks', 'stripe', 'github')),
  secret      bytea NOT NULL,
  tolerance_s integer NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, name)
);

CREATE TABLE inbound_events (
  tenant_id         uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  id                uuid NOT NULL,
  source            text NOT NULL,
  provider_event_id text NOT NULL,
  event_id          uuid NOT NULL,
  body              jsonb NOT NULL,
  received_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, source, provider_event_id)
);

DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['event_types', 'events', 'webhook_endpoints', 'webhook_deliveries',
                           'webhook_attempts', 'inbound_sources', 'inbound_events'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = troupe_current_tenant()) '
                   'WITH CHECK (tenant_id = troupe_current_tenant())', t);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO troupe_app', t);
  END LOOP;
END
$$;

-- The webhook dispatchers alive: each refreshes its row every few seconds. What a dispatcher
-- that stopped refreshing still holds is due again at once (its process is gone), while the
-- leases of a live one, even of the same cluster.node-id, are left alone. No tenant data.
CREATE TABLE webhook_dispatchers (
  instance text PRIMARY KEY,
  seen_at  timestamptz NOT NULL
);
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_dispatchers TO troupe_app;

-- Which tenants have deliveries due, and from when: the dispatchers' only cross-tenant read.
-- It holds tenant ids and times, nothing else; each tenant's deliveries are then claimed in
-- a transaction of that tenant. Rows are written only by their own tenant.
CREATE TABLE webhook_queue (
  tenant_id uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
  due_at    timestamptz NOT NULL
);
CREATE INDEX webhook_queue_due ON webhook_queue (due_at);
ALTER TABLE webhook_queue ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_queue FORCE ROW LEVEL SECURITY;
CREATE POLICY due_lookup ON webhook_queue FOR SELECT USING (true);
CREATE POLICY tenant_inserts ON webhook_queue FOR INSERT
  WITH CHECK (tenant_id = troupe_current_tenant());
CREATE POLICY tenant_updates ON webhook_queue FOR UPDATE
  USING (tenant_id = troupe_current_tenant()) WITH CHECK (tenant_id = troupe_current_tenant());
CREATE POLICY tenant_deletes ON webhook_queue FOR DELETE
  USING (tenant_id = troupe_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_queue TO troupe_app;
