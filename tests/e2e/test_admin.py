"""The platform API /admin/v1/tenants (API.md "Platform") against a real PostgreSQL: every
route, and every error the contract names."""

import json
import os
import re
import stat
import unittest

from support import UUID7_RE, Server, ServerTestCase, http_request, psql

TOKEN = "tra_e2e_" + os.urandom(12).hex()
AUTH = {"Authorization": "Bearer " + TOKEN}
JSON = {"Content-Type": "application/json"}
PROBLEM_KEYS = {"type", "code", "title", "status", "instance", "request_id"}
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def slug(prefix="t"):
    return "%s-%s" % (prefix, os.urandom(5).hex())


class AdminTest(ServerTestCase):
    server_args = ("--admin.token=" + TOKEN, "--http.max-body-bytes=4096")

    def call(self, method, path, body=None, headers=None, raw=None):
        hdrs = dict(AUTH)
        if body is not None or raw is not None:
            hdrs.update(JSON)
        hdrs.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        status, headers, payload = http_request(self.srv, method, path, body=data, headers=hdrs)
        return status, headers, (json.loads(payload) if payload else None)

    def create(self, **fields):
        body = {"slug": slug(), "name": "Acme", "owner": {"email": "Owner@Example.COM",
                                                         "password": "correct horse battery"}}
        body.update(fields)
        return self.call("POST", "/admin/v1/tenants", body)

    def assertProblem(self, status, headers, body, expected_status, code):
        self.assertEqual(status, expected_status, body)
        self.assertEqual(headers["content-type"], "application/problem+json")
        self.assertTrue(PROBLEM_KEYS <= set(body), body)
        self.assertEqual(body["code"], code)
        self.assertEqual(body["status"], expected_status)
        self.assertEqual(body["request_id"], headers["x-request-id"])

    # -- create --------------------------------------------------------------------------

    def test_create_answers_201_with_the_tenant_its_owner_and_location(self):
        s = slug()
        status, headers, body = self.create(slug=s, plan="pro")
        self.assertEqual(status, 201, body)
        self.assertRegex(body["id"], UUID7_RE)
        self.assertEqual(headers["location"], "/admin/v1/tenants/" + body["id"])
        self.assertEqual((body["slug"], body["name"], body["plan"], body["status"]),
                         (s, "Acme", "pro", "active"))
        self.assertRegex(body["created_at"], TS_RE)
        self.assertRegex(body["owner"]["id"], UUID7_RE)
        self.assertEqual(body["owner"]["email"], "owner@example.com")  # lower-cased
        self.assertNotIn("password", json.dumps(body))

    def test_the_owner_is_stored_in_the_same_transaction_with_an_argon2id_hash(self):
        status, _, body = self.create()
        self.assertEqual(status, 201)
        rows = psql(self.srv, "SELECT email, roles, password_hash FROM users WHERE tenant_id = '%s'"
                    % body["id"])
        self.assertEqual(len(rows), 1, rows)
        email, roles, password_hash = rows[0].split("|")
        self.assertEqual(email, "owner@example.com")
        self.assertEqual(roles, "{owner}")
        self.assertTrue(password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$"), password_hash)
        self.assertNotIn("correct horse", password_hash)

    def test_plan_defaults_to_free(self):
        status, _, body = self.create()
        self.assertEqual(status, 201)
        self.assertEqual(body["plan"], "free")

    def test_a_taken_slug_is_409_and_changes_nothing(self):
        s = slug()
        self.assertEqual(self.create(slug=s)[0], 201)
        status, headers, body = self.create(slug=s)
        self.assertProblem(status, headers, body, 409, "conflict")
        self.assertEqual(psql(self.srv, "SELECT count(*) FROM tenants WHERE slug = '%s'" % s),
                         ["1"])

    def test_bad_slugs_are_validation_failures(self):
        for bad in ("A-upper", "x", "-lead", "has_underscore", "a" * 64, "", "sp ace", 42):
            status, headers, body = self.create(slug=bad)
            self.assertProblem(status, headers, body, 400, "validation-failed")
            self.assertIn("/slug", [e["pointer"] for e in body["errors"]], bad)

    def test_invalid_fields_are_listed_with_pointers(self):
        status, headers, body = self.call("POST", "/admin/v1/tenants", {
            "slug": slug(), "name": "", "color": "red",
            "owner": {"email": "not-an-email", "password": "short", "role": "x"}})
        self.assertProblem(status, headers, body, 400, "validation-failed")
        pointers = sorted(e["pointer"] for e in body["errors"])
        self.assertEqual(pointers, ["/color", "/name", "/owner/email", "/owner/password",
                                    "/owner/role"])

    def test_missing_fields_are_required(self):
        status, headers, body = self.call("POST", "/admin/v1/tenants", {})
        self.assertProblem(status, headers, body, 400, "validation-failed")
        self.assertEqual(sorted(e["pointer"] for e in body["errors"]),
                         ["/name", "/owner", "/slug"])

    def test_malformed_json_is_400_bad_request(self):
        for raw in (b"{", b"not json", b'{"slug": }', b"\xff\xfe"):
            status, headers, body = self.call("POST", "/admin/v1/tenants", raw=raw)
            self.assertProblem(status, headers, body, 400, "bad-request")

    def test_a_json_value_that_is_not_an_object_is_a_validation_failure(self):
        status, headers, body = self.call("POST", "/admin/v1/tenants", raw=b"[1,2]")
        self.assertProblem(status, headers, body, 400, "validation-failed")

    def test_a_body_that_is_not_json_is_415(self):
        status, headers, body = self.call("POST", "/admin/v1/tenants", raw=b"slug=x",
                                          headers={"Content-Type": "text/plain"})
        self.assertProblem(status, headers, body, 415, "unsupported-media-type")

    def test_an_oversized_body_is_413(self):
        status, headers, body = self.call("POST", "/admin/v1/tenants",
                                          {"slug": slug(), "name": "x" * 5000})
        self.assertEqual(status, 413)
        self.assertEqual(body["code"], "payload-too-large")

    # -- authentication ------------------------------------------------------------------

    def test_a_missing_or_wrong_token_is_401_with_www_authenticate(self):
        cases = [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                 {"Authorization": "Basic " + TOKEN}, {"Authorization": "Bearer " + TOKEN + "x"},
                 {"Authorization": "Bearer"}]
        for path, method in (("/admin/v1/tenants", "GET"), ("/admin/v1/tenants", "POST"),
                             ("/admin/v1/tenants/x", "GET"), ("/admin/v1/tenants/x", "PATCH"),
                             ("/admin/v1/tenants/x", "DELETE")):
            for hdrs in cases:
                status, headers, body = http_request(self.srv, method, path, headers=hdrs)
                self.assertEqual(status, 401, (method, path, hdrs))
                self.assertEqual(headers.get("www-authenticate"), "Bearer")
                self.assertEqual(json.loads(body)["code"], "unauthenticated")

    def test_the_scheme_name_is_case_insensitive(self):
        status, _, _ = http_request(self.srv, "GET", "/admin/v1/tenants",
                                    headers={"Authorization": "bearer " + TOKEN})
        self.assertEqual(status, 200)

    # -- read ----------------------------------------------------------------------------

    def test_get_by_id_and_by_slug(self):
        _, _, created = self.create()
        for key in (created["id"], created["slug"]):
            status, _, body = self.call("GET", "/admin/v1/tenants/" + key)
            self.assertEqual(status, 200)
            self.assertEqual(body["id"], created["id"])
            self.assertEqual(body["limits"], {})
            self.assertEqual(body["settings"], {})

    def test_an_unknown_tenant_is_404(self):
        for key in ("no-such-tenant", "0190a3c4-0000-7000-8000-000000000000"):
            status, headers, body = self.call("GET", "/admin/v1/tenants/" + key)
            self.assertProblem(status, headers, body, 404, "not-found")

    def test_list_pages_with_a_cursor(self):
        ids = [self.create()[2]["id"] for _ in range(3)]
        seen = []
        cursor = None
        for _ in range(100):
            path = "/admin/v1/tenants?limit=2" + ("&cursor=" + cursor if cursor else "")
            status, _, body = self.call("GET", path)
            self.assertEqual(status, 200, body)
            self.assertLessEqual(len(body["data"]), 2)
            seen += [t["id"] for t in body["data"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        for i in ids:
            self.assertIn(i, seen)
        self.assertEqual(len(seen), len(set(seen)), "a tenant appeared on two pages")
        self.assertEqual(seen, sorted(seen), "pages are in id (creation) order")

    def test_bad_limit_or_cursor_is_400(self):
        for query in ("limit=0", "limit=201", "limit=abc", "limit=-1", "limit=", "cursor=!!",
                      "cursor=bm90LWEtdXVpZA"):
            status, headers, body = self.call("GET", "/admin/v1/tenants?" + query)
            self.assertProblem(status, headers, body, 400, "bad-request")

    # -- update --------------------------------------------------------------------------

    def test_patch_changes_and_merges(self):
        _, _, created = self.create()
        path = "/admin/v1/tenants/" + created["slug"]
        status, _, body = self.call("PATCH", path, {
            "name": "Acme 2", "plan": "enterprise", "status": "suspended",
            "limits": {"principal": [100, 60], "requests_per_month": 1000},
            "settings": {"signup": "closed"}})
        self.assertEqual(status, 200, body)
        self.assertEqual((body["name"], body["plan"], body["status"]),
                         ("Acme 2", "enterprise", "suspended"))
        self.assertEqual(body["limits"], {"principal": [100, 60], "requests_per_month": 1000})
        status, _, body = self.call("PATCH", path, {"limits": {"tenant": [10, 1]},
                                                    "status": "active"})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["limits"], {"principal": [100, 60], "requests_per_month": 1000,
                                          "tenant": [10, 1]})
        self.assertEqual(body["status"], "active")
        self.assertEqual(body["settings"], {"signup": "closed"})

    def test_patch_rejects_bad_values_and_changes_nothing(self):
        _, _, created = self.create()
        path = "/admin/v1/tenants/" + created["id"]
        for bad, pointer in (({"status": "gone"}, "/status"), ({"limits": {"principal": 5}},
                             "/limits/principal"), ({"limits": {"principal": [0, 60]}},
                             "/limits/principal"), ({"limits": {"bogus": [1, 1]}},
                             "/limits/bogus"), ({"settings": {"signup": "maybe"}},
                             "/settings/signup"), ({"slug": "new-slug"}, "/slug"),
                             ({"limits": []}, "/limits"), ({"name": ""}, "/name")):
            status, headers, body = self.call("PATCH", path, bad)
            self.assertProblem(status, headers, body, 400, "validation-failed")
            self.assertIn(pointer, [e["pointer"] for e in body["errors"]], bad)
        status, _, body = self.call("GET", path)
        self.assertEqual((body["status"], body["limits"], body["name"]), ("active", {}, "Acme"))

    def test_patch_of_an_unknown_tenant_is_404(self):
        status, headers, body = self.call("PATCH", "/admin/v1/tenants/no-such", {"name": "x"})
        self.assertProblem(status, headers, body, 404, "not-found")

    # -- delete --------------------------------------------------------------------------

    def test_delete_purges_and_frees_the_slug(self):
        s = slug()
        _, _, created = self.create(slug=s)
        status, _, body = self.call("DELETE", "/admin/v1/tenants/" + s)
        self.assertEqual(status, 202, body)
        self.assertEqual(body, {"id": created["id"], "slug": s, "status": "deleted"})
        self.assertEqual(self.call("GET", "/admin/v1/tenants/" + created["id"])[0], 404)
        self.assertEqual(psql(self.srv, "SELECT count(*) FROM users WHERE tenant_id = '%s'"
                              % created["id"]), ["0"])
        status, _, again = self.create(slug=s)
        self.assertEqual(status, 201)
        self.assertNotEqual(again["id"], created["id"])

    def test_delete_of_an_unknown_tenant_is_404(self):
        status, headers, body = self.call("DELETE", "/admin/v1/tenants/no-such-tenant")
        self.assertProblem(status, headers, body, 404, "not-found")


class AdminTokenTest(unittest.TestCase):
    def test_a_generated_token_is_printed_once_kept_0600_and_reused(self):
        with Server(admin_token=False) as first:
            printed = [l for l in first.stderr_lines if "admin token (shown once" in l]
            self.assertEqual(len(printed), 1, first.logs())
            token = printed[0].rsplit(" ", 1)[1]
            self.assertTrue(token.startswith("tra_"))
            path = os.path.join(first.cwd, "var", "admin-token")
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
            status, _, _ = http_request(first, "GET", "/admin/v1/tenants",
                                        headers={"Authorization": "Bearer " + token})
            self.assertEqual(status, 200)
            self.assertFalse([l for l in first.snapshot() if token in l], "token in the log")
            self.assertEqual(first.stop(), 0)
            with Server(cwd=first.cwd, admin_token=False) as second:
                self.assertFalse([l for l in second.stderr_lines if "shown once" in l])
                status, _, _ = http_request(second, "GET", "/admin/v1/tenants",
                                            headers={"Authorization": "Bearer " + token})
                self.assertEqual(status, 200)


if __name__ == "__main__":
    unittest.main()
