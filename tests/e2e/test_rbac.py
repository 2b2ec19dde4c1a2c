"""Users and RBAC end to end (API.md "Users and RBAC"; docs/rbac.md): the users routes with
paging, self-service display names, role assignment that applies on the very next request,
custom roles with inheritance, cycles and built-in names refused, escalation guards, the last
owner, deletion as erasure (the audit log keeps a pseudonymous id and still verifies), the audit
trail of every role and assignment change, and the permission every /v1 route declares in
/openapi.json.

Each test creates its own tenant through the platform API; one server for the class. Password
hashing runs with cheap argon2 parameters."""

import json
import os
import re
import time
import unittest
import urllib.parse

from support import UUID7_RE, ServerTestCase
from test_auth import (CHEAP_ARGON2, NO_ANONYMOUS_LIMIT, PASSWORD, TS_RE, USER_KEYS, AuthMixin,
                       new_email)

# API.md "Users and RBAC".
CATALOGUE = ("users:read", "users:write", "roles:read", "roles:write", "records:read",
             "records:write", "collections:write", "events:publish", "webhooks:read",
             "webhooks:write", "jobs:read", "jobs:write", "functions:invoke", "audit:read",
             "api_keys:write", "tenant:admin")
BUILTIN_ROLES = ("owner", "admin", "member", "viewer")
VIEWER_READS = ("users:read", "roles:read", "records:read", "webhooks:read", "jobs:read")
ROLE_KEYS = {"name", "permissions", "inherits", "builtin", "created_at", "updated_at"}
UNKNOWN_ID = "0190a3c4-0000-7000-8000-000000000000"
DENIED_S = 2.0  # permission.denied is written without holding up the 403 (docs/auth.md)
HTTP_METHODS = ("get", "put", "post", "patch", "delete")
PARAM_RE = re.compile(r"\{[^}/]+\}")


def normalized(path):
    """The path template with every parameter written `{}`, so names do not matter."""
    return PARAM_RE.sub("{}", path)


def expected_permission(method, path):
    """The requirement API.md's rule gives a /v1 route, or None where the rule says nothing
    (a module the contract does not cover yet)."""
    p = normalized(path)
    if p in ("/v1/auth/signup", "/v1/auth/login", "/v1/auth/refresh", "/v1/auth/mfa/verify"):
        return "public"
    if p == "/v1/users/me" or p in ("/v1/auth/logout", "/v1/auth/password") \
            or p.startswith("/v1/auth/sessions") or p.startswith("/v1/auth/mfa/totp"):
        return "self"
    if method == "PATCH" and p == "/v1/users/{}":
        return "self|users:write"
    if p == "/v1/users/{}/roles":
        return "roles:write"
    if p.startswith("/v1/api-keys"):
        return "api_keys:write"
    if p.startswith("/v1/audit"):
        return "audit:read"
    if p == "/v1/events":
        return "events:publish"
    if p.startswith("/v1/functions"):
        return "functions:invoke"
    if p == "/v1/usage" or p.startswith("/v1/inbound/sources"):
        return "tenant:admin"
    if p == "/v1/inbound/events":
        return "webhooks:read" if method == "GET" else "webhooks:write"
    if p == "/v1/inbound/{}":
        return "public"
    for prefix, module in (("/v1/users", "users"), ("/v1/roles", "roles"),
                           ("/v1/webhooks", "webhooks"), ("/v1/jobs", "jobs"),
                           ("/v1/schedules", "jobs")):
        if p == prefix or p.startswith(prefix + "/"):
            return module + (":read" if method == "GET" else ":write")
    return None


class RbacMixin(AuthMixin):
    """AuthMixin plus the users and roles routes."""

    def owner_token(self, tenant):
        return self.owner_login(tenant)["access_token"]

    def new_member(self, tenant, **extra):
        """A signed-up user (role member) with a logged-in session: the user dict plus
        "token" (access token) and "tokens" (the whole login answer)."""
        user = self.signup(tenant, **extra)
        tokens = self.login(tenant, user)
        user["tokens"] = tokens
        user["token"] = tokens["access_token"]
        return user

    def set_roles(self, token, user_id, roles):
        return self.call("PUT", "/v1/users/%s/roles" % user_id, {"roles": roles}, token=token)

    def grant(self, token, user_id, roles):
        r = self.set_roles(token, user_id, roles)
        self.assertEqual(r.status, 200, r.body)
        return r.body

    def create_role(self, token, name, permissions, inherits=None):
        body = {"name": name, "permissions": permissions, "inherits": inherits or []}
        return self.call("POST", "/v1/roles", body, token=token)

    def make_role(self, token, name, permissions, inherits=None):
        r = self.create_role(token, name, permissions, inherits)
        self.assertEqual(r.status, 201, r.body)
        return r.body

    def patch_role(self, token, name, body):
        return self.call("PATCH", "/v1/roles/" + name, body, token=token)

    def get_user(self, token, user_id):
        return self.call("GET", "/v1/users/" + user_id, token=token)

    def new_admin(self, tenant, owner):
        """A member promoted to admin by the owner."""
        user = self.new_member(tenant)
        self.grant(owner, user["id"], ["admin"])
        return user

    def openapi_operations(self):
        """[(METHOD, path template, operation object)] of every operation under /v1/."""
        r = self.call("GET", "/openapi.json")
        self.assertEqual(r.status, 200, r.body)
        ops = []
        for path, item in sorted(r.body["paths"].items()):
            if not path.startswith("/v1/"):
                continue
            for method in HTTP_METHODS:
                if method in item:
                    ops.append((method.upper(), path, item[method]))
        self.assertTrue(ops, "no /v1 operation in /openapi.json")
        return ops, r.body

    def wait_for_audit(self, tenant, query, predicate=lambda entries: bool(entries),
                       timeout=DENIED_S):
        deadline = time.monotonic() + timeout
        while True:
            entries = self.audit(tenant, query)
            if predicate(entries) or time.monotonic() >= deadline:
                return entries
            time.sleep(0.05)

    def assertUser(self, body, user_id=None):
        self.assertEqual(set(body), USER_KEYS, body)
        self.assertRegex(body["id"], UUID7_RE)
        self.assertRegex(body["created_at"], TS_RE)
        if user_id is not None:
            self.assertEqual(body["id"], user_id)

    def assertRole(self, body, name, permissions, inherits, builtin=False):
        self.assertEqual(set(body), ROLE_KEYS, body)
        self.assertEqual(body["name"], name)
        self.assertEqual(sorted(body["permissions"]), sorted(permissions), body)
        self.assertEqual(sorted(body["inherits"]), sorted(inherits), body)
        self.assertIs(body["builtin"], builtin)
        if builtin:
            self.assertIsNone(body["created_at"])
            self.assertIsNone(body["updated_at"])
        else:
            self.assertRegex(body["created_at"], TS_RE)
            self.assertRegex(body["updated_at"], TS_RE)

    def assertPointer(self, r, pointer):
        """400 validation-failed whose errors name exactly this pointer (among others)."""
        self.assertPointers(r, pointer)


