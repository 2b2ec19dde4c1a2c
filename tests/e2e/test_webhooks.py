"""Events and outbound webhooks end to end (API.md "Events and outbound webhooks", "Audit log"):
endpoints and their validation, the secret shown only at creation and rotation, publishing,
Standard Webhooks signatures checked over the raw body, pattern filters, retries on the
configured schedule, timeouts, redirects, Retry-After, 410 Gone, disabling after consecutive
failures (and the webhook.endpoint.disabled event), manual retry, ordered endpoints, rate
limits, event types, platform events, the audit trail without secrets, the private-address
guard, and no accepted event lost to a kill -9.

Deliveries go to webhook_receiver.Receiver, an HTTP server of the test on 127.0.0.1. Each test
creates its own tenant; one server per class."""

import http.client
import ipaddress
import itertools
import json
import os
import re
import signal
import socket
import ssl
import tempfile
import threading
import time
import unittest

from support import UUID7_RE, Server, ServerTestCase, http_request
from test_auth import CHEAP_ARGON2, TS_RE
from test_idempotency import NO_LIMITS
from test_rbac import RbacMixin
from test_tls import make_certificate
from webhook_receiver import WAIT_S, Receiver, Reply, poll, secret_key, standard_signature

BASE_ARGS = NO_LIMITS + CHEAP_ARGON2
WEBHOOK_ARGS = ("--webhooks.allow-private-targets=true", "--webhooks.retry-schedule=[1,1]",
                "--webhooks.timeout-ms=2000", "--webhooks.disable-after=2")

ENDPOINTS = "/v1/webhooks/endpoints"
ENDPOINT_KEYS = {"id", "url", "description", "events", "rate_limit_per_s", "ordered", "disabled",
                 "disabled_reason", "created_at", "updated_at"}
DELIVERY_KEYS = {"id", "event_id", "event_type", "status", "attempt_count", "next_attempt_at",
                 "last_status_code", "created_at", "updated_at"}
ATTEMPT_KEYS = {"n", "at", "status_code", "duration_ms", "response_body", "error"}
EVENT_TYPE_KEYS = {"name", "description", "builtin", "created_at"}
SECRET_RE = re.compile(r"^whsec_[A-Za-z0-9+/]+={0,2}$")
TIMEOUT_RE = re.compile(r"time(d)?[ _-]?out", re.IGNORECASE)
# How long a test waits before concluding that something did NOT happen.
NEGATIVE_GRACE_S = 1.5


class WebhookMixin(RbacMixin):
    """RbacMixin plus endpoints, events, deliveries and a receiver per test."""

    def tenant_and_owner(self):
        tenant = self.new_tenant()
        return tenant, self.owner_token(tenant)

    def new_receiver(self, host="127.0.0.1"):
        rcv = Receiver(host)
        self.addCleanup(rcv.close)
        return rcv

    def create_endpoint(self, token, url, **fields):
        r = self.call("POST", ENDPOINTS, dict(fields, url=url), token=token)
        self.assertEqual(r.status, 201, r.body)
        return r.body

    def endpoint(self, token, endpoint_id):
        r = self.call("GET", "%s/%s" % (ENDPOINTS, endpoint_id), token=token)
        self.assertEqual(r.status, 200, r.body)
        return r.body

    def publish(self, token, event_type, payload=None):
        r = self.call("POST", "/v1/events", {"type": event_type, "payload": payload or {}},
                      token=token)
        self.assertEqual(r.status, 202, r.body)
        return r.body

    def deliveries(self, token, endpoint_id, query="?limit=200"):
        r = self.call("GET", "%s/%s/deliveries%s" % (ENDPOINTS, endpoint_id, query), token=token)
        self.assertEqual(r.status, 200, r.body)
        return r.body["data"]

    def delivery(self, token, delivery_id):
        r = self.call("GET", "/v1/webhooks/deliveries/" + delivery_id, token=token)
        self.assertEqual(r.status, 200, r.body)
        return r.body

    def delivery_of(self, token, endpoint_id, event_id, status=None, timeout=WAIT_S):
        """The full delivery (with attempts) of event_id to the endpoint, once it exists and,
        if given, has this status."""
        def probe():
            for d in self.deliveries(token, endpoint_id):
                if d["event_id"] == event_id and status in (None, d["status"]):
                    full = self.delivery(token, d["id"])
                    if status in (None, full["status"]):
                        return full
            return None
        found = poll(probe, timeout)
        self.assertTrue(found, "no %s delivery of %s within %.0f s: %r"
                        % (status or "", event_id, timeout, self.deliveries(token, endpoint_id)))
        return found

    def assertSigned(self, req, *secrets):
        """Standard Webhooks headers, one `v1,` signature per secret (in this order) over the
        raw body as received, and a timestamp of about now."""
        msg_id, ts = req.headers.get("webhook-id"), req.headers.get("webhook-timestamp", "")
        self.assertTrue(msg_id, req.headers)
        self.assertRegex(ts, r"^[0-9]+$")
        self.assertLess(abs(int(ts) - req.wall), 5, "webhook-timestamp %s is not now" % ts)
        expected = [standard_signature(s, msg_id, ts, req.body) for s in secrets]
        self.assertEqual(req.headers.get("webhook-signature", "").split(" "), expected,
                         req.headers)

    def assertEvent(self, req, event, tenant, payload):
        """A delivery request of `event` (the answer of POST /v1/events)."""
        self.assertEqual(req.method, "POST")
        self.assertTrue(req.headers.get("content-type", "").startswith("application/json"),
                        req.headers)
        self.assertEqual(req.webhook_id, event["id"])
        self.assertEqual(req.json(), {"id": event["id"], "type": event["type"],
                                      "created_at": event["created_at"],
                                      "tenant_id": tenant["id"], "payload": payload})

    def assertGaps(self, reqs, low, high):
        for a, b in zip(reqs, reqs[1:]):
            gap = b.mono - a.mono
            self.assertTrue(low <= gap < high, "%.2f s between attempts, expected [%.1f, %.1f): %r"
                            % (gap, low, high, reqs))

    def assertSecretsAbsent(self, text, *secrets):
        for s in secrets:
            for part in (s, s[len("whsec_"):]):
                self.assertNotIn(part, text)

    def raw_admin_get(self, tenant, path):
        status, _, body = http_request(self.srv, "GET", path, timeout=30, headers={
            "Authorization": "Bearer " + self.srv.admin_token, "X-Tenant": tenant["slug"]})
        self.assertEqual(status, 200, body[:500])
        return body.decode("utf-8")


