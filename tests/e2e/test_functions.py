"""Functions (feature actors) end to end (API.md "Functions (feature actors)", "Users and RBAC",
"Audit log"; docs/feature-actors.md): the catalogue of GET /v1/functions, the worked example
dashboard.save_layout / dashboard.get_layout (parameters checked against the declared schema,
the check the schema cannot express, versions), the two permissions a call needs, a layout
seen only by its own user and tenant, the admin token that acts for no user, idempotent calls
and the audit entry written with the save.

Each test creates its own tenant; one server for the class."""

import json
import os
import unittest

from support import ServerTestCase
from test_auth import TS_RE
from test_webhooks import BASE_ARGS, WebhookMixin

FUNCTIONS = "/v1/functions"
SAVE = FUNCTIONS + "/dashboard.save_layout"
GET = FUNCTIONS + "/dashboard.get_layout"
FUNCTION_KEYS = {"name", "kind", "permission", "description", "schema"}
LAYOUT_RESULT_KEYS = {"user_id", "layout", "version", "updated_at"}


def widget(wid, x=0, y=0, w=1, h=1):
    return {"id": wid, "x": x, "y": y, "w": w, "h": h}


def layout(columns=4, widgets=None):
    return {"layout": {"columns": columns,
                       "widgets": [widget("a")] if widgets is None else widgets}}


class FunctionsMixin(WebhookMixin):

    def save(self, token, params, status=200, headers=None, tenant=None):
        r = self.call("POST", SAVE, params, token=token, headers=headers, tenant=tenant)
        self.assertEqual(r.status, status, r.body)
        if status == 200:
            self.assertEqual(set(r.body), {"result"}, r.body)
            self.assertLayoutResult(r.body["result"])
        return r

    def load(self, token, tenant=None):
        return self.call("POST", GET, {}, token=token, tenant=tenant)

    def assertLayoutResult(self, result, user_id=None, params=None, version=None):
        self.assertEqual(set(result), LAYOUT_RESULT_KEYS, result)
        self.assertRegex(result["updated_at"], TS_RE)
        self.assertIsInstance(result["version"], int)
        if user_id is not None:
            self.assertEqual(result["user_id"], user_id)
        if params is not None:
            self.assertEqual(result["layout"], params["layout"])
        if version is not None:
            self.assertEqual(result["version"], version)