class RbacTest(RbacMixin, ServerTestCase):
    server_args = (NO_ANONYMOUS_LIMIT,) + CHEAP_ARGON2

    # -- users ---------------------------------------------------------------------------

    def test_members_list_users_page_by_page(self):
        tenant = self.new_tenant()
        one = self.new_member(tenant, display_name="One")
        two = self.signup(tenant)
        everyone = [tenant["owner"]["id"], one["id"], two["id"]]
        r = self.call("GET", "/v1/users", token=one["token"])  # a member has users:read
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(set(r.body), {"data", "next_cursor"})
        self.assertIsNone(r.body["next_cursor"])
        listed = r.body["data"]
        self.assertEqual([u["id"] for u in listed], sorted(everyone))  # by id
        for u in listed:
            self.assertUser(u)
        by_id = {u["id"]: u for u in listed}
        self.assertEqual(by_id[tenant["owner"]["id"]]["roles"], ["owner"])
        self.assertEqual(by_id[tenant["owner"]["id"]]["email"], tenant["owner"]["email"])
        self.assertEqual(by_id[one["id"]]["roles"], ["member"])
        self.assertEqual(by_id[one["id"]]["display_name"], "One")
        self.assertNotIn(PASSWORD, json.dumps(r.body))
        # limit=1: one user a page, each page's cursor leads to the next.
        seen, cursor, pages = [], None, 0
        while True:
            query = "?limit=1" + ("&cursor=" + urllib.parse.quote(cursor) if cursor else "")
            r = self.call("GET", "/v1/users" + query, token=one["token"])
            self.assertEqual(r.status, 200, r.body)
            self.assertLessEqual(len(r.body["data"]), 1, r.body)
            seen += [u["id"] for u in r.body["data"]]
            pages += 1
            cursor = r.body["next_cursor"]
            if cursor is None:
                break
            self.assertIsInstance(cursor, str)
            self.assertLessEqual(pages, 4, "paging does not end")
        self.assertEqual(seen, sorted(everyone))
        r = self.call("GET", "/v1/users?limit=2", token=one["token"])
        self.assertEqual([u["id"] for u in r.body["data"]], sorted(everyone)[:2])
        self.assertIsNotNone(r.body["next_cursor"])
        for bad in ("?limit=0", "?limit=201", "?limit=many", "?cursor=not-a-cursor"):
            r = self.call("GET", "/v1/users" + bad, token=one["token"])
            self.assertEqual(r.status, 400, (bad, r.body))

    def test_users_are_read_by_id_and_unknown_ids_are_not_found(self):
        tenant = self.new_tenant()
        member = self.new_member(tenant, display_name="Reader")
        owner_id = tenant["owner"]["id"]
        r = self.get_user(member["token"], owner_id)
        self.assertEqual(r.status, 200, r.body)
        self.assertUser(r.body, owner_id)
        self.assertEqual((r.body["email"], r.body["roles"], r.body["mfa_enabled"]),
                         (tenant["owner"]["email"], ["owner"], False))
        self.assertNotIn("permissions", r.body)
        r = self.get_user(member["token"], member["id"])
        self.assertEqual((r.body["display_name"], r.body["roles"]), ("Reader", ["member"]))
        other = self.new_tenant()
        for missing in (UNKNOWN_ID, "not-a-uuid", other["owner"]["id"]):
            self.assertProblem(self.get_user(member["token"], missing), 404, "not-found")

    def test_reading_users_needs_users_read(self):
        tenant = self.new_tenant()
        owner = self.owner_token(tenant)
        viewer = self.new_member(tenant)
        self.grant(owner, viewer["id"], ["viewer"])
        r = self.call("GET", "/v1/users", token=viewer["token"])
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.get_user(viewer["token"], tenant["owner"]["id"]).status, 200)
        self.assertForbidden(self.call("GET", "/v1/audit", token=viewer["token"]), "audit:read")
        # A user whose only role grants no users:read reads no users (but still sees itself).
        self.make_role(owner, "auditors-only", ["audit:read"])
        blind = self.new_member(tenant)
        self.grant(owner, blind["id"], ["auditors-only"])
        self.assertForbidden(self.call("GET", "/v1/users", token=blind["token"]), "users:read")
        self.assertForbidden(self.get_user(blind["token"], tenant["owner"]["id"]), "users:read")
        self.assertEqual(self.call("GET", "/v1/audit", token=blind["token"]).status, 200)
        r = self.me(blind["token"])
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body["roles"], ["auditors-only"])
        self.assertNotIn("users:read", r.body["permissions"])
        # An API key with users:read lists users; one without does not.
        r = self.call("POST", "/v1/api-keys", {"name": "reader", "permissions": ["users:read"]},
                      token=owner)
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(self.call("GET", "/v1/users", token=r.body["key"]).status, 200)
        r = self.call("POST", "/v1/api-keys", {"name": "audit", "permissions": ["audit:read"]},
                      token=owner)
        self.assertEqual(r.status, 201, r.body)
        self.assertForbidden(self.call("GET", "/v1/users", token=r.body["key"]), "users:read")

    def test_display_name_is_changed_by_oneself_or_with_users_write(self):
        tenant = self.new_tenant()
        owner = self.owner_token(tenant)
        member = self.new_member(tenant, display_name="Before")
        other = self.new_member(tenant, display_name="Other")
        path = "/v1/users/" + member["id"]
        # Oneself, as a member (no users:write).
        r = self.call("PATCH", path, {"display_name": "After"}, token=member["token"])
        self.assertEqual(r.status, 200, r.body)
        self.assertUser(r.body, member["id"])
        self.assertEqual((r.body["display_name"], r.body["roles"]), ("After", ["member"]))
        self.assertEqual(self.me(member["token"]).body["display_name"], "After")
        # Another user, as a member: users:write.
        r = self.call("PATCH", "/v1/users/" + other["id"], {"display_name": "Hijacked"},
                      token=member["token"])
        self.assertForbidden(r, "users:write")
        r = self.call("PATCH", "/v1/users/" + tenant["owner"]["id"], {"display_name": "Hijacked"},
                      token=member["token"])
        self.assertForbidden(r, "users:write")
        self.assertEqual(self.get_user(owner, other["id"]).body["display_name"], "Other")
        denied = self.wait_for_audit(tenant, "?action=permission.denied&actor_id=" + member["id"])
        self.assertTrue(denied, "no permission.denied entry for the refused change")
        self.assertEqual({e["outcome"] for e in denied}, {"denied"})
        # The owner changes anyone; null clears.
        r = self.call("PATCH", "/v1/users/" + other["id"], {"display_name": "Renamed"},
                      token=owner)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body["display_name"], "Renamed")
        r = self.call("PATCH", path, {"display_name": None}, token=owner)
        self.assertEqual(r.status, 200, r.body)
        self.assertIsNone(r.body["display_name"])
        self.assertIsNone(self.get_user(owner, member["id"]).body["display_name"])
        r = self.call("PATCH", path, {"display_name": "x" * 200}, token=member["token"])
        self.assertEqual(r.status, 200, r.body)
        # Validation: bounds, type, unknown fields (no roles or email through PATCH).
        for body, pointer in (({"display_name": ""}, "/display_name"),
                              ({"display_name": "x" * 201}, "/display_name"),
                              ({"display_name": 42}, "/display_name"),
                              ({"display_name": "Ok", "roles": ["owner"]}, "/roles"),
                              ({"email": "new@example.com"}, "/email")):
            r = self.call("PATCH", path, body, token=member["token"])
            self.assertPointer(r, pointer)
        self.assertEqual(self.me(member["token"]).body["roles"], ["member"])
        self.assertProblem(self.call("PATCH", "/v1/users/" + UNKNOWN_ID, {"display_name": "X"},
                                     token=owner), 404, "not-found")
        # Audited as user.updated with who did it.
        entries = self.audit(tenant, "?action=user.updated&resource_id=" + member["id"])
        actors = [e["actor"] for e in entries if e["outcome"] == "success"]
        self.assertIn({"type": "user", "id": member["id"]}, actors)
        self.assertIn({"type": "user", "id": tenant["owner"]["id"]}, actors)
        for e in entries:
            self.assertEqual(e["resource"], {"type": "user", "id": member["id"]})

    # -- role assignment -------------------------------------------------------------------

    def test_assigned_roles_apply_on_the_very_next_request(self):
        tenant = self.new_tenant()
        owner = self.owner_token(tenant)
        member = self.new_member(tenant)
        self.assertForbidden(self.call("GET", "/v1/audit", token=member["token"]), "audit:read")
        r = self.set_roles(owner, member["id"], ["admin"])
        self.assertEqual(r.status, 200, r.body)
        self.assertUser(r.body, member["id"])
        self.assertEqual(r.body["roles"], ["admin"])
        # No wait: the member's very next request has admin's permissions.
        r = self.me(member["token"])
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body["roles"], ["admin"])
        perms = set(r.body["permissions"])
        self.assertTrue(set(CATALOGUE) - {"tenant:admin"} <= perms, perms)
        self.assertNotIn("tenant:admin", perms)
        self.assertNotIn("*", perms)
        self.assertEqual(self.call("GET", "/v1/audit", token=member["token"]).status, 200)
        self.assertEqual(self.get_user(owner, member["id"]).body["roles"], ["admin"])
        # Back to member: the very next request has lost it.
        self.grant(owner, member["id"], ["member"])
        self.assertForbidden(self.call("GET", "/v1/audit", token=member["token"]), "audit:read")
        self.assertEqual(self.me(member["token"]).body["roles"], ["member"])
        # Several roles: the union.
        r = self.set_roles(owner, member["id"], ["member", "viewer"])
        self.assertEqual(sorted(r.body["roles"]), ["member", "viewer"])
        perms = set(self.me(member["token"]).body["permissions"])
        self.assertIn("roles:read", perms)  # viewer's
        self.assertIn("events:publish", perms)  # member's
        self.assertEqual(self.call("GET", "/v1/roles", token=member["token"]).status, 200)

    def test_role_assignment_is_validated(self):
        tenant = self.new_tenant()
        owner = self.owner_token(tenant)
        member = self.new_member(tenant)
        self.assertPointer(self.set_roles(owner, member["id"], ["nope"]), "/roles/0")
        self.assertPointer(self.set_roles(owner, member["id"], ["member", "nope"]), "/roles/1")
        self.assertPointer(self.set_roles(owner, member["id"], []), "/roles")
        extra = ["r%02d" % i for i in range(17)]
        for name in extra:
            self.make_role(owner, name, ["users:read"])
        self.assertPointer(self.set_roles(owner, member["id"], extra), "/roles")
        self.assertEqual(self.set_roles(owner, member["id"], extra[:16]).status, 200)
        r = self.call("PUT", "/v1/users/%s/roles" % member["id"], {"roles": "admin"}, token=owner)
        self.assertPointer(r, "/roles")
        r = self.call("PUT", "/v1/users/%s/roles" % member["id"],
                      {"roles": ["member"], "permissions": ["*"]}, token=owner)
        self.assertPointer(r, "/permissions")
        self.assertProblem(self.set_roles(owner, UNKNOWN_ID, ["member"]), 404, "not-found")
        self.assertProblem(self.set_roles(owner, "not-a-uuid", ["member"]), 404, "not-found")
        # Nothing of the refused ones was applied.
        self.assertEqual(sorted(self.get_user(owner, member["id"]).body["roles"]),
                         sorted(extra[:16]))

    def test_nobody_assigns_a_permission_they_lack(self):
        tenant = self.new_tenant()
        owner = self.owner_token(tenant)
        admin = self.new_admin(tenant, owner)
        member = self.new_member(tenant)
        # A member cannot assign roles at all.
        self.assertForbidden(self.set_roles(member["token"], member["id"], ["admin"]),
                             "roles:write")
        # An admin lacks owner's "*" and tenant:admin.
        self.assertForbidden(self.set_roles(admin["token"], member["id"], ["owner"]), "*")
        self.assertForbidden(self.set_roles(admin["token"], admin["id"], ["owner"]), "*")
        self.make_role(owner, "boss", ["tenant:admin"])
        self.assertForbidden(self.set_roles(admin["token"], member["id"], ["viewer", "boss"]),
                             "tenant:admin")
        self.assertEqual(self.get_user(owner, member["id"]).body["roles"], ["member"])
        self.assertEqual(self.me(admin["token"]).body["roles"], ["admin"])
        # What the admin has, it may grant; removing needs nothing.
        self.assertEqual(self.set_roles(admin["token"], member["id"], ["admin"]).status, 200)
        self.assertEqual(self.set_roles(admin["token"], member["id"], ["viewer"]).status, 200)
        # API keys: a subset of the caller's permissions (issue 5).
        r = self.call("POST", "/v1/api-keys", {"name": "k", "permissions": ["tenant:admin"]},
                      token=admin["token"])
        self.assertProblem(r, 403, "forbidden")

    def test_an_admin_grants_every_built_in_role_but_owner(self):
        # admin holds every catalogue permission but tenant:admin, so member's `records:*` is
        # within its reach (records:read and records:write are all the records permissions).
        tenant = self.new_tenant()
        owner = self.owner_token(tenant)
        admin = self.new_admin(tenant, owner)
        member = self.new_member(tenant)
        for roles in (["viewer"], ["member"], ["admin"], ["member", "viewer"]):
            r = self.set_roles(admin["token"], member["id"], roles)
            self.assertEqual(r.status, 200, (roles, r.body))
            self.assertEqual(sorted(r.body["roles"]), sorted(roles))
        self.assertForbidden(self.set_roles(admin["token"], member["id"], ["owner"]), "*")
        # The same for a custom role: admin may create one inheriting member.
        r = self.create_role(admin["token"], "member-plus", ["audit:read"], ["member"])
        self.assertEqual(r.status, 201, r.body)

    def test_the_last_owner_cannot_be_demoted_or_deleted(self):
        tenant = self.new_tenant()
        first_id = tenant["owner"]["id"]
        first = self.owner_token(tenant)
        self.assertProblem(self.set_roles(first, first_id, ["admin"]), 409, "conflict")
        self.assertProblem(self.call("DELETE", "/v1/users/" + first_id, token=first), 409,
                           "conflict")
        self.assertEqual(self.me(first).body["roles"], ["owner"])
        # With a second owner, the first may step down.
        second = self.new_member(tenant)
        self.assertEqual(self.grant(first, second["id"], ["owner"])["roles"], ["owner"])
        r = self.set_roles(first, first_id, ["admin"])
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body["roles"], ["admin"])
        self.assertNotIn("tenant:admin", self.me(first).body["permissions"])
        # Now the second is the last owner: neither it nor the (now admin) first removes it.
        self.assertProblem(self.set_roles(second["token"], second["id"], ["admin"]), 409,
                           "conflict")
        self.assertProblem(self.set_roles(first, second["id"], ["admin"]), 409, "conflict")
        self.assertProblem(self.call("DELETE", "/v1/users/" + second["id"],
                                     token=second["token"]), 409, "conflict")
        self.assertProblem(self.call("DELETE", "/v1/users/" + second["id"], token=first), 409,
                           "conflict")
        self.assertEqual(self.get_user(first, second["id"]).body["roles"], ["owner"])
        self.assertEqual(self.me(second["token"]).body["roles"], ["owner"])
        # Owner plus another role still counts as an owner.
        self.assertEqual(self.set_roles(second["token"], second["id"],
                                        ["owner", "member"]).status, 200)

    # -- custom roles ----------------------------------------------------------------------

    def test_a_custom_role_from_creation_to_change(self):
        tenant = self.new_tenant()
        owner = self.owner_token(tenant)
        member = self.new_member(tenant)
        r = self.create_role(owner, "auditor", ["audit:read"], ["viewer"])
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.headers.get("location"), "/v1/roles/auditor")
        created = r.body
        self.assertRole(created, "auditor", ["audit:read"], ["viewer"])
        r = self.call("GET", "/v1/roles/auditor", token=owner)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body, created)
        self.assertForbidden(self.call("GET", "/v1/audit", token=member["token"]), "audit:read")
        # Assigned: the user reads the audit log at once, and has viewer's reads by inheritance.
        r = self.set_roles(owner, member["id"], ["auditor"])
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body["roles"], ["auditor"])
        self.assertEqual(self.call("GET", "/v1/audit", token=member["token"]).status, 200)
        perms = set(self.me(member["token"]).body["permissions"])
        self.assertTrue({"audit:read"} | set(VIEWER_READS) <= perms, perms)
        self.assertNotIn("events:publish", perms)  # member's, no longer held
        self.assertEqual(self.call("GET", "/v1/roles", token=member["token"]).status, 200)
        # The role changes: audit:read gone, and the very next request is refused.
        time.sleep(0.01)
        r = self.patch_role(owner, "auditor", {"permissions": ["users:read"]})
        self.assertEqual(r.status, 200, r.body)
        self.assertRole(r.body, "auditor", ["users:read"], ["viewer"])
        self.assertEqual(r.body["created_at"], created["created_at"])
        self.assertGreaterEqual(r.body["updated_at"], created["updated_at"])
        self.assertForbidden(self.call("GET", "/v1/audit", token=member["token"]), "audit:read")
        self.assertNotIn("audit:read", self.me(member["token"]).body["permissions"])
        # Inheritance changes apply at once too.
        r = self.patch_role(owner, "auditor", {"inherits": []})
        self.assertEqual(r.status, 200, r.body)
        self.assertRole(r.body, "auditor", ["users:read"], [])
        self.assertForbidden(self.call("GET", "/v1/roles", token=member["token"]), "roles:read")
        r = self.patch_role(owner, "auditor", {"permissions": ["users:read"],
                                               "inherits": ["admin"]})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.call("GET", "/v1/audit", token=member["token"]).status, 200)
        self.assertProblem(self.patch_role(owner, "ghost", {"permissions": ["users:read"]}), 404,
                           "not-found")
        self.assertProblem(self.call("GET", "/v1/roles/ghost", token=owner), 404, "not-found")

    def test_roles_are_listed_built_in_first_then_by_name(self):
        tenant = self.new_tenant()
        owner = self.owner_token(tenant)
        for name in ("zulu", "alpha", "mike"):
            self.make_role(owner, name, ["users:read"])
        r = self.call("GET", "/v1/roles", token=owner)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(set(r.body), {"data", "next_cursor"})
        self.assertIsNone(r.body["next_cursor"])
        roles = r.body["data"]
        names = [x["name"] for x in roles]
        self.assertEqual(set(names[:4]), set(BUILTIN_ROLES), names)
        self.assertEqual(names[4:], ["alpha", "mike", "zulu"])
        by_name = {x["name"]: x for x in roles}
        for name in BUILTIN_ROLES:
            self.assertEqual(set(by_name[name]), ROLE_KEYS, by_name[name])
            self.assertIs(by_name[name]["builtin"], True)
            self.assertIsNone(by_name[name]["created_at"])
            self.assertIsNone(by_name[name]["updated_at"])
            self.assertEqual(by_name[name]["inherits"], [])
        self.assertEqual(by_name["owner"]["permissions"], ["*"])
        admin = set(by_name["admin"]["permissions"])
        self.assertNotIn("tenant:admin", admin)
        self.assertNotIn("*", admin)
        self.assertTrue(set(CATALOGUE) - {"tenant:admin"} <= admin, admin)
        member = set(by_name["member"]["permissions"])
        self.assertTrue({"events:publish", "jobs:read", "functions:invoke", "users:read"}
                        <= member, member)
        self.assertTrue("records:*" in member or {"records:read", "records:write"} <= member)
        viewer = set(by_name["viewer"]["permissions"])
        self.assertTrue(set(VIEWER_READS) <= viewer, viewer)
        self.assertNotIn("audit:read", viewer)
        self.assertFalse([p for p in viewer if not p.endswith(":read")], viewer)
        for x in roles[4:]:
            self.assertRole(x, x["name"], ["users:read"], [])
        r = self.call("GET", "/v1/roles/owner", token=owner)
        self.assertEqual(r.status, 200, r.body)
        self.assertRole(r.body, "owner", ["*"], [], builtin=True)
        # A member has no roles:read; a viewer has.
        m = self.new_member(tenant)
        self.assertForbidden(self.call("GET", "/v1/roles", token=m["token"]), "roles:read")
        self.assertForbidden(self.call("GET", "/v1/roles/alpha", token=m["token"]), "roles:read")
        self.grant(owner, m["id"], ["viewer"])
        self.assertEqual(self.call("GET", "/v1/roles/alpha", token=m["token"]).status, 200)

    def test_built_in_roles_are_immutable(self):
        tenant = self.new_tenant()
        owner = self.owner_token(tenant)
        for name in BUILTIN_ROLES:
            r = self.create_role(owner, name, ["users:read"])
            self.assertProblem(r, 409, "conflict")
            r = self.patch_role(owner, name, {"permissions": ["users:read"]})
            self.assertProblem(r, 409, "conflict")
            r = self.call("DELETE", "/v1/roles/" + name, token=owner)
            self.assertProblem(r, 409, "conflict")
            r = self.call("DELETE", "/v1/roles/%s?force=true" % name, token=owner)
            self.assertProblem(r, 409, "conflict")
        r = self.call("GET", "/v1/roles/member", token=owner)
        self.assertNotIn("audit:read", r.body["permissions"])
        self.assertTrue({"events:publish", "users:read"} <= set(r.body["permissions"]))
        self.assertEqual(self.call("GET", "/v1/roles/owner", token=owner).body["permissions"],
                         ["*"])
        # A taken custom name is a conflict too.
        self.make_role(owner, "ops", ["users:read"])
        self.assertProblem(self.create_role(owner, "ops", ["audit:read"]), 409, "conflict")
        self.assertEqual(self.call("GET", "/v1/roles/ops", token=owner).body["permissions"],
                         ["users:read"])

    def test_custom_roles_are_validated(self):
        tenant = self.new_tenant()
        owner = self.owner_token(tenant)
        self.assertPointer(self.create_role(owner, "x1", ["nope:read"]), "/permissions/0")
        self.assertPointer(self.create_role(owner, "x1", ["users:read", "users:fly"]),
                           "/permissions/1")
        self.assertPointer(self.create_role(owner, "x1", ["users:read"], ["ghost"]),
                           "/inherits/0")
        self.assertPointer(self.create_role(owner, "x1", ["users:read"], ["viewer", "ghost"]),
                           "/inherits/1")
        for bad in ("Auditor", "1abc", "", "a" * 64, "a b", "-a", "a.b"):
            self.assertPointer(self.create_role(owner, bad, ["users:read"]), "/name")
        r = self.call("POST", "/v1/roles", {"name": "x1", "permissions": ["users:read"],
                                            "colour": "red"}, token=owner)
        self.assertPointer(r, "/colour")
        r = self.call("POST", "/v1/roles", {"permissions": ["users:read"]}, token=owner)
        self.assertPointer(r, "/name")
        r = self.call("POST", "/v1/roles", {"name": "x1", "permissions": "users:read"},
                      token=owner)
        self.assertPointer(r, "/permissions")
        self.assertProblem(self.call("GET", "/v1/roles/x1", token=owner), 404, "not-found")
        self.make_role(owner, "a" * 63, ["users:read"])  # the longest name
        self.make_role(owner, "a1_-z", ["users:read"])
        # Cycles: a inherits b; b may not inherit a, nor c that inherits a, nor itself.
        self.make_role(owner, "b", ["users:read"])
        self.make_role(owner, "a", ["audit:read"], ["b"])
        self.make_role(owner, "c", ["roles:read"], ["a"])
        self.assertPointer(self.patch_role(owner, "b", {"inherits": ["a"]}), "/inherits")
        self.assertPointer(self.patch_role(owner, "b", {"inherits": ["viewer", "c"]}), "/inherits")
        self.assertPointer(self.patch_role(owner, "b", {"inherits": ["b"]}), "/inherits")
        self.assertPointer(self.patch_role(owner, "b", {"permissions": ["nope:x"]}),
                           "/permissions/0")
        self.assertPointer(self.patch_role(owner, "b", {"inherits": ["ghost"]}), "/inherits/0")
        self.assertPointer(self.patch_role(owner, "b", {"name": "renamed"}), "/name")
        self.assertRole(self.call("GET", "/v1/roles/b", token=owner).body, "b", ["users:read"],
                        [])
        # A role inheriting itself at creation: refused (a cycle, or a role that does not
        # exist yet).
        r = self.create_role(owner, "selfish", ["users:read"], ["selfish"])
        self.assertProblem(r, 400, "validation-failed")
        pointers = [e["pointer"] for e in r.body.get("errors", [])]
        self.assertTrue("/inherits" in pointers or "/inherits/0" in pointers, r.body)
        self.assertProblem(self.call("GET", "/v1/roles/selfish", token=owner), 404, "not-found")

    def test_nobody_creates_or_changes_a_role_beyond_their_permissions(self):
        tenant = self.new_tenant()
        owner = self.owner_token(tenant)
        admin = self.new_admin(tenant, owner)
        member = self.new_member(tenant)
        self.assertForbidden(self.create_role(member["token"], "mine", ["users:read"]),
                             "roles:write")
        self.assertForbidden(self.create_role(admin["token"], "root", ["tenant:admin"]),
                             "tenant:admin")
        self.assertForbidden(self.create_role(admin["token"], "root", ["users:read"], ["owner"]),
                             "*")
        self.assertProblem(self.call("GET", "/v1/roles/root", token=owner), 404, "not-found")
        # An inherited custom role with tenant:admin counts too.
        self.make_role(owner, "boss", ["tenant:admin"])
        self.assertForbidden(self.create_role(admin["token"], "sub", ["users:read"], ["boss"]),
                             "tenant:admin")
        # What the admin holds, it may put in a role; never more.
        self.make_role(admin["token"], "helper", ["audit:read"], ["viewer"])
        self.assertForbidden(self.patch_role(admin["token"], "helper",
                                             {"permissions": ["audit:read", "tenant:admin"]}),
                             "tenant:admin")
        self.assertForbidden(self.patch_role(admin["token"], "helper", {"inherits": ["owner"]}),
                             "*")
        self.assertRole(self.call("GET", "/v1/roles/helper", token=owner).body, "helper",
                        ["audit:read"], ["viewer"])
        self.assertForbidden(self.patch_role(member["token"], "helper",
                                             {"permissions": ["users:read"]}), "roles:write")
        self.assertForbidden(self.call("DELETE", "/v1/roles/helper", token=member["token"]),
                             "roles:write")

    def test_escalation_refusals_are_audited_as_permission_denied(self):
        # docs/rbac.md: permission.denied "for every 403 of a missing permission"; the
        # escalation guards answer 403 forbidden with required_permission too.
        tenant = self.new_tenant()
        owner = self.owner_token(tenant)
        admin = self.new_admin(tenant, owner)
        member = self.new_member(tenant)
        self.assertForbidden(self.create_role(admin["token"], "root", ["tenant:admin"]),
                             "tenant:admin")
        self.assertForbidden(self.set_roles(admin["token"], member["id"], ["owner"]), "*")
        denied = self.wait_for_audit(tenant, "?action=permission.denied&actor_id=" + admin["id"],
                                     lambda entries: len(entries) >= 2)
        self.assertEqual(len(denied), 2, denied)
        for e in denied:
            self.assertEqual(e["outcome"], "denied", e)
            self.assertEqual(e["actor"], {"type": "user", "id": admin["id"]}, e)

    def test_a_role_in_use_is_deleted_only_with_force(self):
        tenant = self.new_tenant()
        owner = self.owner_token(tenant)
        member = self.new_member(tenant)
        self.make_role(owner, "auditor", ["audit:read"])
        self.make_role(owner, "child", ["users:read"], ["auditor"])
        self.grant(owner, member["id"], ["member", "auditor"])
        self.assertEqual(self.call("GET", "/v1/audit", token=member["token"]).status, 200)
        r = self.call("DELETE", "/v1/roles/auditor", token=owner)
        self.assertProblem(r, 409, "conflict")
        r = self.call("DELETE", "/v1/roles/auditor?force=false", token=owner)
        self.assertProblem(r, 409, "conflict")
        self.assertEqual(self.call("GET", "/v1/roles/auditor", token=owner).status, 200)
        self.assertEqual(self.call("GET", "/v1/audit", token=member["token"]).status, 200)
        # Only inherited, not assigned: in use as well.
        self.make_role(owner, "parent", ["users:read"])
        self.make_role(owner, "kid", ["roles:read"], ["parent"])
        self.assertProblem(self.call("DELETE", "/v1/roles/parent", token=owner), 409, "conflict")
        # Forced: the assignment and the inheritance go, and the access with them at once.
        r = self.call("DELETE", "/v1/roles/auditor?force=true", token=owner)
        self.assertEqual(r.status, 204, r.body)
        self.assertIsNone(r.body)
        self.assertForbidden(self.call("GET", "/v1/audit", token=member["token"]), "audit:read")
        self.assertEqual(self.get_user(owner, member["id"]).body["roles"], ["member"])
        self.assertEqual(self.me(member["token"]).body["roles"], ["member"])
        self.assertProblem(self.call("GET", "/v1/roles/auditor", token=owner), 404, "not-found")
        self.assertRole(self.call("GET", "/v1/roles/child", token=owner).body, "child",
                        ["users:read"], [])
        self.assertProblem(self.call("DELETE", "/v1/roles/auditor", token=owner), 404,
                           "not-found")
        # A role nobody uses goes without force; the name is free again.
        self.assertEqual(self.call("DELETE", "/v1/roles/kid", token=owner).status, 204)
        self.assertEqual(self.call("DELETE", "/v1/roles/parent", token=owner).status, 204)
        self.make_role(owner, "auditor", ["users:read"])
        self.assertEqual(self.get_user(owner, member["id"]).body["roles"], ["member"])
        # A user whose only role is force-deleted keeps no permission from it.
        lone = self.new_member(tenant)
        self.make_role(owner, "solo", ["audit:read"])
        self.grant(owner, lone["id"], ["solo"])
        self.assertEqual(self.call("GET", "/v1/audit", token=lone["token"]).status, 200)
        r = self.call("DELETE", "/v1/roles/solo?force=true", token=owner)
        self.assertEqual(r.status, 204, r.body)
        self.assertNotIn("solo", self.get_user(owner, lone["id"]).body["roles"])
        self.assertForbidden(self.call("GET", "/v1/audit", token=lone["token"]), "audit:read")
        # The forced deletion is audited with the assignment it removed.
        deleted = self.audit(tenant, "?action=role.deleted")
        forced = [e for e in deleted if '"auditor"' in json.dumps(e) and e["outcome"] == "success"]
        self.assertTrue(forced, deleted)
        self.assertIn(member["id"], json.dumps(forced[-1]), forced[-1])

    # -- deletion and erasure ---------------------------------------------------------------

    def test_deleting_a_user_erases_them_and_keeps_a_pseudonymous_trail(self):
        tenant = self.new_tenant()
        owner = self.owner_token(tenant)
        agent = {"User-Agent": "erin-agent/" + os.urandom(4).hex()}
        name1, name2 = "Erin " + os.urandom(3).hex(), "Erin Two " + os.urandom(3).hex()
        email = new_email("erin")
        r = self.call("POST", "/v1/auth/signup",
                      {"email": email, "password": PASSWORD, "display_name": name1},
                      tenant=tenant["slug"], headers=agent)
        self.assertEqual(r.status, 201, r.body)
        erin_id = r.body["user"]["id"]
        r = self.call("POST", "/v1/auth/login", {"email": email, "password": PASSWORD},
                      tenant=tenant["slug"], headers=agent)
        self.assertEqual(r.status, 200, r.body)
        erin = r.body
        r = self.call("PATCH", "/v1/users/" + erin_id, {"display_name": name2},
                      token=erin["access_token"], headers=agent)
        self.assertEqual(r.status, 200, r.body)
        # Before: the audit log shows her data.
        r = self.admin("GET", "/v1/audit/export", tenant=tenant["slug"])
        self.assertEqual(r.status, 200)
        before = r.body.decode("utf-8")
        self.assertIn(email, before)
        self.assertIn(name2, before)
        # A member cannot delete anyone.
        bystander = self.new_member(tenant)
        self.assertForbidden(self.call("DELETE", "/v1/users/" + erin_id,
                                       token=bystander["token"]), "users:write")
        # The owner deletes her.
        r = self.call("DELETE", "/v1/users/" + erin_id, token=owner)
        self.assertEqual(r.status, 204, r.body)
        self.assertIsNone(r.body)
        r = self.me(erin["access_token"])  # the very next request
        self.assertProblem(r, 401, "token-revoked")
        r = self.refresh(erin["refresh_token"])  # the session went with the user
        self.assertEqual(r.status, 401, r.body)
        self.assertIn(r.body["code"], ("token-revoked", "unauthenticated"), r.body)
        self.assertProblem(self.get_user(owner, erin_id), 404, "not-found")
        self.assertProblem(self.call("DELETE", "/v1/users/" + erin_id, token=owner), 404,
                           "not-found")
        self.assertNotIn(erin_id, [u["id"] for u in
                                   self.call("GET", "/v1/users", token=owner).body["data"]])
        self.assertProblem(self.try_login(tenant, email, PASSWORD), 401, "invalid-credentials")
        # The audit log keeps her id...
        deleted = self.audit(tenant, "?action=user.deleted")
        self.assertEqual(len(deleted), 1, deleted)
        self.assertEqual(deleted[0]["resource"], {"type": "user", "id": erin_id})
        self.assertEqual(deleted[0]["actor"], {"type": "user", "id": tenant["owner"]["id"]})
        self.assertEqual(deleted[0]["outcome"], "success")
        hers = self.audit(tenant, "?actor_id=" + erin_id)
        self.assertTrue(hers, "no entry left with her id as the actor")
        for e in hers:
            self.assertEqual(e["actor"]["id"], erin_id)
            for field in ("ip", "user_agent"):
                self.assertIn(e[field], (None, "[erased]"), e)
        # ... and nothing personal of hers, anywhere.
        r = self.admin("GET", "/v1/audit/export", tenant=tenant["slug"])
        self.assertEqual(r.status, 200)
        exported = r.body.decode("utf-8")
        lines = [json.loads(line) for line in exported.splitlines() if line.strip()]
        self.assertTrue(any(e["actor"]["id"] == erin_id for e in lines))
        self.assertTrue(any(e["resource"]["id"] == erin_id and e["action"] == "user.deleted"
                            for e in lines))
        self.assertIn("[erased]", exported)
        listed = json.dumps(self.audit(tenant, "?limit=200"))
        for personal in (email, name1, name2, agent["User-Agent"]):
            self.assertNotIn(personal, exported)
            self.assertNotIn(personal, listed)
        self.assertIn(tenant["owner"]["email"], exported)  # only her data is gone
        r = self.admin("GET", "/v1/audit/verify", tenant=tenant["slug"])
        self.assertEqual(r.status, 200, r.body)
        self.assertIs(r.body["ok"], True, r.body)
        r = self.call("GET", "/v1/audit/verify", token=owner)
        self.assertIs(r.body["ok"], True, r.body)
        # The email is free again: a new signup is a new user.
        again = self.signup(tenant, email=email)
        self.assertNotEqual(again["id"], erin_id)

    def test_deleting_a_user_revokes_the_api_keys_they_created(self):
        tenant = self.new_tenant()
        owner = self.owner_token(tenant)
        admin = self.new_admin(tenant, owner)
        r = self.call("POST", "/v1/api-keys", {"name": "theirs", "permissions": ["users:read"]},
                      token=admin["token"])
        self.assertEqual(r.status, 201, r.body)
        key = r.body["key"]
        self.assertEqual(self.call("GET", "/v1/users", token=key).status, 200)
        r = self.call("DELETE", "/v1/users/" + admin["id"], token=owner)
        self.assertEqual(r.status, 204, r.body)
        self.assertProblem(self.call("GET", "/v1/users", token=key), 401, "token-revoked")
        self.assertProblem(self.me(admin["token"]), 401, "token-revoked")

    # -- audit -------------------------------------------------------------------------------

    def test_role_and_assignment_changes_are_audited(self):
        tenant = self.new_tenant()
        owner = self.owner_token(tenant)
        owner_actor = {"type": "user", "id": tenant["owner"]["id"]}
        member = self.new_member(tenant)
        self.make_role(owner, "auditor", ["audit:read"], ["viewer"])
        self.assertEqual(self.patch_role(owner, "auditor", {"permissions": ["users:read"]}).status,
                         200)
        self.grant(owner, member["id"], ["auditor"])
        self.assertEqual(self.call("DELETE", "/v1/roles/auditor?force=true", token=owner).status,
                         204)

        def one(action):
            entries = [e for e in self.audit(tenant, "?action=" + action)
                       if e["outcome"] == "success"]
            self.assertEqual(len(entries), 1, (action, entries))
            e = entries[0]
            self.assertEqual(e["actor"], owner_actor, e)
            return e

        for action in ("role.created", "role.updated", "role.deleted"):
            e = one(action)
            self.assertEqual(e["resource"]["type"], "role", e)
            self.assertIn("auditor", json.dumps(e), e)
        created = one("role.created")
        self.assertIsNone(created["changes"]["before"])
        self.assertIn("audit:read", json.dumps(created["changes"]["after"]))
        updated = one("role.updated")
        self.assertIn("audit:read", json.dumps(updated["changes"]["before"]))
        self.assertNotIn("audit:read", json.dumps(updated["changes"]["after"]))
        changes = [e for e in self.audit(tenant, "?action=user.roles_changed")
                   if e["outcome"] == "success"]
        assigned = [e for e in changes if e["changes"]["after"]["roles"] == ["auditor"]]
        self.assertEqual(len(assigned), 1, changes)
        self.assertEqual(assigned[0]["actor"], owner_actor)
        self.assertEqual(assigned[0]["resource"], {"type": "user", "id": member["id"]})
        self.assertEqual(assigned[0]["changes"]["before"]["roles"], ["member"])
        # A refused assignment changes nothing and writes no roles_changed entry.
        self.assertPointer(self.set_roles(owner, member["id"], ["ghost"]), "/roles/0")
        self.assertEqual(len([e for e in self.audit(tenant, "?action=user.roles_changed")
                              if e["outcome"] == "success"]), len(changes))
        r = self.admin("GET", "/v1/audit/verify", tenant=tenant["slug"])
        self.assertIs(r.body["ok"], True, r.body)

    # -- the route table ---------------------------------------------------------------------

    def test_every_v1_route_declares_its_permission(self):
        ops, _ = self.openapi_operations()
        allowed = {"public", "self", "self|users:write"} | set(CATALOGUE)
        declared = {}
        for method, path, op in ops:
            perm = op.get("x-troupe-permission")
            self.assertIn(perm, allowed, "%s %s declares %r" % (method, path, perm))
            declared[(method, normalized(path))] = perm
            rule = expected_permission(method, path)
            if rule is not None:
                self.assertEqual(perm, rule, "%s %s: API.md's rule says %s" % (method, path, rule))
        # The users and roles routes of docs/rbac.md are all there.
        for key, perm in {("GET", "/v1/users"): "users:read",
                          ("GET", "/v1/users/me"): "self",
                          ("GET", "/v1/users/{}"): "users:read",
                          ("PATCH", "/v1/users/{}"): "self|users:write",
                          ("DELETE", "/v1/users/{}"): "users:write",
                          ("PUT", "/v1/users/{}/roles"): "roles:write",
                          ("GET", "/v1/roles"): "roles:read",
                          ("POST", "/v1/roles"): "roles:write",
                          ("GET", "/v1/roles/{}"): "roles:read",
                          ("PATCH", "/v1/roles/{}"): "roles:write",
                          ("DELETE", "/v1/roles/{}"): "roles:write"}.items():
            self.assertEqual(declared.get(key), perm, key)
        # What the document declares is what the server enforces: a member lacks roles:write.
        tenant = self.new_tenant()
        member = self.new_member(tenant)
        r = self.call("POST", "/v1/roles", {"name": "x", "permissions": ["users:read"]},
                      token=member["token"])
        self.assertForbidden(r, declared[("POST", "/v1/roles")])


if __name__ == "__main__":
    unittest.main()
