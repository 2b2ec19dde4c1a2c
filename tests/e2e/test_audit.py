"""The audit log (API.md "Audit log") end to end: admin changes are audited in the same
transaction, /v1/audit lists and filters them, verify finds tampering done as the owner,
export streams NDJSON in bounded memory, and retention prunes behind a signed checkpoint."""

import json
import os
import re
import subprocess
import tempfile
import threading
import time
import unittest
import http.client

from support import (Server, ServerTestCase, http_request, parse_metrics, psql,
                     troupe_bin)

JSON = {"Content-Type": "application/json"}
HASH_RE = re.compile(r"^[0-9a-f]{64}$")
ZERO_HASH = "0" * 64


def slug(prefix="au"):
    return "%s-%s" % (prefix, os.urandom(5).hex())


def bulk_sql(tenant_id, first, last, at, pad=0):
    """SQL that appends entries first..last to a tenant's chain exactly as the server would
    (canonical text, SHA-256 chain from the previous entry), all at time `at`."""
    changes = "null"
    if pad:
        changes = '{"after":{"note":"%s"},"before":null}' % ("x" * pad)
    fmt = ('{"action":"bulk.test","actor":{"id":null,"type":"system"},"at":"%s",'
           '"changes":%s,"encrypted":[],"id":"%s","ip":null,"outcome":"success",'
           '"request_id":null,"resource":{"id":"r%s","type":"bulk"},"seq":%s,'
           '"tenant_id":"%s","user_agent":null,"v":1}')
    return """
CREATE FUNCTION pg_temp.e(n bigint) RETURNS text LANGUAGE sql AS $f$
  SELECT format('%(fmt)s', '%(at)s', '%(changes)s', md5('%(t)s' || n)::uuid, n, n, '%(t)s')
$f$;
INSERT INTO audit_chains (id) VALUES ('%(t)s') ON CONFLICT DO NOTHING;
INSERT INTO audit_log (tenant_id, seq, id, at, actor_type, actor_id, action, resource_type,
                       resource_id, outcome, request_id, entry, prev_hash, hash)
WITH RECURSIVE c(seq, prev, hash) AS (
  SELECT %(first)d::bigint, p, sha256(p || convert_to(pg_temp.e(%(first)d), 'UTF8'))
    FROM (SELECT coalesce((SELECT hash FROM audit_log WHERE tenant_id = '%(t)s'
                           AND seq = %(first)d - 1), decode(repeat('00', 32), 'hex')) AS p) x
  UNION ALL
  SELECT seq + 1, hash, sha256(hash || convert_to(pg_temp.e(seq + 1), 'UTF8'))
    FROM c WHERE seq < %(last)d)
SELECT '%(t)s', seq, md5('%(t)s' || seq)::uuid, '%(at)s'::timestamptz, 'system', NULL,
       'bulk.test', 'bulk', 'r' || seq, 'success', NULL, pg_temp.e(seq), prev, hash FROM c;
""" % {"fmt": fmt, "at": at, "changes": changes, "t": tenant_id, "first": first, "last": last}


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class AuditMixin:
    def call(self, method, path, body=None, headers=None, tenant=None):
        hdrs = {"Authorization": "Bearer " + self.srv.admin_token}
        if tenant is not None:
            hdrs["X-Tenant"] = tenant
        if body is not None:
            hdrs.update(JSON)
        hdrs.update(headers or {})
        data = json.dumps(body).encode() if body is not None else None
        status, headers, payload = http_request(self.srv, method, path, body=data, headers=hdrs,
                                                timeout=60)
        ctype = headers.get("content-type", "")
        parsed = payload
        if payload and ctype in ("application/json", "application/problem+json"):
            parsed = json.loads(payload)
        return status, headers, parsed

    def create(self, headers=None):
        body = {"slug": slug(), "name": "Acme",
                "owner": {"email": "Owner.%s@Example.COM" % os.urandom(3).hex(),
                          "password": "correct horse battery"}}
        status, _, tenant = self.call("POST", "/admin/v1/tenants", body, headers=headers)
        self.assertEqual(status, 201, tenant)
        return tenant

    def audit(self, tenant, query=""):
        status, _, body = self.call("GET", "/v1/audit" + query, tenant=tenant)
        self.assertEqual(status, 200, body)
        return body


