"""Rate limits (API.md "Rate limits and quotas", docs/rate-limits.md): exact per-principal,
per-address and per-tenant buckets in the tenant actor, the headers on every /v1 response,
429 with Retry-After, per-tenant overrides, and audited refusals."""

import re
import threading
import time
import unittest

from support import ServerTestCase, psql
from test_auth import CHEAP_ARGON2, PASSWORD, AuthMixin, new_email

POLICY_RE = re.compile(r'^"(principal|tenant|anonymous)";q=(\d+);w=(\d+)$')
STATE_RE = re.compile(r'^"(principal|tenant|anonymous)";r=(\d+);t=(\d+)$')


class RateLimitTest(AuthMixin, ServerTestCase):
    server_args = ("--limits.anonymous=[5,60]",) + CHEAP_ARGON2

    def limited(self, who, **limits):
        r = self.admin("PATCH", "/admin/v1/tenants/" + who["id"], {"limits": limits})
        self.assertEqual(r.status, 200, r.body)

    def assertRateHeaders(self, r, bucket=None):
        """The IETF pair and the X-RateLimit trio name one bucket and agree."""
        policy = POLICY_RE.match(r.headers.get("ratelimit-policy", ""))
        state = STATE_RE.match(r.headers.get("ratelimit", ""))
        self.assertTrue(policy, r.headers)
        self.assertTrue(state, r.headers)
        self.assertEqual(policy.group(1), state.group(1))
        if bucket:
            self.assertEqual(state.group(1), bucket)
        self.assertEqual(r.headers["x-ratelimit-limit"], policy.group(2))
        self.assertEqual(r.headers["x-ratelimit-remaining"], state.group(2))
        self.assertEqual(r.headers["x-ratelimit-reset"], state.group(3))
        return int(policy.group(2)), int(policy.group(3)), int(state.group(2)), int(state.group(3))

    def test_sixty_concurrent_requests_against_twenty_give_exactly_twenty(self):
        tenant = self.new_tenant()
        token = self.owner_login(tenant)["access_token"]
        self.limited(tenant, principal=[20, 60])
        results = [None] * 60
        start = threading.Barrier(60)

        def one(i):
            start.wait()
            results[i] = self.call("GET", "/v1/users/me", token=token)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(60)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        statuses = [r.status for r in results]
        self.assertEqual(statuses.count(200), 20, statuses)
        self.assertEqual(statuses.count(429), 40, statuses)
        for r in results:
            limit, window, remaining, reset = self.assertRateHeaders(r, "principal")
            self.assertEqual((limit, window), (20, 60))
            if r.status == 429:
                self.assertProblem(r, 429, "rate-limited")
                self.assertEqual(remaining, 0)
                # Retry-After is when one request fits again: 60/20 = 3 s, never earlier.
                self.assertEqual(int(r.headers["retry-after"]), reset)
                self.assertGreaterEqual(reset, 1)
                self.assertLessEqual(reset, 3)
        remainings = sorted(int(r.headers["x-ratelimit-remaining"]) for r in results
                            if r.status == 200)
        self.assertEqual(remainings, list(range(20)))
        # Refusals are counted, and audited once per key a minute with their count.
        metrics = self.call("GET", "/metrics")
        text = metrics.body.decode() if isinstance(metrics.body, bytes) else str(metrics.body)
        self.assertRegex(text, r'troupe_rate_limited_total\{bucket="principal"\} \d+')
        r = self.admin("GET", "/v1/audit?action=rate_limit.exceeded", tenant=tenant["slug"])
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(len(r.body["data"]), 1, r.body)
        entry = r.body["data"][0]
        self.assertEqual(entry["outcome"], "denied")
        self.assertEqual(entry["resource"], {"type": "rate_limit", "id": "principal"})
        self.assertEqual(entry["actor"]["type"], "user")
        self.assertEqual(entry["changes"]["after"]["refused"], 1)

    def test_a_refused_client_may_retry_when_told(self):
        tenant = self.new_tenant()
        token = self.owner_login(tenant)["access_token"]
        self.limited(tenant, principal=[2, 4])
        self.assertEqual(self.call("GET", "/v1/users/me", token=token).status, 200)
        self.assertEqual(self.call("GET", "/v1/users/me", token=token).status, 200)
        refused = self.call("GET", "/v1/users/me", token=token)
        self.assertProblem(refused, 429, "rate-limited")
        wait = int(refused.headers["retry-after"])
        self.assertEqual(wait, 2)
        time.sleep(wait)
        self.assertEqual(self.call("GET", "/v1/users/me", token=token).status, 200)

    def test_every_v1_response_carries_the_headers(self):
        tenant = self.new_tenant()
        token = self.owner_login(tenant)["access_token"]
        for r in (self.call("GET", "/v1/users/me", token=token),
                  self.call("GET", "/v1/nope", token=token),
                  self.call("GET", "/v1/users/me", token="not-a-token", tenant=tenant["slug"])):
            self.assertRateHeaders(r)
        first = self.assertRateHeaders(self.call("GET", "/v1/users/me", token=token), "principal")
        second = self.assertRateHeaders(self.call("GET", "/v1/users/me", token=token), "principal")
        self.assertEqual(first[:2], (600, 60))
        self.assertEqual(second[2], first[2] - 1)
        # Platform routes have none.
        self.assertNotIn("ratelimit", self.call("GET", "/healthz").headers)

    def test_the_tenant_bucket_counts_everyone_and_names_itself(self):
        tenant = self.new_tenant()
        self.limited(tenant, tenant=[5, 60])
        # Three requests of the tenant's five: an owner login, a signup, a member login.
        owner = self.owner_login(tenant)["access_token"]
        member = self.login(tenant, self.signup(tenant))["access_token"]
        statuses = [self.call("GET", "/v1/users/me", token=t).status
                    for t in (owner, member, owner)]
        self.assertEqual(statuses, [200, 200, 429])
        refused = self.call("GET", "/v1/users/me", token=owner)
        self.assertProblem(refused, 429, "rate-limited")
        self.assertRateHeaders(refused, "tenant")
        # Another tenant is not affected.
        other = self.new_tenant()
        self.assertEqual(self.me(self.owner_login(other)["access_token"]).status, 200)

    def test_anonymous_requests_are_limited_per_address(self):
        tenant = self.new_tenant()
        answers = [self.try_login(tenant, new_email(), PASSWORD) for _ in range(6)]
        self.assertEqual([r.status for r in answers], [401] * 5 + [429], answers[-1].body)
        self.assertProblem(answers[-1], 429, "rate-limited")
        self.assertRateHeaders(answers[-1], "anonymous")
        self.assertGreater(int(answers[-1].headers["retry-after"]), 0)
        # The admin token is the operator's: not limited.
        for _ in range(3):
            r = self.admin("GET", "/v1/audit", tenant=tenant["slug"])
            self.assertEqual(r.status, 200)
            self.assertNotIn("ratelimit", r.headers)

    def test_an_override_applies_to_the_next_request(self):
        tenant = self.new_tenant()
        token = self.owner_login(tenant)["access_token"]
        self.assertEqual(self.assertRateHeaders(self.me(token))[0], 600)
        self.limited(tenant, principal=[1000, 60])
        self.assertEqual(self.assertRateHeaders(self.me(token))[0], 1000)


