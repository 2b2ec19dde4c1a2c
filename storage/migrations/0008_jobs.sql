-- Durable jobs and cron schedules (API.md "Jobs and schedules", docs/jobs.md). A job is a row;
-- dispatchers claim due rows of a tenant in batches (FOR UPDATE SKIP LOCKED) under a lease that
-- their heartbeats extend, so a node that dies mid-job loses nothing: its lease runs out and
-- another node runs the job again.

CREATE TABLE jobs (
  tenant_id        uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  id               uuid NOT NULL,
  type             text NOT NULL,
  -- 'scheduled' reads as 'available' once run_at has passed (the row is not rewritten then).
  state            text NOT NULL CHECK (state IN ('scheduled', 'available', 'running',
                                                  'retrying', 'succeeded', 'discarded',
                                                  'cancelled')),
  payload          jsonb NOT NULL DEFAULT '{}',
  priority         smallint NOT NULL DEFAULT 5 CHECK (priority BETWEEN 0 AND 9),
  attempt          integer NOT NULL DEFAULT 0,
  max_attempts     integer NOT NULL DEFAULT 5 CHECK (max_attempts BETWEEN 1 AND 100),
  timeout_s        integer NOT NULL DEFAULT 300 CHECK (timeout_s BETWEEN 1 AND 86400),
  run_at           timestamptz NOT NULL,
  -- When a dispatcher must look at the row: run_at while it waits, the end of its lease while
  -- it runs, NULL once it has finished. The claim index holds only unfinished jobs.
  next_at          timestamptz,
  unique_key       text,
  attempts         jsonb NOT NULL DEFAULT '[]', -- [{"n","started_at","finished_at","error"}]
  result           jsonb,
  last_error       text,
  leased_by        text, -- <cluster.node-id>/<random>: the dispatcher running it
  cancel_requested boolean NOT NULL DEFAULT false,
  schedule_name    text,  -- the schedule that fired it, if any
  traceparent      text,  -- of the request that created it (W3C Trace Context)
  created_at       timestamptz NOT NULL DEFAULT now(),
  finished_at      timestamptz,
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX jobs_due ON jobs (tenant_id, priority, next_at, id) WHERE next_at IS NOT NULL;
-- At most one unfinished job per unique_key.
CREATE UNIQUE INDEX jobs_unique_key ON jobs (tenant_id, unique_key)
  WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'available', 'running', 'retrying');
ALTER TABLE jobs SET (autovacuum_vacuum_scale_factor = 0.02, fillfactor = 90);

-- Effects recorded by the idempotent helper (features::once): one row per job and key, written
-- in the transaction of the effect itself, so a job run again after a crash skips it.
CREATE TABLE job_effects (
  tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  job_id     uuid NOT NULL,
  key        text NOT NULL,
  result     jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, job_id, key)
);

CREATE TABLE schedules (
  tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  name        text NOT NULL,
  cron        text NOT NULL,
  timezone    text NOT NULL,
  job         jsonb NOT NULL, -- {"type","payload","priority","max_attempts","timeout_s","unique_key"}
  enabled     boolean NOT NULL DEFAULT true,
  next_run_at timestamptz,    -- the next due time; NULL when disabled or never again
  last_run_at timestamptz,    -- the due time that fired last
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, name)
);
CREATE INDEX schedules_due ON schedules (tenant_id, next_run_at) WHERE next_run_at IS NOT NULL;

-- One row per schedule and due time: a schedule fires once per due time across every node.
CREATE TABLE schedule_firings (
  tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  schedule_name text NOT NULL,
  due_at        timestamptz NOT NULL,
  job_id        uuid NOT NULL,
  fired_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, schedule_name, due_at)
);

DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['jobs', 'job_effects', 'schedules', 'schedule_firings'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = troupe_current_tenant()) '
                   'WITH CHECK (tenant_id = troupe_current_tenant())', t);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO troupe_app', t);
  END LOOP;
END
$$;

-- Which tenants have jobs or schedule firings due, and from when: the job dispatchers' only
-- cross-tenant read (tenant ids and times, nothing else), like webhook_queue. Rows are written
-- only by their own tenant.
CREATE TABLE job_queue (
  tenant_id uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
  due_at    timestamptz NOT NULL
);
CREATE INDEX job_queue_due ON job_queue (due_at);
ALTER TABLE job_queue ENABLE ROW LEVEL SECURITY;
ALTER TABLE job_queue FORCE ROW LEVEL SECURITY;
CREATE POLICY due_lookup ON job_queue FOR SELECT USING (true);
CREATE POLICY tenant_inserts ON job_queue FOR INSERT
  WITH CHECK (tenant_id = troupe_current_tenant());
CREATE POLICY tenant_updates ON job_queue FOR UPDATE
  USING (tenant_id = troupe_current_tenant()) WITH CHECK (tenant_id = troupe_current_tenant());
CREATE POLICY tenant_deletes ON job_queue FOR DELETE
  USING (tenant_id = troupe_current_tenant());
GRANT SELECT, INSERT, UPDATE, DELETE ON job_queue TO troupe_app;