class AuditTest(AuditMixin, ServerTestCase):

    def test_admin_changes_are_audited_with_their_origin(self):
        tenant = self.create(headers={"X-Request-ID": "req-create-1", "User-Agent": "e2e-agent/2"})
        status, _, _ = self.call("PATCH", "/admin/v1/tenants/" + tenant["slug"],
                                 {"name": "Acme Two", "plan": "pro"},
                                 headers={"X-Request-ID": "req-patch-1"})
        self.assertEqual(status, 200)
        page = self.audit(tenant["slug"])
        self.assertIsNone(page["next_cursor"])
        updated, created = page["data"]
        self.assertEqual(created["seq"], 1)
        self.assertEqual(created["action"], "tenant.created")
        self.assertEqual(created["outcome"], "success")
        self.assertEqual(created["actor"], {"type": "admin", "id": None})
        self.assertEqual(created["resource"], {"type": "tenant", "id": tenant["id"]})
        self.assertEqual(created["ip"], "127.0.0.1")
        self.assertEqual(created["user_agent"], "e2e-agent/2")
        self.assertEqual(created["request_id"], "req-create-1")
        self.assertIsNone(created["changes"]["before"])
        self.assertEqual(created["changes"]["after"]["owner"]["email"],
                         tenant["owner"]["email"])
        self.assertEqual(created["prev_hash"], ZERO_HASH)
        self.assertRegex(created["hash"], HASH_RE)
        self.assertRegex(created["at"], r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
        self.assertEqual(updated["seq"], 2)
        self.assertEqual(updated["action"], "tenant.updated")
        self.assertEqual(updated["request_id"], "req-patch-1")
        self.assertEqual(updated["prev_hash"], created["hash"])
        self.assertEqual(updated["changes"]["before"]["name"], "Acme")
        self.assertEqual(updated["changes"]["after"]["name"], "Acme Two")
        self.assertEqual(updated["changes"]["after"]["plan"], "pro")
        # Stored: personal data only as ciphertext, and never the password or its hash.
        stored = "\n".join(psql(self.srv, "SELECT entry FROM audit_log WHERE tenant_id = '%s'"
                                % tenant["id"]))
        password_hash = psql(self.srv, "SELECT password_hash FROM users WHERE tenant_id = '%s'"
                             % tenant["id"])[0]
        for secret in (tenant["owner"]["email"], "127.0.0.1", "e2e-agent", "correct horse",
                       password_hash):
            self.assertNotIn(secret, stored)

    def test_a_deleted_tenant_keeps_its_history_but_not_its_personal_data(self):
        tenant = self.create()
        status, _, _ = self.call("DELETE", "/admin/v1/tenants/" + tenant["id"])
        self.assertEqual(status, 202)
        rows = psql(self.srv, "SELECT seq || ' ' || action FROM audit_log WHERE tenant_id = "
                              "'%s' ORDER BY seq" % tenant["id"])
        self.assertEqual(rows, ["1 tenant.created", "2 tenant.deleted"])
        keys = psql(self.srv, "SELECT count(*) FROM audit_data_keys WHERE tenant_id = '%s'"
                    % tenant["id"])
        self.assertEqual(keys, ["0"])
        status, _, body = self.call("GET", "/v1/audit", tenant=tenant["id"])
        self.assertEqual(status, 404, body)

    def test_a_failed_change_writes_no_entry(self):
        tenant = self.create()
        other = self.create()
        status, _, _ = self.call("PATCH", "/admin/v1/tenants/" + tenant["slug"],
                                 {"status": "paused"})
        self.assertEqual(status, 400)
        status, _, _ = self.call("PATCH", "/admin/v1/tenants/%s-missing" % tenant["slug"],
                                 {"name": "x"})
        self.assertEqual(status, 404)
        self.assertEqual(len(self.audit(tenant["slug"])["data"]), 1)
        self.assertEqual(len(self.audit(other["slug"])["data"]), 1)

    def test_paging_and_filters(self):
        tenant = self.create()
        for i in range(5):
            status, _, _ = self.call("PATCH", "/admin/v1/tenants/" + tenant["slug"],
                                     {"name": "Acme %d" % i})
            self.assertEqual(status, 200)
        seqs, cursor = [], ""
        while True:
            page = self.audit(tenant["slug"], "?limit=2" + cursor)
            seqs += [e["seq"] for e in page["data"]]
            if page["next_cursor"] is None:
                break
            cursor = "&cursor=" + page["next_cursor"]
        self.assertEqual(seqs, [6, 5, 4, 3, 2, 1])
        t = tenant["slug"]
        self.assertEqual(len(self.audit(t, "?action=tenant.updated")["data"]), 5)
        self.assertEqual(len(self.audit(t, "?action=tenant.*")["data"]), 6)
        self.assertEqual(len(self.audit(t, "?outcome=denied")["data"]), 0)
        self.assertEqual(len(self.audit(t, "?resource_type=tenant&resource_id=%s"
                                        % tenant["id"])["data"]), 6)
        self.assertEqual(len(self.audit(t, "?from=2999-01-01T00:00:00Z")["data"]), 0)
        self.assertEqual(len(self.audit(t, "?to=2999-01-01T00:00:00%2B01:00")["data"]), 6)
        self.assertEqual(len(self.audit(t, "?actor_id=someone")["data"]), 0)

    def test_bad_queries_are_rejected(self):
        tenant = self.create()
        for query, code in (("?limit=0", "validation-failed"), ("?limit=201", "validation-failed"),
                            ("?limit=abc", "validation-failed"), ("?cursor=%%%", "bad-request"),
                            ("?cursor=bm9wZQ", "validation-failed"), ("?colour=red", "bad-request"),
                            ("?from=yesterday", "validation-failed"),
                            ("?to=2026-02-30T00:00:00Z", "validation-failed"),
                            ("?outcome=maybe", "validation-failed"),
                            ("?limit=1&limit=2", "bad-request")):
            status, headers, body = self.call("GET", "/v1/audit" + query, tenant=tenant["slug"])
            self.assertEqual(status, 400, (query, body))
            self.assertEqual(headers["content-type"], "application/problem+json")
            self.assertEqual(body["code"], code, query)
        status, _, body = self.call("GET", "/v1/audit/verify?x=1", tenant=tenant["slug"])
        self.assertEqual(status, 400, body)

    def test_credentials_and_tenant_are_required(self):
        tenant = self.create()
        for path in ("/v1/audit", "/v1/audit/verify", "/v1/audit/export"):
            status, headers, body = http_request(self.srv, "GET", path,
                                                 headers={"X-Tenant": tenant["slug"]})
            self.assertEqual(status, 401, path)
            self.assertEqual(headers.get("www-authenticate"), "Bearer")
            status, _, _ = http_request(self.srv, "GET", path, headers={
                "X-Tenant": tenant["slug"], "Authorization": "Bearer wrong"})
            self.assertEqual(status, 401, path)
            status, _, _ = self.call("GET", path, tenant="no-such-" + os.urandom(3).hex())
            self.assertEqual(status, 404, path)

    def test_verify_detects_edits_deletions_and_reordering(self):
        tenant = self.create()
        for i in range(4):
            self.call("PATCH", "/admin/v1/tenants/" + tenant["slug"], {"name": "N%d" % i})
        status, _, v = self.call("GET", "/v1/audit/verify", tenant=tenant["slug"])
        self.assertEqual(status, 200)
        self.assertEqual(v, {"ok": True, "entries": 5,
                             "head_hash": self.audit(tenant["slug"])["data"][0]["hash"]})
        where = "tenant_id = '%s'" % tenant["id"]
        psql(self.srv, "UPDATE audit_log SET entry = replace(entry, 'N1', 'N9') WHERE %s AND "
                       "seq = 3" % where)
        _, _, v = self.call("GET", "/v1/audit/verify", tenant=tenant["slug"])
        self.assertEqual((v["ok"], v["first_bad_seq"]), (False, 3), v)
        psql(self.srv, "UPDATE audit_log SET entry = replace(entry, 'N9', 'N1') WHERE %s AND "
                       "seq = 3" % where)
        _, _, v = self.call("GET", "/v1/audit/verify", tenant=tenant["slug"])
        self.assertTrue(v["ok"], v)
        psql(self.srv, "UPDATE audit_log SET seq = seq + 100 WHERE %s AND seq IN (2, 4); "
                       "UPDATE audit_log SET seq = 4 WHERE %s AND seq = 102; "
                       "UPDATE audit_log SET seq = 2 WHERE %s AND seq = 104" % (where, where, where))
        _, _, v = self.call("GET", "/v1/audit/verify", tenant=tenant["slug"])
        self.assertEqual((v["ok"], v["first_bad_seq"]), (False, 2), v)
        psql(self.srv, "DELETE FROM audit_log WHERE %s AND seq = 2" % where)
        _, _, v = self.call("GET", "/v1/audit/verify", tenant=tenant["slug"])
        self.assertEqual((v["ok"], v["first_bad_seq"]), (False, 2), v)

    def test_the_server_role_cannot_change_history(self):
        tenant = self.create()
        for sql in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"):
            with self.assertRaises(Exception):
                psql(self.srv, "SET ROLE troupe_app; SELECT set_config('troupe.tenant_id', "
                               "'%s', false); %s" % (tenant["id"], sql))
        self.assertEqual(psql(self.srv, "SELECT count(*) FROM audit_log WHERE tenant_id = '%s'"
                              % tenant["id"]), ["1"])

    def test_export_streams_every_entry_oldest_first(self):
        tenant = self.create()
        for i in range(3):
            self.call("PATCH", "/admin/v1/tenants/" + tenant["slug"], {"name": "E%d" % i})
        status, headers, body = self.call("GET", "/v1/audit/export", tenant=tenant["slug"])
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "application/x-ndjson")
        self.assertEqual(headers.get("transfer-encoding"), "chunked")
        self.assertNotIn("content-length", headers)
        lines = body.decode().splitlines()
        self.assertEqual([json.loads(l)["seq"] for l in lines], [1, 2, 3, 4])
        listed = list(reversed(self.audit(tenant["slug"])["data"]))
        self.assertEqual([json.loads(l) for l in lines], listed)

    def test_metrics_count_entries(self):
        def total():
            _, _, text = http_request(self.srv, "GET", "/metrics")
            return sum(v for name, _, v in parse_metrics(text.decode())
                       if name == "troupe_audit_entries_total")
        before = total()
        tenant = self.create()
        self.call("PATCH", "/admin/v1/tenants/" + tenant["slug"], {"name": "M"})
        # The creation's entry is written by the tenants actor, the update's by the tenant.
        self.assertEqual(total() - before, 2)