class QuotaTest(AuthMixin, ServerTestCase):
    server_args = ("--limits.anonymous=[1000,60]",) + CHEAP_ARGON2

    def test_the_monthly_quota_counts_requests_and_refuses_past_it(self):
        tenant = self.new_tenant()
        token = self.owner_login(tenant)["access_token"]  # request 1
        r = self.admin("PATCH", "/admin/v1/tenants/" + tenant["id"],
                       {"limits": {"requests_per_month": 5}})
        self.assertEqual(r.status, 200, r.body)
        statuses = [self.me(token).status for _ in range(5)]
        self.assertEqual(statuses, [200, 200, 200, 200, 429])
        refused = self.me(token)
        self.assertProblem(refused, 429, "quota-exceeded")
        # The admin token is the operator's: neither limited nor counted.
        r = self.admin("GET", "/v1/usage", tenant=tenant["slug"])
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(set(r.body), {"period", "requests", "quota", "storage_bytes"})
        self.assertEqual(r.body["period"], time.strftime("%Y-%m", time.gmtime()))
        self.assertEqual(r.body["requests"], 5)
        self.assertEqual(r.body["quota"], 5)
        self.assertGreater(r.body["storage_bytes"], 0)
        # The counts reach PostgreSQL within a second (batched writes).
        time.sleep(1.5)
        rows = psql(self.srv, "SELECT period, requests FROM usage_counters WHERE tenant_id = '%s'"
                    % tenant["id"])
        self.assertEqual(rows, ["%s|5" % r.body["period"]])
        # Raising the quota lets the next request through.
        self.admin("PATCH", "/admin/v1/tenants/" + tenant["id"],
                   {"limits": {"requests_per_month": 100}})
        self.assertEqual(self.me(token).status, 200)

    def test_usage_needs_tenant_admin(self):
        tenant = self.new_tenant()
        member = self.login(tenant, self.signup(tenant))["access_token"]
        r = self.call("GET", "/v1/usage", token=member)
        self.assertProblem(r, 403, "forbidden")
        self.assertEqual(r.body["required_permission"], "tenant:admin")
        owner = self.owner_login(tenant)["access_token"]
        r = self.call("GET", "/v1/usage", token=owner)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body["quota"], 0)
        self.assertGreaterEqual(r.body["requests"], 4)


if __name__ == "__main__":
    unittest.main()
