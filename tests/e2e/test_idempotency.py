"""Idempotency keys (API.md "Idempotency", docs/idempotency.md): the side effect happens once
however many identical requests race, replays carry Idempotent-Replayed, a concurrent one is
409, another body 422, 5xx answers are not kept, and kept answers survive a restart."""

import json
import os
import signal
import threading
import unittest

from support import Server, ServerTestCase, psql
from test_auth import CHEAP_ARGON2, AuthMixin

NO_LIMITS = ("--limits.principal=[1000000,60]", "--limits.tenant=[1000000,60]",
             "--limits.anonymous=[1000000,60]")


class IdempotencyTest(AuthMixin, ServerTestCase):
    server_args = NO_LIMITS + CHEAP_ARGON2

    def post_role(self, token, key, name, permissions=("users:read",)):
        return self.call("POST", "/v1/roles", {"name": name, "permissions": list(permissions)},
                         token=token, headers={"Idempotency-Key": key})

    def test_fifty_concurrent_requests_with_one_key_create_one_role(self):
        tenant = self.new_tenant()
        token = self.owner_login(tenant)["access_token"]
        key = "create-role-" + os.urandom(4).hex()
        results = [None] * 50
        start = threading.Barrier(50)

        def one(i):
            start.wait()
            results[i] = self.post_role(token, key, "racer")

        threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        originals = [r for r in results
                     if r.status == 201 and r.headers.get("idempotent-replayed") is None]
        replays = [r for r in results if r.headers.get("idempotent-replayed") == "true"]
        in_flight = [r for r in results if r.status == 409]
        self.assertEqual(len(originals), 1, [r.status for r in results])
        self.assertEqual(len(originals) + len(replays) + len(in_flight), 50,
                         [(r.status, r.body) for r in results])
        for r in replays:
            self.assertEqual(r.status, 201)
            self.assertEqual(r.body, originals[0].body)
            self.assertEqual(r.headers.get("location"), "/v1/roles/racer")
        for r in in_flight:
            self.assertProblem(r, 409, "idempotency-in-flight")
            self.assertEqual(r.headers.get("retry-after"), "1")
        # The side effect happened exactly once.
        roles = self.call("GET", "/v1/roles", token=token).body["data"]
        self.assertEqual([r["name"] for r in roles].count("racer"), 1)
        entries = self.admin("GET", "/v1/audit?action=role.created", tenant=tenant["slug"]).body
        self.assertEqual(len(entries["data"]), 1, entries)
        # A restarted server replays the same answer from PostgreSQL.
        replay_before = self.post_role(token, key, "racer")
        self.assertEqual(replay_before.headers.get("idempotent-replayed"), "true")
        again = Server("--admin.token=" + self.srv.admin_token, *self.server_args)
        with again:  # starts it
            r = self.call_on(again, "POST", "/v1/roles",
                             {"name": "racer", "permissions": ["users:read"]}, token,
                             {"Idempotency-Key": key})
            self.assertEqual(r[0], 201)
            self.assertEqual(r[1].get("idempotent-replayed"), "true")
            self.assertEqual(json.loads(r[2]), originals[0].body)
            self.assertEqual(r[1].get("location"), "/v1/roles/racer")
            self.assertEqual(again.stop(signal.SIGTERM), 0)

    def call_on(self, server, method, path, body, token, headers):
        from support import http_request
        hdrs = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
        hdrs.update(headers)
        return http_request(server, method, path, body=json.dumps(body).encode(), headers=hdrs,
                            timeout=30)

    def test_a_key_with_another_body_is_refused_and_keys_are_scoped(self):
        tenant = self.new_tenant()
        owner = self.owner_login(tenant)["access_token"]
        key = "k-" + os.urandom(4).hex()
        self.assertEqual(self.post_role(owner, key, "one").status, 201)
        r = self.post_role(owner, key, "two")
        self.assertProblem(r, 422, "idempotency-key-reuse")
        self.assertEqual(self.call("GET", "/v1/roles/two", token=owner).status, 404)
        # Another principal has its own keys: the same key runs its own request.
        other = self.call("POST", "/v1/api-keys", {"name": "ops",
                                                "permissions": ["roles:write", "users:read"]},
                          token=owner).body["key"]
        r = self.post_role(other, key, "three")
        self.assertEqual(r.status, 201, r.body)
        self.assertIsNone(r.headers.get("idempotent-replayed"))

    def test_errors_below_500_are_kept_and_malformed_keys_refused(self):
        tenant = self.new_tenant()
        owner = self.owner_login(tenant)["access_token"]
        key = "conflict-" + os.urandom(4).hex()
        self.assertEqual(self.post_role(owner, "first-" + key, "dup").status, 201)
        first = self.post_role(owner, key, "dup")
        self.assertProblem(first, 409, "conflict")
        second = self.post_role(owner, key, "dup")
        self.assertEqual(second.status, 409)
        self.assertEqual(second.headers.get("idempotent-replayed"), "true")
        self.assertEqual(second.body["detail"], first.body["detail"])
        for bad in ("", "x" * 256, "tab\tkey"):
            r = self.call("POST", "/v1/roles", {"name": "bad", "permissions": []}, token=owner,
                          headers={"Idempotency-Key": bad})
            self.assertProblem(r, 400, "bad-request")
        self.assertEqual(self.call("GET", "/v1/roles/bad", token=owner).status, 404)

    def test_a_crashed_claim_expires_instead_of_sticking(self):
        tenant = self.new_tenant()
        owner = self.owner_login(tenant)["access_token"]
        key = "stuck-" + os.urandom(4).hex()
        # A claim left in flight by a node that died: its lease ran out a second ago.
        user = self.me(owner).body["id"]
        psql(self.srv, "INSERT INTO idempotency_keys (tenant_id, principal, key, fingerprint, "
                       "state, lease_until, expires_at) VALUES ('%s', 'user:%s', '%s', "
                       "'\\x00', 'in_flight', now() - interval '1 second', "
                       "now() + interval '1 day')" % (tenant["id"], user, key))
        r = self.post_role(owner, key, "after-crash")
        self.assertEqual(r.status, 201, r.body)
        self.assertIsNone(r.headers.get("idempotent-replayed"))


if __name__ == "__main__":
    unittest.main()