class KeyEncryptionKeyTest(unittest.TestCase):
    """A server started with another auth.key-encryption-key than the one its database was set
    up with refuses to start (exit 2): the audit log's personal data would be unreadable."""

    def test_a_different_key_encryption_key_is_refused(self):
        with tempfile.TemporaryDirectory(prefix="troupe-e2e-") as cwd:
            os.chmod(cwd, 0o755)  # an embedded PostgreSQL runs as the postgres user
            with Server(cwd=cwd) as srv:  # records the suite's test key (if it is the first)
                self.assertEqual(srv.stop(), 0)
            args = [troupe_bin(), "serve", "--http.port=0", "--admin.token=tra_x",
                    "--auth.key-encryption-key=" + "ab" * 32]
            if os.environ.get("TROUPE_TEST_PG"):
                args.append("--database.url=" + os.environ["TROUPE_TEST_PG"])
            env = {k: v for k, v in os.environ.items() if not k.startswith("TROUPE_")}
            proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                                  timeout=60, stdin=subprocess.DEVNULL)
            self.assertEqual(proc.returncode, 2, proc.stdout + proc.stderr)
            self.assertIn("auth.key-encryption-key: not the key this database was set up with",
                          proc.stderr)
            # The right key still starts.
            with Server(cwd=cwd) as srv:
                self.assertEqual(srv.stop(), 0)


