"""Tenant isolation (issue 6, API.md "Tenancy and authentication": "Nothing of another tenant is
ever visible: by id it is 404").

Two tenants, A and B. B gets a member, a custom role, an API key, a second session, a webhook
endpoint with a delivery, an inbound source, a waiting job, a schedule and a dashboard layout
saved through a function. Then every /v1 operation of /openapi.json is tried:

* with A's credentials (owner access token, and an API key with every catalogue permission)
  against B's ids: only 403 or 404;
* with A's credentials naming B (`X-Tenant` slug or id, or B's host): 403 `tenant-mismatch`;

and no answer carries a byte of B's data (ids, emails, names, the role, the key). Afterwards B,
seen with its own credentials, is exactly as it was.

The operations come from the OpenAPI document, so the suite grows with every module: a new
route with an id is covered the day it is documented. Give it a valid body in BODIES (so that
the answer is the lookup's 404, not a validation 400) and, if its parameter names a new kind of
object, a B object of that kind in B_OBJECTS / b_world()."""

import json
import os
import re
import unittest
import urllib.parse

from support import ServerTestCase
from test_auth import CHEAP_ARGON2, NO_ANONYMOUS_LIMIT, PASSWORD, jwt_parts, new_email
from test_rbac import CATALOGUE, PARAM_RE, RbacMixin, normalized
from webhook_receiver import poll

# Every test here makes a few hundred requests with one credential: rate limits are not under
# test (API.md's defaults are 600 per principal and 6000 per tenant a minute).
NO_LIMITS = ("--limits.principal=[1000000,60]", "--limits.tenant=[1000000,60]")

# Public routes: no credential, so nothing to mismatch (API.md: signup, login, refresh,
# mfa/verify, inbound webhooks). Taken from x-troupe-permission, so later ones count too.
PUBLIC = "public"

# A body the route would accept, by (METHOD, normalized path). With it, an answer other than
# 403/404 means the lookup itself let B's object through. Routes missing here get `{}` and may
# also answer 400 (refused before any lookup); add them as their modules land.
BODIES = {
    ("PATCH", "/v1/users/{}"): {"display_name": "Mallory"},
    ("PUT", "/v1/users/{}/roles"): {"roles": ["viewer"]},
    ("PATCH", "/v1/roles/{}"): {"permissions": ["users:read"]},
    ("POST", "/v1/roles"): {"name": "made-by-a", "permissions": ["users:read"], "inherits": []},
    ("POST", "/v1/api-keys"): {"name": "made-by-a", "permissions": ["users:read"]},
    ("POST", "/v1/auth/password"): {"current_password": PASSWORD,
                                    "new_password": "a password chosen by a"},
    ("POST", "/v1/auth/mfa/totp/activate"): {"code": "123456"},
    ("DELETE", "/v1/auth/mfa/totp"): {"code": "123456"},
    ("POST", "/v1/auth/logout"): None,
    ("POST", "/v1/auth/mfa/totp/enroll"): None,
    ("POST", "/v1/events"): {"type": "made_by_a.happened", "payload": {}},
    ("POST", "/v1/webhooks/event-types"): {"name": "made_by_a.happened"},
    ("POST", "/v1/webhooks/endpoints"): {"url": "https://made-by-a.example.invalid/hook"},
    ("PATCH", "/v1/webhooks/endpoints/{}"): {"description": "changed by a"},
    ("POST", "/v1/webhooks/endpoints/{}/rotate-secret"): None,
    ("POST", "/v1/webhooks/deliveries/{}/retry"): None,
    ("POST", "/v1/inbound/{}"): {"id": "evt_made_by_a"},
    ("POST", "/v1/jobs"): {"type": "audit.prune", "payload": {}},
    ("POST", "/v1/jobs/batch"): {"jobs": [{"type": "audit.prune"}]},
    ("POST", "/v1/jobs/{}/cancel"): None,
    ("POST", "/v1/jobs/{}/retry"): None,
    # POST /v1/functions/{name} names a function, not an object of B: A calls
    # dashboard.get_layout, which must find no layout (404) although B saved one.
    ("POST", "/v1/functions/{}"): {},
    # PUT /v1/inbound/sources/{} is left out on purpose: it creates or replaces, so with a
    # valid body A would rightly get 200 for a source of its own with B's name. With `{}` it
    # is refused (400) before anything is written, and still checked for leaks.
    # PUT /v1/schedules/{} likewise: with a valid body A would create a schedule of its own
    # named like B's; with `{}` it is refused (400), and still checked for leaks.
}

