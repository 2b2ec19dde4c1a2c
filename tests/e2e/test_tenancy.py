"""Tenancy of /v1 requests (API.md "Tenancy and authentication"): the tenant is resolved
through the directory before any route — unknown → 404, suspended → 403 tenant-suspended,
none named → 401 — and an admin change applies to the very next request."""

import json
import os
import unittest

from support import ServerTestCase, http_request, metric_value, parse_metrics, scrape


class TenancyTest(ServerTestCase):
    server_args = ("--http.base-domain=troupe.test",)

    def admin(self, method, path, body=None):
        headers = {"Authorization": "Bearer " + self.srv.admin_token}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        status, _, payload = http_request(self.srv, method, path, body=data, headers=headers)
        return status, json.loads(payload) if payload else None

    def new_tenant(self):
        slug = "ten-" + os.urandom(5).hex()
        status, body = self.admin("POST", "/admin/v1/tenants", {
            "slug": slug, "name": "T", "owner": {"email": "o@t.test", "password": "0123456789"}})
        self.assertEqual(status, 201, body)
        return body

    def v1(self, headers, path="/v1/nothing-here"):
        status, hdrs, payload = http_request(self.srv, "GET", path, headers=headers)
        return status, hdrs, json.loads(payload) if payload else None

    def test_an_unknown_tenant_is_404(self):
        for key in ("no-such-tenant", "0190a3c4-0000-7000-8000-0000000000ff"):
            status, _, body = self.v1({"X-Tenant": key})
            self.assertEqual(status, 404, body)
            self.assertEqual(body["code"], "not-found")
            self.assertIn("tenant", body["detail"])

    def test_a_request_naming_no_tenant_is_401(self):
        status, headers, body = self.v1({})
        self.assertEqual(status, 401, body)
        self.assertEqual(body["code"], "unauthenticated")
        self.assertEqual(headers["www-authenticate"], "Bearer")

    def test_a_known_tenant_reaches_routing(self):
        tenant = self.new_tenant()
        for headers in ({"X-Tenant": tenant["slug"]}, {"X-Tenant": tenant["id"]},
                        {"Host": tenant["slug"] + ".troupe.test:8080"}):
            status, _, body = self.v1(headers)
            # No /v1 route exists yet: the tenant resolved, then the router answered.
            self.assertEqual(status, 404, (headers, body))
            self.assertIn("no route", body["detail"])
        line = self.srv.wait_for_line(lambda l: "tenant=" + tenant["id"] in l, timeout=5)
        self.assertIsNotNone(line, "the request line names the tenant")

    def test_suspension_and_reactivation_apply_to_the_next_request(self):
        tenant = self.new_tenant()
        headers = {"X-Tenant": tenant["slug"]}
        self.assertIn("no route", self.v1(headers)[2]["detail"])  # active, now cached
        self.assertEqual(self.admin("PATCH", "/admin/v1/tenants/" + tenant["id"],
                                    {"status": "suspended"})[0], 200)
        status, _, body = self.v1(headers)
        self.assertEqual(status, 403, body)
        self.assertEqual(body["code"], "tenant-suspended")
        self.assertEqual(self.admin("PATCH", "/admin/v1/tenants/" + tenant["id"],
                                    {"status": "active"})[0], 200)
        self.assertIn("no route", self.v1(headers)[2]["detail"])

    def test_a_deleted_tenant_is_404_at_once(self):
        tenant = self.new_tenant()
        headers = {"X-Tenant": tenant["id"]}
        self.assertIn("no route", self.v1(headers)[2]["detail"])
        self.assertEqual(self.admin("DELETE", "/admin/v1/tenants/" + tenant["id"])[0], 202)
        status, _, body = self.v1(headers)
        self.assertEqual(status, 404)
        self.assertIn("tenant", body["detail"])

    def test_metrics_show_active_tenants_and_the_pool(self):
        tenant = self.new_tenant()
        self.v1({"X-Tenant": tenant["slug"]})
        samples = parse_metrics(scrape(self.srv))
        self.assertGreaterEqual(metric_value(samples, "troupe_actors", kind="tenant"), 1)
        self.assertEqual(metric_value(samples, "troupe_actors", kind="directory"), 1)
        busy = metric_value(samples, "troupe_db_pool_connections", state="busy")
        idle = metric_value(samples, "troupe_db_pool_connections", state="idle")
        self.assertEqual(busy + idle, 8)  # database.pool-size
        self.assertGreaterEqual(metric_value(samples, "troupe_db_pool_connections",
                                             state="waiting"), 0)

    def test_paths_outside_v1_do_not_need_a_tenant(self):
        self.assertEqual(http_request(self.srv, "GET", "/healthz")[0], 200)
        self.assertEqual(http_request(self.srv, "GET", "/v1x")[0], 404)


if __name__ == "__main__":
    unittest.main()