class OutboundTest(WebhookMixin, ServerTestCase):
    server_args = BASE_ARGS + WEBHOOK_ARGS

    # -- endpoints -------------------------------------------------------------------------

    def test_endpoints_are_created_read_changed_and_deleted(self):
        _, owner = self.tenant_and_owner()
        fields = {"url": "http://127.0.0.1:9/orders", "events": ["order.*", "user.created"],
                  "description": "Orders", "rate_limit_per_s": 10}
        r = self.call("POST", ENDPOINTS, fields, token=owner)
        self.assertEqual(r.status, 201, r.body)
        ep = r.body
        self.assertEqual(set(ep), ENDPOINT_KEYS | {"secret"})
        self.assertRegex(ep["id"], UUID7_RE)
        self.assertEqual(r.headers.get("location"), "%s/%s" % (ENDPOINTS, ep["id"]))
        self.assertEqual({k: ep[k] for k in fields}, fields)
        self.assertEqual((ep["ordered"], ep["disabled"], ep["disabled_reason"]),
                         (False, False, None))
        self.assertRegex(ep["created_at"], TS_RE)
        self.assertRegex(ep["updated_at"], TS_RE)
        self.assertRegex(ep["secret"], SECRET_RE)
        self.assertEqual(len(secret_key(ep["secret"])), 32)
        minimal = self.create_endpoint(owner, "https://hooks.example.com/all")
        self.assertEqual((minimal["events"], minimal["description"], minimal["rate_limit_per_s"],
                          minimal["ordered"], minimal["disabled"]),
                         (None, None, None, False, False))
        self.assertNotEqual(minimal["secret"], ep["secret"])
        # The secret is never shown again.
        shown = {k: v for k, v in ep.items() if k != "secret"}
        self.assertEqual(self.endpoint(owner, ep["id"]), shown)
        r = self.call("GET", ENDPOINTS, token=owner)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(set(r.body), {"data", "next_cursor"})
        self.assertIsNone(r.body["next_cursor"])
        self.assertEqual(sorted(e["id"] for e in r.body["data"]), sorted([ep["id"], minimal["id"]]))
        for e in r.body["data"]:
            self.assertEqual(set(e), ENDPOINT_KEYS)
        self.assertSecretsAbsent(json.dumps(r.body), ep["secret"], minimal["secret"])
        # PATCH: disabling by hand says "manual"; enabling clears it.
        path = "%s/%s" % (ENDPOINTS, ep["id"])
        r = self.call("PATCH", path, {"disabled": True}, token=owner)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual((r.body["disabled"], r.body["disabled_reason"]), (True, "manual"))
        self.assertNotIn("secret", r.body)
        self.assertGreaterEqual(r.body["updated_at"], ep["updated_at"])
        r = self.call("PATCH", path, {"disabled": False}, token=owner)
        self.assertEqual((r.body["disabled"], r.body["disabled_reason"]), (False, None))
        change = {"events": ["user.*"], "url": "https://hooks.example.com/v2",
                  "rate_limit_per_s": 3, "description": "Users"}
        r = self.call("PATCH", path, change, token=owner)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual({k: r.body[k] for k in change}, change)
        self.assertEqual(r.body["created_at"], ep["created_at"])
        self.assertEqual(self.endpoint(owner, ep["id"]), r.body)
        self.assertPointer(self.call("PATCH", path, {"events": ["Order.*"]}, token=owner),
                           "/events/0")
        self.assertProblem(self.call("PATCH", path, {"colour": "red"}, token=owner), 400,
                           "validation-failed")
        self.assertEqual(self.endpoint(owner, ep["id"]), r.body)
        # DELETE, then it is gone everywhere.
        r = self.call("DELETE", path, token=owner)
        self.assertEqual(r.status, 204, r.body)
        self.assertIsNone(r.body)
        for method, p, body in (("GET", path, None), ("DELETE", path, None),
                                ("PATCH", path, {"description": "x"}),
                                ("POST", path + "/rotate-secret", None),
                                ("GET", path + "/deliveries", None)):
            self.assertProblem(self.call(method, p, body, token=owner), 404, "not-found")
        self.assertEqual([e["id"] for e in self.call("GET", ENDPOINTS, token=owner).body["data"]],
                         [minimal["id"]])

    def test_endpoint_bodies_are_validated(self):
        _, owner = self.tenant_and_owner()
        url = "https://hooks.example.com/x"
        cases = (({"url": "ftp://hooks.example.com/x"}, "/url"),
                 ({"url": "not a url"}, "/url"),
                 ({"description": "no url"}, "/url"),
                 ({"url": url, "events": ["Order.*"]}, "/events/0"),
                 ({"url": url, "events": ["order.created", "a..b"]}, "/events/1"),
                 ({"url": url, "events": []}, "/events"),
                 ({"url": url, "events": "order.*"}, "/events"),
                 ({"url": url, "rate_limit_per_s": 0}, "/rate_limit_per_s"),
                 ({"url": url, "rate_limit_per_s": -1}, "/rate_limit_per_s"),
                 ({"url": url, "rate_limit_per_s": "5"}, "/rate_limit_per_s"),
                 ({"url": url, "ordered": "yes"}, "/ordered"))
        for body, pointer in cases:
            with self.subTest(body=body):
                self.assertPointer(self.call("POST", ENDPOINTS, body, token=owner), pointer)
        self.assertProblem(self.call("POST", ENDPOINTS, {"url": url, "colour": "red"},
                                     token=owner), 400, "validation-failed")
        self.assertEqual(self.call("GET", ENDPOINTS, token=owner).body["data"], [])

    def test_events_are_validated_and_routes_need_their_permissions(self):
        tenant, owner = self.tenant_and_owner()
        r = self.call("POST", "/v1/events", {"type": "order.created", "payload": {"n": 1}},
                      token=owner)
        self.assertEqual(r.status, 202, r.body)
        self.assertEqual(set(r.body), {"id", "type", "created_at"})
        self.assertRegex(r.body["id"], UUID7_RE)
        self.assertEqual(r.body["type"], "order.created")
        self.assertRegex(r.body["created_at"], TS_RE)
        for body, pointer in (({"type": "Order.Created", "payload": {}}, "/type"),
                              ({"type": "order..created", "payload": {}}, "/type"),
                              ({"type": "order.*", "payload": {}}, "/type"),
                              ({"payload": {}}, "/type"),
                              ({"type": "order.created"}, "/payload"),
                              ({"type": "order.created", "payload": [1]}, "/payload"),
                              ({"type": "order.created", "payload": "x"}, "/payload")):
            with self.subTest(body=body):
                self.assertPointer(self.call("POST", "/v1/events", body, token=owner), pointer)
        self.assertProblem(self.call("POST", "/v1/events", {"type": "a.b", "payload": {},
                                                            "colour": "red"}, token=owner),
                           400, "validation-failed")
        # member: events:publish but no webhooks:*; viewer: webhooks:read only.
        member = self.new_member(tenant)
        viewer = self.new_member(tenant)
        self.grant(owner, viewer["id"], ["viewer"])
        ep = self.create_endpoint(owner, "http://127.0.0.1:9/x")  # nothing listens there
        path = "%s/%s" % (ENDPOINTS, ep["id"])
        self.assertEqual(self.call("POST", "/v1/events", {"type": "a.b", "payload": {}},
                                   token=member["token"]).status, 202)
        self.assertForbidden(self.call("POST", "/v1/events", {"type": "a.b", "payload": {}},
                                       token=viewer["token"]), "events:publish")
        for p in (ENDPOINTS, path, path + "/deliveries", "/v1/webhooks/event-types"):
            self.assertEqual(self.call("GET", p, token=viewer["token"]).status, 200, p)
            self.assertForbidden(self.call("GET", p, token=member["token"]), "webhooks:read")
        self.assertNotIn("secret", self.call("GET", path, token=viewer["token"]).body)
        for method, p, body in (("POST", ENDPOINTS, {"url": "https://hooks.example.com/y"}),
                                ("PATCH", path, {"disabled": True}),
                                ("POST", path + "/rotate-secret", None),
                                ("DELETE", path, None),
                                ("POST", "/v1/webhooks/event-types", {"name": "order.paid"}),
                                ("POST", "/v1/webhooks/deliveries/%s/retry" % ep["id"], None)):
            with self.subTest(method=method, path=p):
                self.assertForbidden(self.call(method, p, body, token=viewer["token"]),
                                     "webhooks:write")
        self.assertEqual(self.endpoint(owner, ep["id"])["disabled"], False)

    # -- delivery --------------------------------------------------------------------------

    def test_a_delivery_is_signed_per_standard_webhooks(self):
        tenant, owner = self.tenant_and_owner()
        rcv = self.new_receiver()
        rcv.set_default("/hook", Reply(200, {"Content-Type": "text/plain"}, 0, "thanks"))
        ep = self.create_endpoint(owner, rcv.url("/hook"))
        payload = {"order": 42, "note": "crème brûlée ✓ \"quoted\"",
                   "nested": {"list": [1, 2.5, None, True]}}
        event = self.publish(owner, "order.created", payload)
        req = rcv.wait_count(1, path="/hook")[0]
        self.assertEvent(req, event, tenant, payload)
        self.assertSigned(req, ep["secret"])
        d = self.delivery_of(owner, ep["id"], event["id"], "succeeded")
        self.assertEqual(set(d), DELIVERY_KEYS | {"endpoint_id", "attempts"})
        self.assertRegex(d["id"], UUID7_RE)
        self.assertEqual((d["endpoint_id"], d["event_type"], d["attempt_count"],
                          d["next_attempt_at"], d["last_status_code"]),
                         (ep["id"], "order.created", 1, None, 200))
        self.assertEqual(len(d["attempts"]), 1, d)
        attempt = d["attempts"][0]
        self.assertEqual(set(attempt), ATTEMPT_KEYS)
        self.assertEqual((attempt["n"], attempt["status_code"], attempt["response_body"],
                          attempt["error"]), (1, 200, "thanks", None))
        self.assertRegex(attempt["at"], TS_RE)
        self.assertIsInstance(attempt["duration_ms"], int)
        self.assertGreaterEqual(attempt["duration_ms"], 0)
        # The endpoint's list and its status filter.
        listed = self.deliveries(owner, ep["id"])
        self.assertEqual([x["id"] for x in listed], [d["id"]])
        self.assertEqual(set(listed[0]), DELIVERY_KEYS)
        self.assertEqual(len(self.deliveries(owner, ep["id"], "?status=succeeded")), 1)
        self.assertEqual(self.deliveries(owner, ep["id"], "?status=failed"), [])
        self.assertEqual(self.deliveries(owner, ep["id"], "?status=pending"), [])
        r = self.call("GET", "%s/%s/deliveries?status=bogus" % (ENDPOINTS, ep["id"]), token=owner)
        self.assertEqual(r.status, 400, r.body)
        self.assertEqual(r.headers.get("content-type"), "application/problem+json")
        self.assertProblem(self.call("GET", "/v1/webhooks/deliveries/" + ep["id"], token=owner),
                           404, "not-found")
        self.assertEqual(len(rcv.requests()), 1)

    def test_a_rotated_secret_signs_next_to_the_old_one(self):
        _, owner = self.tenant_and_owner()
        rcv = self.new_receiver()
        ep = self.create_endpoint(owner, rcv.url("/hook"))
        r = self.call("POST", "%s/%s/rotate-secret" % (ENDPOINTS, ep["id"]), token=owner)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(set(r.body), {"secret"})
        new = r.body["secret"]
        self.assertRegex(new, SECRET_RE)
        self.assertNotEqual(new, ep["secret"])
        self.assertNotIn("secret", self.endpoint(owner, ep["id"]))
        event = self.publish(owner, "order.created", {"n": 1})
        req = rcv.wait_count(1, path="/hook")[0]
        self.assertEqual(req.webhook_id, event["id"])
        self.assertSigned(req, new, ep["secret"])

    def test_filters_pick_the_events_an_endpoint_gets(self):
        _, owner = self.tenant_and_owner()
        rcv = self.new_receiver()
        types = ("order.created", "order.item.added", "customer.created", "orders.x", "order")
        expected = {"/prefix": ["order.created", "order.item.added"],
                    "/exact": ["order.created"], "/star": list(types), "/all": list(types)}
        patterns = {"/prefix": ["order.*"], "/exact": ["order.created"], "/star": ["*"]}
        endpoints = {}
        for path in expected:
            fields = {"events": patterns[path]} if path in patterns else {}
            endpoints[path] = self.create_endpoint(owner, rcv.url(path), **fields)
        for t in types:
            self.publish(owner, t, {"type": t})
        for path, wanted in expected.items():
            rcv.wait_count(len(wanted), path=path)
        time.sleep(NEGATIVE_GRACE_S)  # anything unwanted would have arrived by now
        for path, wanted in expected.items():
            with self.subTest(path=path):
                got = sorted(r.json()["type"] for r in rcv.requests(path))
                self.assertEqual(got, sorted(wanted))
                listed = self.deliveries(owner, endpoints[path]["id"])
                self.assertEqual(sorted(d["event_type"] for d in listed), sorted(wanted))

    def test_a_failing_delivery_is_retried_then_failed_and_can_be_retried_by_hand(self):
        tenant, owner = self.tenant_and_owner()
        rcv = self.new_receiver()
        big = "x" * 10240
        rcv.script("/fail", *[Reply(500, {"Content-Type": "text/plain"}, 0, big)] * 3)
        ep = self.create_endpoint(owner, rcv.url("/fail"))
        event = self.publish(owner, "invoice.failed", {"invoice": 7})
        reqs = rcv.wait_count(3, timeout=15, path="/fail")
        self.assertEqual([r.webhook_id for r in reqs], [event["id"]] * 3)
        self.assertEqual([r.status for r in reqs], [500] * 3)
        for r in reqs:
            self.assertSigned(r, ep["secret"])
            self.assertEqual(r.json(), reqs[0].json())
        self.assertGaps(reqs, 0.8, 4.0)
        d = self.delivery_of(owner, ep["id"], event["id"], "failed")
        self.assertEqual((d["attempt_count"], d["next_attempt_at"], d["last_status_code"]),
                         (3, None, 500))
        self.assertEqual([a["n"] for a in d["attempts"]], [1, 2, 3])
        for a in d["attempts"]:
            self.assertEqual(a["status_code"], 500)
            self.assertEqual(a["response_body"], big[:4096])  # truncated to 4 KiB
        self.assertEqual(len(rcv.requests("/fail")), 3)  # the schedule is spent
        self.assertEqual(self.endpoint(owner, ep["id"])["disabled"], False)  # 1 < disable-after
        # By hand: attempted again now, with the same webhook-id; the receiver says 200 now.
        r = self.call("POST", "/v1/webhooks/deliveries/%s/retry" % d["id"], token=owner)
        self.assertEqual(r.status, 202, r.body)
        self.assertTrue(DELIVERY_KEYS <= set(r.body), r.body)
        self.assertEqual((r.body["id"], r.body["status"]), (d["id"], "pending"))
        again = rcv.wait_count(4, path="/fail")[3]
        self.assertEqual(again.webhook_id, event["id"])
        self.assertSigned(again, ep["secret"])
        d = self.delivery_of(owner, ep["id"], event["id"], "succeeded")
        self.assertEqual((d["attempt_count"], d["last_status_code"], d["next_attempt_at"]),
                         (4, 200, None))
        self.assertEqual([a["status_code"] for a in d["attempts"]], [500, 500, 500, 200])
        entries = self.wait_for_audit(tenant, "?action=webhook.delivery.retried")
        self.assertEqual(len(entries), 1, entries)
        self.assertEqual(entries[0]["outcome"], "success")

    def test_a_500_then_a_200_succeeds_on_the_second_attempt(self):
        _, owner = self.tenant_and_owner()
        rcv = self.new_receiver()
        rcv.script("/hook", Reply(500))
        ep = self.create_endpoint(owner, rcv.url("/hook"))
        event = self.publish(owner, "order.created", {"n": 1})
        reqs = rcv.wait_count(2, path="/hook")
        self.assertEqual([r.webhook_id for r in reqs], [event["id"]] * 2)
        self.assertGaps(reqs, 0.8, 4.0)
        d = self.delivery_of(owner, ep["id"], event["id"], "succeeded")
        self.assertEqual((d["attempt_count"], d["last_status_code"]), (2, 200))
        self.assertEqual([(a["n"], a["status_code"]) for a in d["attempts"]], [(1, 500), (2, 200)])

    def test_a_slow_receiver_times_out_and_is_retried(self):
        _, owner = self.tenant_and_owner()
        rcv = self.new_receiver()
        rcv.script("/slow", Reply(200, None, 3.0, "too late"))  # timeout-ms is 2000
        ep = self.create_endpoint(owner, rcv.url("/slow"))
        event = self.publish(owner, "order.created", {"n": 1})
        reqs = rcv.wait_count(2, timeout=15, path="/slow")
        self.assertEqual([r.webhook_id for r in reqs], [event["id"]] * 2)
        self.assertGaps(reqs, 1.8, 6.0)  # not before the 2 s timeout ran out
        d = self.delivery_of(owner, ep["id"], event["id"], "succeeded")
        first = d["attempts"][0]
        self.assertIsNone(first["status_code"], first)
        self.assertRegex(first["error"] or "", TIMEOUT_RE)
        self.assertGreaterEqual(first["duration_ms"], 1500, first)
        self.assertLess(first["duration_ms"], 5000, first)
        self.assertEqual(d["attempts"][1]["status_code"], 200)
        self.assertEqual(d["attempt_count"], 2)

    def test_the_publishing_requests_traceparent_is_passed_on(self):
        _, owner = self.tenant_and_owner()
        rcv = self.new_receiver()
        self.create_endpoint(owner, rcv.url("/traced"))
        traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        sent = {}
        for name, header in (("traced", traceparent),
                             ("malformed", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
                             ("zero", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
                             ("none", None)):
            headers = {"traceparent": header} if header else {}
            r = self.call("POST", "/v1/events", {"type": "trace." + name, "payload": {}},
                          token=owner, headers=headers)
            self.assertEqual(r.status, 202, r.body)
            sent[r.body["id"]] = header if name == "traced" else None
        reqs = rcv.wait_count(4, path="/traced")
        for req in reqs:
            with self.subTest(event=req.json()["type"]):
                self.assertEqual(req.headers.get("traceparent"), sent[req.webhook_id])

    def test_tls_certificates_are_verified_against_the_system_store(self):
        _, owner = self.tenant_and_owner()
        rcv = self.new_receiver()
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        cert, key = make_certificate(tmp.name)  # self-signed: in no trust store
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        rcv._server.socket = ctx.wrap_socket(rcv._server.socket, server_side=True)
        ep = self.create_endpoint(owner, "https://127.0.0.1:%d/tls" % rcv.port)
        event = self.publish(owner, "order.created", {"n": 1})
        d = self.delivery_of(owner, ep["id"], event["id"], "failed")
        self.assertEqual(d["attempt_count"], 3)
        for attempt in d["attempts"]:
            self.assertIsNone(attempt["status_code"], attempt)
            self.assertRegex(attempt["error"] or "", r"TLS handshake failed.*certificate", attempt)
        self.assertEqual(rcv.requests("/tls"), [])

    def test_redirects_are_not_followed(self):
        _, owner = self.tenant_and_owner()
        rcv = self.new_receiver()
        rcv.script("/hook", Reply(302, {"Location": rcv.url("/elsewhere")}))
        ep = self.create_endpoint(owner, rcv.url("/hook"))
        event = self.publish(owner, "order.created", {"n": 1})
        reqs = rcv.wait_count(2, path="/hook")
        self.assertGaps(reqs, 0.8, 4.0)  # the 302 was a failed attempt, retried on schedule
        self.assertEqual(rcv.requests("/elsewhere"), [])
        d = self.delivery_of(owner, ep["id"], event["id"], "succeeded")
        self.assertEqual([a["status_code"] for a in d["attempts"]], [302, 200])
        self.assertEqual(rcv.requests("/elsewhere"), [])

    def test_retry_after_of_429_and_503_is_honoured(self):
        _, owner = self.tenant_and_owner()
        rcv = self.new_receiver()
        rcv.script("/busy", Reply(429, {"Retry-After": "2"}))
        rcv.script("/down", Reply(503, {"Retry-After": "2"}))
        busy = self.create_endpoint(owner, rcv.url("/busy"))
        down = self.create_endpoint(owner, rcv.url("/down"))
        event = self.publish(owner, "order.created", {"n": 1})
        for path, ep, status in (("/busy", busy, 429), ("/down", down, 503)):
            with self.subTest(status=status):
                reqs = rcv.wait_count(2, path=path)
                self.assertGaps(reqs, 1.8, 6.0)  # the schedule alone says 1 s
                d = self.delivery_of(owner, ep["id"], event["id"], "succeeded")
                self.assertEqual([a["status_code"] for a in d["attempts"]], [status, 200])

    def test_410_gone_disables_the_endpoint_at_once(self):
        _, owner = self.tenant_and_owner()
        rcv = self.new_receiver()
        rcv.set_default("/gone", Reply(410))
        gone = self.create_endpoint(owner, rcv.url("/gone"))
        witness = self.create_endpoint(owner, rcv.url("/witness"))
        first = self.publish(owner, "order.created", {"n": 1})
        rcv.wait_count(1, path="/gone")
        d = self.delivery_of(owner, gone["id"], first["id"], "failed")
        self.assertEqual((d["attempt_count"], d["last_status_code"], d["next_attempt_at"]),
                         (1, 410, None))
        poll(lambda: self.endpoint(owner, gone["id"])["disabled"], timeout=2)
        ep = self.endpoint(owner, gone["id"])
        self.assertEqual((ep["disabled"], ep["disabled_reason"]), (True, "gone"))
        self.assertFalse(self.endpoint(owner, witness["id"])["disabled"])
        # Later events skip it.
        second = self.publish(owner, "order.created", {"n": 2})
        rcv.wait_ids([second["id"]], path="/witness")
        time.sleep(NEGATIVE_GRACE_S)
        self.assertEqual(len(rcv.requests("/gone")), 1)
        self.assertEqual([x["event_id"] for x in self.deliveries(owner, gone["id"])],
                         [first["id"]])

    def test_consecutive_failed_deliveries_disable_the_endpoint_and_say_so(self):
        tenant, owner = self.tenant_and_owner()
        rcv = self.new_receiver()
        rcv.set_default("/fail", Reply(500))
        failing = self.create_endpoint(owner, rcv.url("/fail"), events=["sync.*"])
        watcher = self.create_endpoint(owner, rcv.url("/watch"), events=["webhook.*"])
        events = [self.publish(owner, "sync.failed", {"n": n}) for n in (1, 2)]
        rcv.wait_count(6, timeout=20, path="/fail")  # 3 attempts each
        for event in events:
            d = self.delivery_of(owner, failing["id"], event["id"], "failed")
            self.assertEqual(d["attempt_count"], 3)
        notices = rcv.wait_for(lambda reqs: reqs, timeout=15, path="/watch",
                               what="webhook.endpoint.disabled")
        notice = notices[0]
        self.assertSigned(notice, watcher["secret"])
        body = notice.json()
        self.assertEqual(body["type"], "webhook.endpoint.disabled")
        self.assertEqual(body["tenant_id"], tenant["id"])
        self.assertEqual(body["payload"], {"endpoint_id": failing["id"], "reason": "failures"})
        self.assertEqual(notice.webhook_id, body["id"])
        ep = self.endpoint(owner, failing["id"])
        self.assertEqual((ep["disabled"], ep["disabled_reason"]), (True, "failures"))
        self.assertFalse(self.endpoint(owner, watcher["id"])["disabled"])
        entries = self.wait_for_audit(tenant, "?action=webhook.endpoint.disabled")
        self.assertTrue(entries)
        self.assertIn(failing["id"], [e["resource"]["id"] for e in entries], entries)
        self.assertEqual([r.json()["type"] for r in rcv.requests("/watch")],
                         ["webhook.endpoint.disabled"])
        self.assertEqual(len(rcv.requests("/fail")), 6)

    def test_an_ordered_endpoint_delivers_one_at_a_time_in_order(self):
        _, owner = self.tenant_and_owner()
        rcv = self.new_receiver()
        rcv.script("/ordered", Reply(500))  # the first request of e1 fails once
        ep = self.create_endpoint(owner, rcv.url("/ordered"), ordered=True)
        self.assertIs(ep["ordered"], True)
        ids = [self.publish(owner, "ledger.entry", {"seq": n})["id"] for n in range(1, 6)]
        reqs = rcv.wait_count(6, timeout=15, path="/ordered")
        self.assertEqual([r.webhook_id for r in reqs], [ids[0]] + ids,
                         "arrival order, e1 retried before e2 is sent")
        self.assertEqual([r.status for r in reqs], [500] + [200] * 5)
        self.assertEqual([r.json()["payload"]["seq"] for r in reqs], [1, 1, 2, 3, 4, 5])
        for event_id in ids:
            self.delivery_of(owner, ep["id"], event_id, "succeeded")
        self.assertEqual(len(rcv.requests("/ordered")), 6)

    def test_rate_limit_per_s_spreads_the_deliveries(self):
        _, owner = self.tenant_and_owner()
        rcv = self.new_receiver()
        ep = self.create_endpoint(owner, rcv.url("/limited"), rate_limit_per_s=5)
        self.assertEqual(ep["rate_limit_per_s"], 5)
        ids = [self.publish(owner, "order.created", {"n": n})["id"] for n in range(15)]
        reqs = rcv.wait_ids(ids, timeout=20, path="/limited")
        span = reqs[-1].mono - reqs[0].mono
        # 15 at 5/s: at least 2 s even with a burst of 5 (a little slack for the clock).
        self.assertGreaterEqual(span, 1.9, "15 deliveries in %.2f s" % span)
        print("rate limit: 15 deliveries at 5/s took %.2f s" % span)

    # -- event types, platform events, audit ------------------------------------------------

    def test_event_types_are_listed_and_registered(self):
        _, owner = self.tenant_and_owner()
        path = "/v1/webhooks/event-types"
        r = self.call("GET", path + "?limit=200", token=owner)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(set(r.body), {"data", "next_cursor"})
        by_name = {t["name"]: t for t in r.body["data"]}
        for name in ("user.created", "user.deleted", "webhook.endpoint.disabled"):
            self.assertIn(name, by_name)
            self.assertEqual(set(by_name[name]), EVENT_TYPE_KEYS)
            self.assertIs(by_name[name]["builtin"], True)
            self.assertIsNone(by_name[name]["created_at"])
        r = self.call("POST", path, {"name": "order.shipped",
                                     "description": "An order left the warehouse"}, token=owner)
        self.assertEqual(r.status, 201, r.body)
        self.assertIsNotNone(r.headers.get("location"))
        self.assertEqual(set(r.body), EVENT_TYPE_KEYS)
        self.assertEqual((r.body["name"], r.body["description"], r.body["builtin"]),
                         ("order.shipped", "An order left the warehouse", False))
        self.assertRegex(r.body["created_at"], TS_RE)
        r = self.call("POST", path, {"name": "order.paid"}, token=owner)
        self.assertEqual(r.status, 201, r.body)
        self.assertIsNone(r.body["description"])
        for name in ("order.shipped", "user.created"):
            self.assertProblem(self.call("POST", path, {"name": name}, token=owner), 409,
                               "conflict")
        for name in ("Order.Shipped", "a..b", "order.*", ""):
            with self.subTest(name=name):
                self.assertPointer(self.call("POST", path, {"name": name}, token=owner), "/name")
        self.assertProblem(self.call("POST", path, {"name": "x.y", "colour": "red"}, token=owner),
                           400, "validation-failed")
        listed = {t["name"]: t for t in self.call("GET", path + "?limit=200",
                                                  token=owner).body["data"]}
        self.assertIs(listed["order.shipped"]["builtin"], False)
        self.assertIs(listed["order.paid"]["builtin"], False)
        self.assertNotIn("x.y", listed)

    def test_deleting_a_user_emits_user_deleted(self):
        tenant, owner = self.tenant_and_owner()
        rcv = self.new_receiver()
        deleted = self.create_endpoint(owner, rcv.url("/deleted"), events=["user.deleted"])
        self.create_endpoint(owner, rcv.url("/users"), events=["user.*"])
        member = self.signup(tenant)
        r = self.call("DELETE", "/v1/users/" + member["id"], token=owner)
        self.assertEqual(r.status, 204, r.body)
        req = rcv.wait_count(1, path="/deleted")[0]
        self.assertSigned(req, deleted["secret"])
        body = req.json()
        self.assertEqual((body["type"], body["tenant_id"]), ("user.deleted", tenant["id"]))
        self.assertEqual(set(body["payload"]), {"user"})
        self.assertEqual(body["payload"]["user"]["id"], member["id"])
        both = rcv.wait_for(lambda reqs: reqs if {r.json()["type"] for r in reqs}
                            >= {"user.created", "user.deleted"} else None, path="/users",
                            what="user.created and user.deleted")
        for r in both:
            self.assertEqual(r.json()["payload"]["user"]["id"], member["id"])
        self.assertEqual([r.json()["type"] for r in rcv.requests("/deleted")], ["user.deleted"])

    def test_webhook_changes_are_audited_without_the_secret(self):
        tenant, owner = self.tenant_and_owner()
        ep = self.create_endpoint(owner, "http://127.0.0.1:9/audited")  # nothing listens
        path = "%s/%s" % (ENDPOINTS, ep["id"])
        self.assertEqual(self.call("PATCH", path, {"description": "Audited"}, token=owner).status,
                         200)
        rotated = self.call("POST", path + "/rotate-secret", token=owner).body["secret"]
        self.publish(owner, "order.created", {"n": 1})
        self.assertEqual(self.call("DELETE", path, token=owner).status, 204)
        entries = self.audit(tenant, "?limit=200")
        by_action = {}
        for e in entries:
            by_action.setdefault(e["action"], []).append(e)
        for action in ("webhook.endpoint.created", "webhook.endpoint.updated",
                       "webhook.endpoint.secret_rotated", "webhook.endpoint.deleted"):
            with self.subTest(action=action):
                self.assertEqual(len(by_action.get(action, [])), 1, sorted(by_action))
                entry = by_action[action][0]
                self.assertEqual(entry["resource"]["id"], ep["id"])
                self.assertEqual(entry["outcome"], "success")
                self.assertEqual(entry["actor"]["id"], tenant["owner"]["id"])
        published = [e for e in by_action.get("event.published", [])
                     if e["actor"]["id"] == tenant["owner"]["id"]]
        self.assertEqual(len(published), 1, sorted(by_action))
        export = self.raw_admin_get(tenant, "/v1/audit/export")
        parsed = [json.loads(line) for line in export.splitlines() if line.strip()]
        # Raw and re-encoded (a JSON writer may escape the "/" of base64 as "\/").
        for text in (json.dumps(entries), self.raw_admin_get(tenant, "/v1/audit?limit=200"),
                     export, json.dumps(parsed)):
            self.assertSecretsAbsent(text, ep["secret"], rotated)


class PrivateTargetsTest(WebhookMixin, ServerTestCase):
    """webhooks.allow-private-targets=false (the default)."""

    server_args = BASE_ARGS + ("--webhooks.retry-schedule=[1,1]", "--webhooks.timeout-ms=2000")

    def test_private_and_loopback_urls_are_refused_at_creation(self):
        _, owner = self.tenant_and_owner()
        for url in ("http://127.0.0.1:9/", "http://[::1]:9/", "http://10.0.0.1/",
                    "http://169.254.169.254/latest/meta-data/", "http://localhost:9/",
                    "http://192.168.1.1/hook", "http://172.16.0.1/hook", "http://0.0.0.0:9/",
                    "http://[::ffff:127.0.0.1]:9/"):
            with self.subTest(url=url):
                self.assertPointer(self.call("POST", ENDPOINTS, {"url": url}, token=owner), "/url")
        ep = self.create_endpoint(owner, "https://hooks.example.com/public")
        r = self.call("PATCH", "%s/%s" % (ENDPOINTS, ep["id"]), {"url": "http://127.0.0.1:9/"},
                      token=owner)
        self.assertPointer(r, "/url")
        self.assertEqual(self.endpoint(owner, ep["id"])["url"], "https://hooks.example.com/public")
        self.assertEqual([e["id"] for e in self.call("GET", ENDPOINTS, token=owner).body["data"]],
                         [ep["id"]])

    def test_a_name_that_resolves_to_a_private_address_is_refused_when_delivering(self):
        name = socket.gethostname().lower()
        if not re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*",
                            name) or name == "localhost" or re.fullmatch(r"[0-9.]+", name):
            self.skipTest("host name %r is not usable in a URL" % name)
        try:
            infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
        except socket.gaierror:
            self.skipTest("host name %r does not resolve" % name)
        addrs = {ipaddress.ip_address(i[4][0].split("%")[0]) for i in infos}
        if not addrs or not all(a.is_loopback or a.is_private or a.is_link_local for a in addrs):
            self.skipTest("host name %r resolves to %s, not only to private addresses"
                          % (name, sorted(map(str, addrs))))
        # Listen where the name leads, so that a request getting through would be seen.
        host = str(sorted(addrs, key=lambda a: a.version)[0])
        try:
            rcv = self.new_receiver(host)
        except OSError as e:
            self.skipTest("cannot listen on %s: %s" % (host, e))
        _, owner = self.tenant_and_owner()
        ep = self.create_endpoint(owner, "http://%s:%d/hook" % (name, rcv.port))
        event = self.publish(owner, "probe.sent", {"n": 1})
        d = self.delivery_of(owner, ep["id"], event["id"], "failed", timeout=15)
        self.assertEqual(d["attempt_count"], 3)
        for a in d["attempts"]:
            self.assertIsNone(a["status_code"], a)
            self.assertIn("refused", (a["error"] or "").lower(), a)
        self.assertEqual(rcv.requests(), [])


class CrashSafetyTest(WebhookMixin, unittest.TestCase):
    """At-least-once across a crash: kill -9 while events are being published; a server started
    on the same database and working directory delivers every event that got a 202."""

    server_args = BASE_ARGS + ("--webhooks.allow-private-targets=true",
                               "--webhooks.retry-schedule=[1,1,1,1,1]")
    TOTAL = 1000
    KILL_AFTER = 300
    THREADS = 8

    def test_every_accepted_event_is_delivered_after_a_kill_9(self):
        rcv = self.new_receiver()
        workdir = tempfile.TemporaryDirectory(prefix="troupe-e2e-crash-")
        self.addCleanup(workdir.cleanup)
        os.chmod(workdir.name, 0o755)  # an embedded PostgreSQL runs as the postgres user
        lock = threading.Lock()
        accepted, errors = [], []
        numbers = itertools.count()
        killed = threading.Event()
        with Server(*self.server_args, cwd=workdir.name) as first:
            self.srv = first
            tenant, owner = self.tenant_and_owner()
            ep = self.create_endpoint(owner, rcv.url("/crash"))

            def publisher():
                n = next(numbers)
                while not killed.is_set() and n < self.TOTAL:
                    try:
                        r = self.call("POST", "/v1/events",
                                      {"type": "crash.test", "payload": {"n": n}}, token=owner)
                    except (OSError, http.client.HTTPException, ValueError) as e:
                        if not killed.is_set():
                            with lock:
                                errors.append(repr(e))
                        return
                    if r.status in (429, 503):  # not accepted: saturated, try it again
                        time.sleep(0.05)
                        continue
                    with lock:
                        if r.status == 202:
                            accepted.append(r.body["id"])
                        elif not killed.is_set():
                            errors.append((r.status, r.body))
                    n = next(numbers)

            threads = [threading.Thread(target=publisher, daemon=True)
                       for _ in range(self.THREADS)]
            for t in threads:
                t.start()
            poll(lambda: len(accepted) >= self.KILL_AFTER
                 or not any(t.is_alive() for t in threads), timeout=60, interval=0.005)
            killed.set()
            first.kill()  # SIGKILL
            for t in threads:
                t.join(30)
            self.assertEqual(errors, [])
            self.assertGreaterEqual(len(accepted), self.KILL_AFTER)
            delivered_before = len(set(rcv.ids("/crash")))
        with lock:
            wanted = list(accepted)
        again = Server("--admin.token=" + first.admin_token, *self.server_args, cwd=workdir.name)
        with again:  # starts it
            self.srv = again
            reqs = rcv.wait_ids(wanted, timeout=60, path="/crash")
            ids = [r.webhook_id for r in reqs]
            print("crash safety: %d events accepted before kill -9 (%d delivered before it); "
                  "after the restart all of them arrived: %d distinct ids in %d requests"
                  % (len(wanted), delivered_before, len(set(ids)), len(ids)))
            for r in reqs[-3:]:  # still signed with the endpoint's secret
                self.assertSigned(r, ep["secret"])
                self.assertEqual(r.json()["tenant_id"], tenant["id"])
            self.assertEqual(again.stop(signal.SIGTERM), 0)


if __name__ == "__main__":
    unittest.main()