class AuditExportScaleTest(AuditMixin, unittest.TestCase):
    """100,000 entries (about 100 MB of NDJSON) export with a flat memory profile."""

    ENTRIES = 100000

    def test_export_of_100000_entries_stays_in_bounded_memory(self):
        env = {}
        if os.environ.get("ASAN_OPTIONS") is not None:
            # ASan keeps freed memory in a quarantine (256 MB by default): keep it small so
            # that RSS shows what the server holds, not what ASan holds back.
            env["ASAN_OPTIONS"] = os.environ["ASAN_OPTIONS"] + ":quarantine_size_mb=8"
        with Server(env=env) as srv:
            self.srv = srv
            tenant = self.create()
            psql(srv, bulk_sql(tenant["id"], 2, self.ENTRIES + 1, "2026-01-01T00:00:00.000Z",
                               pad=800), timeout=300)
            # Warm up (first page, connection, allocator), then measure.
            status, _, _ = self.call("GET", "/v1/audit?limit=200", tenant=tenant["slug"])
            self.assertEqual(status, 200)
            baseline = rss_kib(srv.proc.pid)
            peak = [baseline]
            stop = threading.Event()

            def sample():
                while not stop.is_set():
                    peak[0] = max(peak[0], rss_kib(srv.proc.pid))
                    time.sleep(0.02)
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            conn = http.client.HTTPConnection(srv.host, srv.port, timeout=120)
            started = time.monotonic()
            try:
                conn.request("GET", "/v1/audit/export", headers={
                    "Authorization": "Bearer " + srv.admin_token, "X-Tenant": tenant["slug"]})
                resp = conn.getresponse()
                self.assertEqual(resp.status, 200)
                lines, size, last_seq, tail = 0, 0, 0, b""
                while True:
                    chunk = resp.read(1 << 16)
                    if not chunk:
                        break
                    size += len(chunk)
                    data = tail + chunk
                    parts = data.split(b"\n")
                    tail = parts.pop()
                    for part in parts:
                        lines += 1
                        seq = json.loads(part)["seq"]
                        self.assertEqual(seq, last_seq + 1)
                        last_seq = seq
            finally:
                conn.close()
                stop.set()
                sampler.join()
            elapsed = time.monotonic() - started
            self.assertEqual(tail, b"")
            self.assertEqual(lines, self.ENTRIES + 1)
            growth_mib = (peak[0] - baseline) / 1024.0
            print("export: %d entries, %.1f MiB in %.2f s; server RSS %.1f MiB -> peak %.1f MiB "
                  "(+%.1f MiB)" % (lines, size / 1048576.0, elapsed, baseline / 1024.0,
                                   peak[0] / 1024.0, growth_mib))
            self.assertGreater(size, 90 * 1048576)
            self.assertLess(growth_mib, 48, "the export does not stream in bounded memory")
            started = time.monotonic()
            status, _, v = self.call("GET", "/v1/audit/verify", tenant=tenant["slug"])
            print("verify: %d entries in %.2f s" % (v.get("entries", -1),
                                                    time.monotonic() - started))
            self.assertEqual(status, 200)
            self.assertEqual((v["ok"], v["entries"]), (True, self.ENTRIES + 1), v)
            self.assertEqual(srv.stop(), 0)