# Which of B's objects a parameter names, by the path segment before it
# (/v1/users/{id}/roles → "users"). Anything else gets B's member id.
B_OBJECTS = {"users": "member_id", "api-keys": "key_id", "sessions": "session_id",
             "roles": "role_name", "endpoints": "endpoint_id", "deliveries": "delivery_id",
             "event-types": "event_type", "sources": "source_name", "inbound": "source_name",
             "jobs": "job_id", "schedules": "schedule_name", "functions": "function_name"}


class World:
    """Tenants A and B and what each holds (filled in by IsolationMixin.b_world)."""


class IsolationMixin(RbacMixin):

    def b_world(self):
        w = World()
        # Tenant A: its owner (a session for the sweeps) and a key with every permission.
        w.a = self.new_tenant()
        w.a_owner = self.owner_token(w.a)
        r = self.call("POST", "/v1/api-keys",
                      {"name": "everything", "permissions": list(CATALOGUE)}, token=w.a_owner)
        self.assertEqual(r.status, 201, r.body)
        w.a_key, w.a_key_id = r.body["key"], r.body["id"]
        # Tenant B: a member with a display name and two sessions, a custom role, an API key.
        w.b = self.new_tenant()
        w.b_owner = self.owner_token(w.b)
        w.role_name = "bsecret-" + os.urandom(4).hex()
        w.role = self.make_role(w.b_owner, w.role_name, ["audit:read"], ["viewer"])
        w.member_name = "Beatrice " + os.urandom(4).hex()
        member = self.new_member(w.b, email=new_email("beatrice"), display_name=w.member_name)
        w.member_id, w.member_email = member["id"], member["email"]
        w.member_tokens = member["tokens"]
        w.member_tokens2 = self.login(w.b, member)
        w.session_id = jwt_parts(w.member_tokens2["access_token"])[1]["sid"]
        w.session1_id = jwt_parts(w.member_tokens["access_token"])[1]["sid"]
        r = self.set_roles(w.b_owner, w.member_id, ["member", w.role_name])
        self.assertEqual(r.status, 200, r.body)
        r = self.call("POST", "/v1/api-keys", {"name": "b-key-" + os.urandom(3).hex(),
                                               "permissions": ["users:read", "audit:read"]},
                      token=w.b_owner)
        self.assertEqual(r.status, 201, r.body)
        w.key, w.key_id, w.key_prefix = r.body["key"], r.body["id"], r.body["prefix"]
        w.b_owner_sid = jwt_parts(w.b_owner)[1]["sid"]
        # Webhooks: an endpoint with one delivery (of an event of a registered type), and an
        # inbound source.
        w.endpoint_url = "https://b-%s.example.invalid/hook" % os.urandom(4).hex()
        r = self.call("POST", "/v1/webhooks/endpoints", {"url": w.endpoint_url},
                      token=w.b_owner)
        self.assertEqual(r.status, 201, r.body)
        w.endpoint_id, w.endpoint_secret = r.body["id"], r.body["secret"]
        w.event_type = "bsecret_%s.happened" % os.urandom(4).hex()
        r = self.call("POST", "/v1/webhooks/event-types", {"name": w.event_type},
                      token=w.b_owner)
        self.assertEqual(r.status, 201, r.body)
        r = self.call("POST", "/v1/events", {"type": w.event_type, "payload": {}},
                      token=w.b_owner)
        self.assertEqual(r.status, 202, r.body)
        w.event_id = r.body["id"]
        deliveries = poll(lambda: self.call(
            "GET", "/v1/webhooks/endpoints/%s/deliveries" % w.endpoint_id,
            token=w.b_owner).body["data"])
        self.assertTrue(deliveries, "no delivery of B's event")
        w.delivery_id = deliveries[0]["id"]
        w.source_name = "bsecret_" + os.urandom(4).hex()
        r = self.call("PUT", "/v1/inbound/sources/" + w.source_name,
                      {"scheme": "github", "secret": "b-inbound-" + os.urandom(8).hex()},
                      token=w.b_owner)
        self.assertEqual(r.status, 200, r.body)
        # Jobs: a job that waits an hour (so that it is still there, unchanged, at the end), a
        # schedule, and a dashboard layout saved through a function.
        w.job_url = "https://b-%s.example.invalid/job" % os.urandom(4).hex()
        w.job_key = "bsecret-key-" + os.urandom(4).hex()
        r = self.call("POST", "/v1/jobs", {"type": "http.request", "payload": {"url": w.job_url},
                                           "delay_s": 3600, "unique_key": w.job_key},
                      token=w.b_owner)
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.body["state"], "scheduled", r.body)
        w.job_id = r.body["id"]
        w.schedule_name = "bsecret-" + os.urandom(4).hex()
        r = self.call("PUT", "/v1/schedules/" + w.schedule_name,
                      {"cron": "0 0 1 1 *", "job": {"type": "audit.prune"}}, token=w.b_owner)
        self.assertEqual(r.status, 200, r.body)
        w.function_name = "dashboard.get_layout"
        w.widget_id = "bsecret-widget-" + os.urandom(4).hex()
        r = self.call("POST", "/v1/functions/dashboard.save_layout",
                      {"layout": {"columns": 4, "widgets": [
                          {"id": w.widget_id, "x": 0, "y": 0, "w": 2, "h": 1}]}},
                      token=w.b_owner)
        self.assertEqual(r.status, 200, r.body)
        # Nothing of these may ever reach A.
        w.secrets = [w.b["id"], w.b["slug"], w.b["owner"]["id"], w.b["owner"]["email"],
                     w.member_id, w.member_email, w.member_name, w.role_name, w.key_id,
                     w.key_prefix, w.key, w.session_id, w.session1_id, w.b_owner_sid,
                     w.endpoint_id, w.endpoint_url, w.endpoint_secret, w.event_type,
                     w.event_id, w.delivery_id, w.source_name, w.job_id, w.job_url, w.job_key,
                     w.schedule_name, w.widget_id]
        w.before = self.b_state(w)
        return w

    def b_value(self, w, path, index):
        """B's value for the index-th parameter of a path template."""
        segments = path.strip("/").split("/")
        seen = -1
        for i, seg in enumerate(segments):
            if PARAM_RE.fullmatch(seg):
                seen += 1
                if seen == index:
                    before = segments[i - 1] if i > 0 else ""
                    return getattr(w, B_OBJECTS.get(before, "member_id"))
        raise AssertionError("no parameter %d in %s" % (index, path))

    def b_path(self, w, path):
        counter = iter(range(100))
        return PARAM_RE.sub(lambda m: urllib.parse.quote(self.b_value(w, path, next(counter)),
                                                         safe=""), path)

    def body_for(self, method, path):
        """(JSON body or None, whether it is a known valid body)."""
        key = (method, normalized(path))
        if key in BODIES:
            return BODIES[key], True
        if method in ("POST", "PUT", "PATCH"):
            return {}, False
        return None, True

    def b_state(self, w):
        """Everything of B its owner and member can see, for a before/after comparison."""
        def get(path, token=w.b_owner):
            r = self.call("GET", path, token=token)
            self.assertEqual(r.status, 200, (path, r.body))
            return r.body
        sessions = get("/v1/auth/sessions", token=w.member_tokens["access_token"])["data"]
        keys = get("/v1/api-keys?limit=200")["data"]
        return {
            "users": get("/v1/users?limit=200")["data"],
            "member": get("/v1/users/" + w.member_id),
            "roles": get("/v1/roles")["data"],
            "role": get("/v1/roles/" + w.role_name),
            "keys": sorted((k["id"], k["name"], tuple(k["permissions"]), k.get("expires_at"))
                           for k in keys),
            "sessions": sorted(s["id"] for s in sessions),
            "endpoints": sorted((e["id"], e["url"], e["description"], e["disabled"],
                                 json.dumps(e["events"]), e["rate_limit_per_s"])
                                for e in get("/v1/webhooks/endpoints?limit=200")["data"]),
            "event_types": sorted(t["name"] for t in
                                  get("/v1/webhooks/event-types?limit=200")["data"]
                                  if not t["builtin"]),
            "jobs": sorted((j["id"], j["type"], j["state"], j["attempt"], j["run_at"],
                            j["cancel_requested"], json.dumps(j["payload"], sort_keys=True))
                           for j in get("/v1/jobs?limit=200")["data"]),
            "schedules": get("/v1/schedules?limit=200")["data"],
            "layout": self.b_layout(w),
        }

    def b_layout(self, w):
        r = self.call("POST", "/v1/functions/dashboard.get_layout", {}, token=w.b_owner)
        self.assertEqual(r.status, 200, r.body)
        return r.body

    def assertNoLeak(self, w, r, path, what):
        """No B secret in the answer's headers or body (a problem's `instance`, which echoes
        the request path, is checked and left out)."""
        body = r.body
        if isinstance(body, dict) and "instance" in body:
            self.assertEqual(body["instance"], path.split("?")[0], (what, body))
            body = {k: v for k, v in body.items() if k != "instance"}
        if isinstance(body, bytes):
            text = body.decode("utf-8", "replace")
        else:
            text = json.dumps(body)
        text += "\n" + "\n".join("%s: %s" % kv for kv in r.headers.items())
        for s in w.secrets:
            self.assertNotIn(s.lower(), text.lower(), "%s leaks %r: %s" % (what, s, text[:600]))

    def assertBUnchanged(self, w):
        self.assertEqual(self.b_state(w), w.before)
        member = w.before["member"]
        self.assertEqual(sorted(member["roles"]), sorted(["member", w.role_name]))
        self.assertEqual(member["display_name"], w.member_name)
        # B's credentials all still work: the key, both sessions, the owner's password.
        r = self.call("GET", "/v1/users", token=w.key)
        self.assertEqual(r.status, 200, r.body)
        self.assertIn(w.member_id, [u["id"] for u in r.body["data"]])
        for tokens in (w.member_tokens, w.member_tokens2):
            r = self.me(tokens["access_token"])
            self.assertEqual(r.status, 200, r.body)
            self.assertIn("audit:read", r.body["permissions"])  # the custom role still applies
        self.assertEqual(self.call("GET", "/v1/audit", token=w.member_tokens2["access_token"])
                         .status, 200)
        self.owner_login(w.b)
        # Nothing A did succeeded in B, and B's chain is intact.
        for actor in (w.a["owner"]["id"], w.a_key_id):
            self.assertEqual(self.audit(w.b, "?outcome=success&actor_id=" + actor), [], actor)
        r = self.admin("GET", "/v1/audit/verify", tenant=w.b["slug"])
        self.assertIs(r.body["ok"], True, r.body)

    def ordered(self, ops):
        """Reads first, then changes, deletions last: if one check fails, the later ones still
        find B's objects where they were."""
        rank = {"GET": 0, "PUT": 1, "PATCH": 1, "POST": 1, "DELETE": 2}
        return sorted(ops, key=lambda op: (rank.get(op[0], 1), op[1]))