class FunctionsTest(FunctionsMixin, ServerTestCase):
    server_args = BASE_ARGS

    def test_functions_and_job_types_are_listed_with_their_schemas(self):
        tenant, owner = self.tenant_and_owner()
        r = self.call("GET", FUNCTIONS, token=owner)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(set(r.body), {"data", "next_cursor", "job_types"})
        self.assertIsNone(r.body["next_cursor"])
        names = [f["name"] for f in r.body["data"]]
        self.assertEqual(names, sorted(names))
        self.assertTrue({"dashboard.save_layout", "dashboard.get_layout"} <= set(names), names)
        by_name = {f["name"]: f for f in r.body["data"]}
        for f in r.body["data"]:
            self.assertEqual(set(f), FUNCTION_KEYS, f)
            self.assertEqual(f["kind"], "function")
            self.assertIsInstance(f["description"], str)
            self.assertIsInstance(f["schema"], dict)
        save = by_name["dashboard.save_layout"]
        self.assertEqual(save["permission"], "records:write")
        self.assertTrue(save["description"])
        schema = save["schema"]
        self.assertEqual(schema.get("type"), "object")
        self.assertEqual(schema.get("required"), ["layout"])
        self.assertIs(schema.get("additionalProperties"), False)
        columns = schema["properties"]["layout"]["properties"]["columns"]
        self.assertEqual((columns.get("minimum"), columns.get("maximum")), (1, 12))
        widgets = schema["properties"]["layout"]["properties"]["widgets"]
        self.assertEqual(widgets.get("maxItems"), 50)
        self.assertEqual(sorted(widgets["items"]["required"]), ["h", "id", "w", "x", "y"])
        self.assertEqual(by_name["dashboard.get_layout"]["permission"], "records:read")
        job_names = [j["name"] for j in r.body["job_types"]]
        self.assertEqual(job_names, sorted(job_names))
        self.assertTrue({"http.request", "tenant.export", "audit.prune"} <= set(job_names),
                        job_names)
        self.assertFalse(set(job_names) & set(names), "a name is both a function and a job")
        for j in r.body["job_types"]:
            self.assertEqual(set(j), FUNCTION_KEYS, j)
            self.assertEqual(j["kind"], "job")
        http_schema = [j for j in r.body["job_types"] if j["name"] == "http.request"][0]["schema"]
        self.assertIn("url", http_schema.get("required", []))
        # A member may list them (functions:invoke); a viewer may not.
        member = self.new_member(tenant)
        self.assertEqual(self.call("GET", FUNCTIONS, token=member["token"]).body, r.body)
        viewer = self.new_member(tenant)
        self.grant(owner, viewer["id"], ["viewer"])
        self.assertForbidden(self.call("GET", FUNCTIONS, token=viewer["token"]),
                             "functions:invoke")
        self.assertUnauthenticated(self.call("GET", FUNCTIONS, tenant=tenant["slug"]),
                                   token_sent=False)

    def test_a_layout_is_saved_versioned_and_read_back(self):
        tenant, owner = self.tenant_and_owner()
        member = self.new_member(tenant)
        token = member["token"]
        self.assertProblem(self.load(token), 404, "not-found")
        first = layout(12, [widget("sales", 0, 0, 6, 4), widget("map", 6, 0, 6, 4)])
        r = self.save(token, first)
        saved = r.body["result"]
        self.assertLayoutResult(saved, member["id"], first, 1)
        second = layout(3, [widget("only", 1, 2, 2, 1)])
        r = self.save(token, second)
        self.assertLayoutResult(r.body["result"], member["id"], second, 2)
        self.assertGreaterEqual(r.body["result"]["updated_at"], saved["updated_at"])
        latest = r.body["result"]
        r = self.load(token)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body, {"result": latest})
        # No body at all is the same as {}.
        r = self.call("POST", GET, token=token)
        self.assertEqual((r.status, r.body), (200, {"result": latest}))
        self.assertPointer(self.call("POST", GET, {"colour": "red"}, token=token), "/colour")
        # Fifty widgets, each exactly fitting, are fine; the version keeps counting.
        full = layout(12, [widget("w%d" % i, i % 12, i // 12, 1, 1) for i in range(50)])
        self.assertLayoutResult(self.save(token, full).body["result"], member["id"], full, 3)
        edge = layout(4, [widget("edge", 3, 0, 1, 1), widget("wide", 0, 1, 4, 2)])
        self.assertLayoutResult(self.save(token, edge).body["result"], member["id"], edge, 4)
        self.assertEqual(self.load(token).body["result"]["version"], 4)

    def test_layout_params_are_validated(self):
        tenant, _ = self.tenant_and_owner()
        member = self.new_member(tenant)
        token = member["token"]
        too_many = [widget("w%d" % i, 0, i, 1, 1) for i in range(51)]
        cases = (({}, "/layout"),
                 ({"layout": None}, "/layout"),
                 ({"layout": []}, "/layout"),
                 ({"layout": {"widgets": []}}, "/layout/columns"),
                 (layout(0, []), "/layout/columns"),
                 (layout(13, []), "/layout/columns"),
                 (layout("4", []), "/layout/columns"),
                 (layout(2.5, []), "/layout/columns"),
                 ({"layout": {"columns": 4}}, "/layout/widgets"),
                 (layout(4, {"id": "a"}), "/layout/widgets"),
                 (layout(4, too_many), "/layout/widgets"),
                 (layout(4, [{"id": "a", "x": 0, "y": 0, "w": 1}]), "/layout/widgets/0/h"),
                 (layout(4, [widget("a"), dict(widget("b"), colour="red")]),
                  "/layout/widgets/1/colour"),
                 (layout(4, [widget("a", x=-1)]), "/layout/widgets/0/x"),
                 (layout(4, [widget("a", y=-1)]), "/layout/widgets/0/y"),
                 (layout(4, [widget("a", w=0)]), "/layout/widgets/0/w"),
                 (layout(4, [widget("a", h=0)]), "/layout/widgets/0/h"),
                 (layout(4, [widget("")]), "/layout/widgets/0/id"),
                 (layout(4, [widget("x" * 65)]), "/layout/widgets/0/id"),
                 (layout(4, [widget(7)]), "/layout/widgets/0/id"),
                 (layout(4, ["a"]), "/layout/widgets/0"),
                 ({"layout": {"columns": 4, "widgets": [], "theme": "dark"}}, "/layout/theme"),
                 (dict(layout(4, []), theme="dark"), "/theme"),
                 # The check the schema cannot express: x + w must not pass the columns.
                 (layout(4, [widget("a", 0, 0, 4, 1), widget("b", 3, 0, 2, 1)]),
                  "/layout/widgets/1"),
                 (layout(1, [widget("a", 1, 0, 1, 1)]), "/layout/widgets/0"),
                 (layout(12, [widget("a", 0, 0, 13, 1)]), "/layout/widgets/0"))
        for params, pointer in cases:
            with self.subTest(params=params):
                self.assertPointer(self.call("POST", SAVE, params, token=token), pointer)
        r = self.call("POST", SAVE, raw=b"[]", token=token)
        self.assertEqual(r.status, 400, r.body)
        self.assertProblem(self.call("POST", SAVE, raw=b'{"layout":', token=token), 400,
                           "bad-request")
        # Nothing refused was stored, and nothing was audited.
        self.assertProblem(self.load(token), 404, "not-found")
        self.assertEqual(self.audit(tenant, "?action=dashboard.layout_saved"), [])

    def test_a_call_needs_functions_invoke_and_the_functions_own_permission(self):
        tenant, owner = self.tenant_and_owner()
        viewer = self.new_member(tenant)  # records:read but no functions:invoke
        self.grant(owner, viewer["id"], ["viewer"])
        self.assertForbidden(self.call("POST", SAVE, layout(), token=viewer["token"]),
                             "functions:invoke")
        self.assertForbidden(self.load(viewer["token"]), "functions:invoke")
        invoker = self.new_member(tenant)
        self.make_role(owner, "invoker", ["functions:invoke"])
        self.grant(owner, invoker["id"], ["invoker"])
        self.assertForbidden(self.call("POST", SAVE, layout(), token=invoker["token"]),
                             "records:write")
        self.assertForbidden(self.load(invoker["token"]), "records:read")
        reader = self.new_member(tenant)
        self.make_role(owner, "invoking-reader", ["functions:invoke", "records:read"])
        self.grant(owner, reader["id"], ["invoking-reader"])
        self.assertProblem(self.load(reader["token"]), 404, "not-found")
        self.assertForbidden(self.call("POST", SAVE, layout(), token=reader["token"]),
                             "records:write")
        # A member has records:* and functions:invoke (and here may make API keys).
        member = self.new_member(tenant)
        self.make_role(owner, "keymaker", ["api_keys:write"])
        self.grant(owner, member["id"], ["member", "keymaker"])
        self.save(member["token"], layout())
        # An API key acts for the user who created it.
        r = self.eventually(lambda: self.call("POST", "/v1/api-keys", {
            "name": "layouts", "permissions": ["functions:invoke", "records:write",
                                               "records:read"]}, token=member["token"]),
            201, None)
        key = r.body["key"]
        params = layout(6, [widget("by-key", 0, 0, 6, 1)])
        r = self.save(key, params)
        self.assertLayoutResult(r.body["result"], member["id"], params, 2)
        self.assertEqual(self.load(member["token"]).body["result"]["layout"], params["layout"])
        r = self.call("POST", "/v1/api-keys", {"name": "no-records",
                                               "permissions": ["functions:invoke"]},
                      token=member["token"])
        self.assertForbidden(self.call("POST", SAVE, params, token=r.body["key"]),
                             "records:write")
        # The admin token acts in the tenant but for no user: a layout has no owner then.
        r = self.call("POST", SAVE, layout(), token=self.srv.admin_token, tenant=tenant["slug"])
        self.assertProblem(r, 400, "bad-request")
        r = self.load(self.srv.admin_token, tenant=tenant["slug"])
        self.assertProblem(r, 400, "bad-request")
        self.assertUnauthenticated(self.call("POST", SAVE, layout(), tenant=tenant["slug"]),
                                   token_sent=False)
        # Only the member's two saves happened.
        entries = self.wait_for_audit(tenant, "?action=dashboard.layout_saved",
                                      lambda e: len(e) >= 2)
        self.assertEqual(len([e for e in entries if e["outcome"] == "success"]), 2, entries)

    def test_unknown_functions_are_404(self):
        _, owner = self.tenant_and_owner()
        for name in ("no.such.function", "dashboard", "dashboard.save_layout.extra",
                     "Dashboard.Save_Layout", "http.request", "tenant.export", "x" * 300):
            with self.subTest(name=name):
                self.assertProblem(self.call("POST", FUNCTIONS + "/" + name, {}, token=owner),
                                   404, "not-found")
        r = self.call("GET", SAVE, token=owner)
        self.assertProblem(r, 405, "method-not-allowed")
        self.assertIn("POST", r.headers.get("allow", ""))

    def test_a_layout_belongs_to_its_user_and_tenant(self):
        tenant, owner = self.tenant_and_owner()
        alice = self.new_member(tenant)
        bob = self.new_member(tenant)
        secret_widget = "alice-%s" % os.urandom(4).hex()
        params = layout(4, [widget(secret_widget, 0, 0, 2, 2)])
        self.save(alice["token"], params)
        self.assertProblem(self.load(bob["token"]), 404, "not-found")
        self.assertProblem(self.load(owner), 404, "not-found")
        r = self.save(bob["token"], layout(2, [widget("bob", 0, 0, 2, 1)]))
        self.assertLayoutResult(r.body["result"], bob["id"], version=1)
        self.assertEqual(self.load(alice["token"]).body["result"]["layout"], params["layout"])
        self.assertEqual(self.load(alice["token"]).body["result"]["version"], 1)
        # Another tenant: its owner sees nothing; Alice's token naming it is a mismatch.
        other, other_owner = self.tenant_and_owner()
        r = self.load(other_owner)
        self.assertProblem(r, 404, "not-found")
        self.assertNotIn(secret_widget, json.dumps(r.body))
        r = self.call("POST", GET, {}, token=alice["token"], tenant=other["slug"])
        self.assertProblem(r, 403, "tenant-mismatch")
        self.assertNotIn(secret_widget, json.dumps(r.body))
        r = self.save(other_owner, layout(1, [widget("other", 0, 0, 1, 1)]))
        self.assertEqual(r.body["result"]["version"], 1)
        self.assertEqual(self.load(alice["token"]).body["result"]["version"], 1)

    def test_saves_are_audited_and_an_idempotency_key_saves_once(self):
        tenant, _ = self.tenant_and_owner()
        member = self.new_member(tenant)
        headers = {"Idempotency-Key": "layout-" + os.urandom(6).hex()}
        params = layout(4, [widget("a", 0, 0, 4, 1)])
        first = self.save(member["token"], params, headers=headers)
        again = self.save(member["token"], params, headers=headers)
        self.assertEqual(again.body, first.body)
        self.assertEqual(again.headers.get("idempotent-replayed"), "true")
        self.assertEqual(self.load(member["token"]).body["result"]["version"], 1)
        r = self.call("POST", SAVE, layout(5, []), token=member["token"], headers=headers)
        self.assertProblem(r, 422, "idempotency-key-reuse")
        self.save(member["token"], layout(5, []))
        entries = self.wait_for_audit(tenant, "?action=dashboard.layout_saved",
                                      lambda e: len(e) >= 2)
        self.assertEqual(len(entries), 2, entries)
        for e in entries:
            self.assertEqual((e["actor"]["type"], e["actor"]["id"], e["outcome"]),
                             ("user", member["id"], "success"))
            self.assertEqual(e["resource"]["id"], member["id"], e)
        r = self.admin("GET", "/v1/audit/verify", tenant=tenant["slug"])
        self.assertIs(r.body["ok"], True, r.body)


if __name__ == "__main__":
    unittest.main()