class AuditRetentionTest(AuditMixin, unittest.TestCase):
    """audit.retention-days prunes old entries behind a signed checkpoint; the chain still
    verifies and goes on."""

    def test_retention_prunes_old_entries_and_the_chain_still_verifies(self):
        tenant_slug = slug("ret")
        with tempfile.TemporaryDirectory(prefix="troupe-e2e-") as cwd:
            os.chmod(cwd, 0o755)  # an embedded PostgreSQL runs as the postgres user
            # First without retention: a tenant whose chain starts with ten entries from 2020.
            with Server(cwd=cwd) as srv:
                tenant_id = psql(srv, "INSERT INTO tenants (id, slug, name) VALUES "
                                 "(gen_random_uuid(), '%s', 'Old') RETURNING id" % tenant_slug)[0]
                psql(srv, bulk_sql(tenant_id, 1, 10, "2020-01-01T00:00:00.000Z"))
                psql(srv, bulk_sql(tenant_id, 11, 12, time.strftime("%Y-%m-%dT%H:%M:%S.000Z",
                                                                    time.gmtime())))
                self.assertEqual(srv.stop(), 0)
            with Server("--audit.retention-days=30", cwd=cwd) as srv:
                self.srv = srv
                line = srv.wait_for_line(lambda l: "audit pruned" in l, timeout=30)
                self.assertIsNotNone(line, srv.logs())
                self.assertEqual(psql(srv, "SELECT seq FROM audit_checkpoints WHERE tenant_id = "
                                      "'%s'" % tenant_id), ["10"])
                self.assertEqual(psql(srv, "SELECT min(seq) FROM audit_log WHERE tenant_id = "
                                      "'%s'" % tenant_id), ["11"])
                status, _, v = self.call("GET", "/v1/audit/verify", tenant=tenant_slug)
                self.assertEqual(status, 200)
                self.assertEqual((v["ok"], v["entries"]), (True, 2), v)
                status, _, _ = self.call("PATCH", "/admin/v1/tenants/" + tenant_slug,
                                         {"name": "New"})
                self.assertEqual(status, 200)
                page = self.audit(tenant_slug)
                self.assertEqual([e["seq"] for e in page["data"]], [13, 12, 11])
                status, _, v = self.call("GET", "/v1/audit/verify", tenant=tenant_slug)
                self.assertEqual((v["ok"], v["entries"]), (True, 3), v)
                self.assertEqual(srv.stop(), 0)


if __name__ == "__main__":
    unittest.main()
