"""Inbound webhooks end to end (API.md "Inbound webhooks", "Audit log"): sources configured by
tenant admins without ever showing their secret, Standard Webhooks, Stripe and GitHub signatures
verified (bad, missing or stale → 401), duplicates recognised by the provider's event id, each
accepted event re-emitted once as `inbound.<source>` to subscribed endpoints, the list of
received events, and the audit trail.

The test signs like the provider would (webhook_receiver's signature helpers). Each test
creates its own tenant; one server for the class."""

import base64
import json
import os
import time
import unittest
import urllib.parse
import uuid

from support import UUID7_RE, ServerTestCase
from test_auth import TS_RE
from test_webhooks import BASE_ARGS, NEGATIVE_GRACE_S, WebhookMixin
from webhook_receiver import github_signature, standard_headers, stripe_signature

SOURCE_KEYS = {"name", "scheme", "tolerance_s", "created_at", "updated_at"}
INBOUND_EVENT_KEYS = {"id", "source", "provider_event_id", "event_id", "received_at", "body"}


def std_secret(size=32):
    return "whsec_" + base64.b64encode(os.urandom(size)).decode()


class InboundTest(WebhookMixin, ServerTestCase):
    server_args = BASE_ARGS + ("--webhooks.allow-private-targets=true",
                               "--webhooks.retry-schedule=[1,1]")

    def put_source(self, token, name, body):
        return self.call("PUT", "/v1/inbound/sources/" + urllib.parse.quote(name, safe=""), body,
                         token=token)

    def source(self, token, name, scheme, secret, **extra):
        r = self.put_source(token, name, dict(extra, scheme=scheme, secret=secret))
        self.assertEqual(r.status, 200, r.body)
        return r.body

    def send(self, tenant, source, raw, headers):
        """An unauthenticated POST /v1/inbound/{source}, as the provider sends it."""
        return self.call("POST", "/v1/inbound/" + source, raw=raw, tenant=tenant["slug"],
                         headers=headers)

    def assertAccepted(self, r, duplicate=False, inbound_id=None):
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(set(r.body), {"id", "duplicate"})
        self.assertIs(r.body["duplicate"], duplicate)
        self.assertRegex(r.body["id"], UUID7_RE)
        if inbound_id is not None:
            self.assertEqual(r.body["id"], inbound_id)
        return r.body["id"]

    def assertRefused(self, r):
        self.assertProblem(r, 401, "unauthenticated")

    # -- sources ---------------------------------------------------------------------------

    def test_sources_are_configured_by_tenant_admins_without_their_secret(self):
        tenant, owner = self.tenant_and_owner()
        secret = std_secret()
        src = self.source(owner, "billing", "standard-webhooks", secret)
        self.assertEqual(set(src), SOURCE_KEYS)
        self.assertEqual((src["name"], src["scheme"], src["tolerance_s"]),
                         ("billing", "standard-webhooks", 300))
        self.assertRegex(src["created_at"], TS_RE)
        self.assertRegex(src["updated_at"], TS_RE)
        # PUT again: the same source, changed.
        again = self.source(owner, "billing", "standard-webhooks", std_secret(64), tolerance_s=60)
        self.assertEqual(again["tolerance_s"], 60)
        self.assertEqual(again["created_at"], src["created_at"])
        self.assertGreaterEqual(again["updated_at"], src["updated_at"])
        stripe_secret = "whsec_stripe_" + os.urandom(8).hex()
        github_secret = "gh-secret-" + os.urandom(8).hex()
        self.assertEqual(self.source(owner, "pay_1", "stripe", stripe_secret)["scheme"], "stripe")
        self.assertEqual(self.source(owner, "gh", "github", github_secret)["scheme"], "github")
        # Names, schemes and secrets are checked.
        for name in ("Billing", "bad-name", "a" * 65, "has space", "dot.ted"):
            with self.subTest(name=name):
                r = self.put_source(owner, name, {"scheme": "github", "secret": github_secret})
                self.assertEqual(r.status, 400, r.body)
                self.assertEqual(r.headers.get("content-type"), "application/problem+json")
        self.assertEqual(self.source(owner, "a" * 64, "github", github_secret)["name"], "a" * 64)
        for body, pointer in (({"scheme": "svix", "secret": github_secret}, "/scheme"),
                              ({"secret": github_secret}, "/scheme"),
                              ({"scheme": "github"}, "/secret"),
                              ({"scheme": "standard-webhooks", "secret": std_secret(8)}, "/secret"),
                              ({"scheme": "standard-webhooks", "secret": std_secret(100)},
                               "/secret"),
                              ({"scheme": "standard-webhooks", "secret": "whsec_***"}, "/secret"),
                              ({"scheme": "stripe", "secret": "short12"}, "/secret"),
                              ({"scheme": "stripe", "secret": "s" * 257}, "/secret"),
                              ({"scheme": "github", "secret": "short12"}, "/secret")):
            with self.subTest(body=body):
                self.assertPointer(self.put_source(owner, "checked", body), pointer)
        self.assertProblem(self.put_source(owner, "checked", {"scheme": "github",
                                                              "secret": github_secret,
                                                              "colour": "red"}),
                           400, "validation-failed")
        # tenant:admin only: an admin (everything else) may not.
        admin = self.new_admin(tenant, owner)
        self.assertForbidden(self.put_source(admin["token"], "billing",
                                             {"scheme": "github", "secret": github_secret}),
                             "tenant:admin")
        entries = self.audit(tenant, "?action=inbound.source.updated&outcome=success")
        self.assertEqual(len(entries), 5, entries)  # billing twice, pay_1, gh, a…a
        text = json.dumps(entries) + self.raw_admin_get(tenant, "/v1/audit?limit=200")
        for s in (secret, secret[len("whsec_"):], stripe_secret, github_secret):
            self.assertNotIn(s, text)

    # -- verification ----------------------------------------------------------------------

    def test_standard_webhooks_signatures_are_verified(self):
        tenant, owner = self.tenant_and_owner()
        secret = std_secret()
        self.source(owner, "std", "standard-webhooks", secret, tolerance_s=60)
        raw = json.dumps({"type": "invoice.paid", "data": {"amount": 100, "note": "ünï"}},
                         ensure_ascii=False).encode("utf-8")
        msg = "msg_" + os.urandom(6).hex()
        first = self.assertAccepted(self.send(tenant, "std", raw, standard_headers(secret, msg,
                                                                                   raw)))
        # The same provider event again, validly signed (a fresh timestamp): a duplicate.
        self.assertAccepted(self.send(tenant, "std", raw, standard_headers(secret, msg, raw)),
                            duplicate=True, inbound_id=first)
        # Refused: another secret, another body, no signature, a bad one, a stale timestamp.
        stale_msg = "msg_" + os.urandom(6).hex()
        good = standard_headers(secret, "msg_x", raw)
        no_signature = {k: v for k, v in good.items() if k != "webhook-signature"}
        for what, body, headers in (
                ("another secret", raw, standard_headers(std_secret(), "msg_y", raw)),
                ("another body", raw + b" ", good),
                ("no signature", raw, no_signature),
                ("no headers", raw, {}),
                ("a bad signature", raw, dict(good, **{"webhook-signature": "v1,AAAA"})),
                ("a stale timestamp", raw, standard_headers(secret, stale_msg, raw,
                                                            int(time.time()) - 120))):
            with self.subTest(what):
                self.assertRefused(self.send(tenant, "std", body, headers))
        # A refused request was not recorded: the stale one's id, validly signed now, is new.
        self.assertAccepted(self.send(tenant, "std", raw, standard_headers(secret, stale_msg,
                                                                           raw)))
        # Any of several space-separated signatures may match (a provider rotating its secret).
        rotated = standard_headers(secret, "msg_" + os.urandom(6).hex(), raw)
        rotated["webhook-signature"] = "v1,bm90IGl0 " + rotated["webhook-signature"]
        self.assertAccepted(self.send(tenant, "std", raw, rotated))
        # Unknown source or tenant: 404; not JSON (validly signed): 400.
        self.assertProblem(self.send(tenant, "nosuch", raw, standard_headers(secret, msg, raw)),
                           404, "not-found")
        r = self.call("POST", "/v1/inbound/std", raw=raw, tenant="no-such-tenant-" +
                      os.urandom(3).hex(), headers=standard_headers(secret, msg, raw))
        self.assertEqual(r.status, 404, r.body)
        not_json = b"not json at all"
        r = self.send(tenant, "std", not_json, standard_headers(secret, "msg_nj", not_json))
        self.assertEqual(r.status, 400, r.body)
        self.assertEqual(r.headers.get("content-type"), "application/problem+json")

    def test_stripe_signatures_are_verified(self):
        tenant, owner = self.tenant_and_owner()
        secret = "whsec_stripe_" + os.urandom(12).hex()  # used as it is, prefix included
        self.source(owner, "payments", "stripe", secret)
        event_id = "evt_" + os.urandom(8).hex()
        raw = json.dumps({"id": event_id, "type": "charge.succeeded",
                          "data": {"object": {"amount": 2000}}}).encode()

        def signed(body, at=None, key=secret):
            return {"Stripe-Signature": stripe_signature(key, int(time.time()) if at is None
                                                         else at, body)}

        first = self.assertAccepted(self.send(tenant, "payments", raw, signed(raw)))
        self.assertAccepted(self.send(tenant, "payments", raw, signed(raw)), duplicate=True,
                            inbound_id=first)
        now = int(time.time())
        for what, body, headers in (
                ("another secret", raw, signed(raw, key="whsec_other_secret")),
                ("another body", raw + b"\n", signed(raw)),
                ("no header", raw, {}),
                ("a bad signature", raw, {"Stripe-Signature": "t=%d,v1=%s" % (now, "0" * 64)}),
                ("a stale timestamp", raw, signed(raw, at=now - 400)),
                ("a malformed header", raw, {"Stripe-Signature": "garbage"})):
            with self.subTest(what):
                self.assertRefused(self.send(tenant, "payments", body, headers))
        # Several v1 entries: one matching is enough.
        other = json.dumps({"id": "evt_" + os.urandom(8).hex(), "type": "x"}).encode()
        header = signed(other)["Stripe-Signature"]
        t, v1 = header.split(",")
        self.assertAccepted(self.send(tenant, "payments", other,
                                      {"Stripe-Signature": "%s,v1=%s,%s" % (t, "0" * 64, v1)}))
        # The provider's event id is the body's "id": without one, 400.
        no_id = json.dumps({"type": "charge.succeeded"}).encode()
        r = self.send(tenant, "payments", no_id, signed(no_id))
        self.assertEqual(r.status, 400, r.body)
        not_json = b"<xml/>"
        self.assertEqual(self.send(tenant, "payments", not_json, signed(not_json)).status, 400)

    def test_github_signatures_are_verified(self):
        tenant, owner = self.tenant_and_owner()
        secret = "gh-" + os.urandom(12).hex()
        self.source(owner, "repo", "github", secret)
        raw = json.dumps({"action": "opened", "number": 7}).encode()
        delivery = str(uuid.uuid4())

        def signed(body, key=secret, delivery_id=delivery):
            headers = {"X-Hub-Signature-256": github_signature(key, body),
                       "X-GitHub-Event": "pull_request"}
            if delivery_id:
                headers["X-GitHub-Delivery"] = delivery_id
            return headers

        first = self.assertAccepted(self.send(tenant, "repo", raw, signed(raw)))
        self.assertAccepted(self.send(tenant, "repo", raw, signed(raw)), duplicate=True,
                            inbound_id=first)
        for what, body, headers in (
                ("another secret", raw, signed(raw, key="not-the-secret")),
                ("another body", raw + b" ", signed(raw)),
                ("no signature", raw, {"X-GitHub-Delivery": str(uuid.uuid4())}),
                ("a bad signature", raw, dict(signed(raw), **{
                    "X-Hub-Signature-256": "sha256=" + "0" * 64}))):
            with self.subTest(what):
                self.assertRefused(self.send(tenant, "repo", body, headers))
        # The provider's event id is X-GitHub-Delivery: without it, 400.
        r = self.send(tenant, "repo", raw, signed(raw, delivery_id=None))
        self.assertEqual(r.status, 400, r.body)
        self.assertAccepted(self.send(tenant, "repo", raw, signed(raw,
                                                                  delivery_id=str(uuid.uuid4()))))

    # -- what happens with an accepted event -------------------------------------------------

    def test_accepted_events_are_emitted_once_listed_and_audited(self):
        tenant, owner = self.tenant_and_owner()
        rcv = self.new_receiver()
        ep = self.create_endpoint(owner, rcv.url("/inbound"), events=["inbound.*"])
        secret = "gh-" + os.urandom(12).hex()
        self.source(owner, "shop", "github", secret)
        sent = []
        for n in (1, 2):
            body = {"action": "created", "order": n}
            raw = json.dumps(body).encode()
            delivery = str(uuid.uuid4())
            headers = {"X-Hub-Signature-256": github_signature(secret, raw),
                       "X-GitHub-Delivery": delivery}
            inbound_id = self.assertAccepted(self.send(tenant, "shop", raw, headers))
            sent.append((inbound_id, delivery, body))
            if n == 1:  # a duplicate: no second event
                self.assertAccepted(self.send(tenant, "shop", raw, headers), duplicate=True,
                                    inbound_id=inbound_id)
        reqs = rcv.wait_count(2, path="/inbound")
        event_ids = {}
        for req in reqs:
            self.assertSigned(req, ep["secret"])
            event = req.json()
            self.assertEqual(event["type"], "inbound.shop")
            self.assertEqual(event["tenant_id"], tenant["id"])
            event_ids[event["payload"]["provider_event_id"]] = event["id"]
        self.assertEqual(sorted(r.json()["payload"]["provider_event_id"] for r in reqs),
                         sorted(s[1] for s in sent))
        for req in reqs:
            payload = req.json()["payload"]
            body = [s[2] for s in sent if s[1] == payload["provider_event_id"]][0]
            self.assertEqual(payload, {"source": "shop",
                                       "provider_event_id": payload["provider_event_id"],
                                       "body": body})
        time.sleep(NEGATIVE_GRACE_S)
        self.assertEqual(len(rcv.requests("/inbound")), 2, rcv.requests("/inbound"))
        # The list, newest first.
        r = self.call("GET", "/v1/inbound/events?source=shop", token=owner)
        self.assertEqual(r.status, 200, r.body)
        self.assertIsNone(r.body["next_cursor"])
        listed = r.body["data"]
        self.assertEqual([x["id"] for x in listed], [sent[1][0], sent[0][0]])
        for item, (inbound_id, delivery, body) in zip(listed, reversed(sent)):
            self.assertEqual(set(item), INBOUND_EVENT_KEYS)
            self.assertEqual((item["source"], item["provider_event_id"], item["body"]),
                             ("shop", delivery, body))
            self.assertEqual(item["event_id"], event_ids[delivery])
            self.assertRegex(item["received_at"], TS_RE)
        r = self.call("GET", "/v1/inbound/events?source=other", token=owner)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body["data"], [])
        # webhooks:read reads them (a viewer), a member does not.
        viewer = self.new_member(tenant)
        self.grant(owner, viewer["id"], ["viewer"])
        self.assertEqual(self.call("GET", "/v1/inbound/events?source=shop",
                                   token=viewer["token"]).status, 200)
        member = self.new_member(tenant)
        self.assertForbidden(self.call("GET", "/v1/inbound/events?source=shop",
                                       token=member["token"]), "webhooks:read")
        entries = self.wait_for_audit(tenant, "?action=inbound.received",
                                      lambda entries: len(entries) >= 2)
        self.assertGreaterEqual(len(entries), 2, entries)
        self.assertNotIn(secret, self.raw_admin_get(tenant, "/v1/audit?limit=200"))


if __name__ == "__main__":
    unittest.main()