class IsolationTest(IsolationMixin, ServerTestCase):
    server_args = (NO_ANONYMOUS_LIMIT,) + NO_LIMITS + CHEAP_ARGON2

    def test_b_ids_are_not_found_with_a_credentials(self):
        w = self.b_world()
        ops, _ = self.openapi_operations()
        with_ids = [op for op in ops if PARAM_RE.search(op[1])]
        self.assertTrue(any(normalized(p) == "/v1/users/{}" for _, p, _ in with_ids),
                        "GET /v1/users/{id} is not in /openapi.json")
        unknown_bodies = set()
        tried = 0
        for method, template, op in self.ordered(with_ids):
            body, known = self.body_for(method, template)
            if not known:
                unknown_bodies.add("%s %s" % (method, template))
            path = self.b_path(w, template)
            paths = [path] + ([path + "?force=true"] if method == "DELETE" else [])
            public = op.get("x-troupe-permission") == PUBLIC
            allowed = {403, 404} | ({400} if not known else set()) | ({401} if public else set())
            for p in paths:
                for cred_name, cred in (("A's owner token", w.a_owner), ("A's API key", w.a_key)):
                    what = "%s %s with %s" % (method, p, cred_name)
                    with self.subTest(what):
                        r = self.call(method, p, body, token=cred)
                        tried += 1
                        self.assertIn(r.status, allowed, "%s → %d %r" % (what, r.status, r.body))
                        if r.status == 400:
                            self.assertEqual(r.body.get("code"), "validation-failed", r.body)
                        self.assertNoLeak(w, r, p, what)
        if unknown_bodies:
            print("isolation: routes tried with {} (no valid body in BODIES yet): %s"
                  % ", ".join(sorted(unknown_bodies)))
        print("isolation: %d requests with A's credentials against B's ids" % tried)
        self.assertBUnchanged(w)
        # A's own credentials were not hurt either.
        self.assertEqual(self.me(w.a_owner).status, 200)
        self.assertEqual(self.call("GET", "/v1/users", token=w.a_key).status, 200)

    def test_a_credentials_naming_b_are_tenant_mismatch(self):
        w = self.b_world()
        ops, _ = self.openapi_operations()
        guarded = [op for op in ops if op[2].get("x-troupe-permission") != PUBLIC]
        self.assertTrue(guarded)
        host = "%s.localhost:%d" % (w.b["slug"], self.srv.port)
        naming = (("A's owner token, X-Tenant: B's slug", w.a_owner, {"X-Tenant": w.b["slug"]}),
                  ("A's owner token, X-Tenant: B's id", w.a_owner, {"X-Tenant": w.b["id"]}),
                  ("A's owner token, B's host", w.a_owner, {"Host": host}),
                  ("A's API key, X-Tenant: B's slug", w.a_key, {"X-Tenant": w.b["slug"]}))
        tried = 0
        for method, template, _ in self.ordered(guarded):
            body, _ = self.body_for(method, template)
            path = self.b_path(w, template)
            for cred_name, cred, headers in naming:
                what = "%s %s with %s" % (method, path, cred_name)
                with self.subTest(what):
                    r = self.call(method, path, body, token=cred, headers=headers)
                    tried += 1
                    self.assertEqual(r.status, 403, "%s → %d %r" % (what, r.status, r.body))
                    self.assertProblem(r, 403, "tenant-mismatch")
                    self.assertNoLeak(w, r, path, what)
        print("isolation: %d requests with A's credentials naming B" % tried)
        self.assertBUnchanged(w)
        # Nothing ran in A either (logout, password change, key creation with A's token).
        self.assertEqual(self.me(w.a_owner).status, 200)
        self.assertEqual(self.call("GET", "/v1/users", token=w.a_key).status, 200)
        r = self.call("GET", "/v1/roles", token=w.a_owner)
        self.assertNotIn("made-by-a", [x["name"] for x in r.body["data"]])
        self.owner_login(w.a)

    def test_what_a_lists_holds_nothing_of_b(self):
        """Every /v1 read without an id, with A's credentials, in A: nothing of B, also when
        a query filter names B's ids."""
        w = self.b_world()
        ops, doc = self.openapi_operations()
        params = doc.get("components", {}).get("parameters", {})
        reads = [op for op in ops if op[0] == "GET" and not PARAM_RE.search(op[1])
                 and op[2].get("x-troupe-permission") != PUBLIC]
        self.assertTrue(any(normalized(p) == "/v1/users" for _, p, _ in reads))
        for _, template, op in reads:
            queries = [""]
            filters = []
            for prm in op.get("parameters", []):
                if "$ref" in prm:
                    prm = params.get(prm["$ref"].rsplit("/", 1)[-1], {})
                if prm.get("in") == "query" and re.search(r"(^|_)id$", prm.get("name", "")):
                    filters.append(prm["name"] + "=" + w.member_id)
            if filters:
                queries.append("?" + "&".join(filters))
            for q in queries:
                for cred_name, cred in (("A's owner token", w.a_owner), ("A's API key", w.a_key)):
                    what = "GET %s%s with %s" % (template, q, cred_name)
                    with self.subTest(what):
                        r = self.call("GET", template + q, token=cred)
                        self.assertLess(r.status, 500, (what, r.body))
                        self.assertNoLeak(w, r, template + q, what)
                        if r.status == 200 and isinstance(r.body, dict) and q:
                            self.assertEqual(r.body.get("data"), [], (what, r.body))
        # The users A sees are A's own; B's role is not one of A's.
        r = self.call("GET", "/v1/users", token=w.a_owner)
        self.assertEqual([u["id"] for u in r.body["data"]], [w.a["owner"]["id"]])
        self.assertProblem(self.call("GET", "/v1/roles/" + w.role_name, token=w.a_owner), 404,
                           "not-found")
        self.assertBUnchanged(w)


if __name__ == "__main__":
    unittest.main()
