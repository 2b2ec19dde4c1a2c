"""Authentication end to end (API.md "Tenancy and authentication", "Auth"; docs/auth.md):
signup, login, access tokens and the JWKS, refresh rotation and reuse, logout, sessions,
password change, login throttling, TOTP MFA with recovery codes, API keys, tenant resolution
from credentials, the audit trail of all of it, and token verification by an independent JOSE
library (tests/jose, run with node).

Each test creates its own tenant through the platform API; one server per class. Where
timing is not under test, password hashing runs with cheap argon2 parameters."""

import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import statistics
import struct
import subprocess
import time
import unittest
from collections import namedtuple

from support import UUID7_RE, ServerTestCase, http_request, psql

PASSWORD = "correct horse battery"
CHEAP_ARGON2 = ("--auth.argon2-memory-kib=1024", "--auth.argon2-iterations=1")
# Rate limiting is not under test here: every test logs in from 127.0.0.1.
NO_ANONYMOUS_LIMIT = "--limits.anonymous=[100000,60]"
DEFAULT_ACCESS_TTL_S = 900

TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
B64URL_RE = re.compile(r"^[A-Za-z0-9_-]+$")
BASE32_RE = re.compile(r"^[A-Z2-7]+=*$")
RECOVERY_CODE_RE = re.compile(r"^[A-Za-z0-9]{5}-[A-Za-z0-9]{5}$")
USER_KEYS = {"id", "email", "display_name", "roles", "mfa_enabled", "created_at"}
TOKENS_KEYS = {"access_token", "token_type", "expires_in", "refresh_token", "user"}
SESSION_KEYS = {"id", "created_at", "last_used_at", "ip", "user_agent", "current"}
API_KEY_KEYS = {"id", "name", "prefix", "key", "permissions", "created_at", "expires_at"}
CLAIMS = {"iss", "sub", "tid", "sid", "iat", "exp", "jti"}
MEMBER_PERMISSIONS = {"events:publish", "jobs:read", "functions:invoke", "users:read"}
REVOCATION_S = 1.0  # API.md: every revocation takes effect within 1 s

R = namedtuple("R", "status headers body")

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
JOSE_DIR = os.path.join(ROOT, "tests", "jose")


# -- helpers without a server ---------------------------------------------------------------


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_parts(token):
    """(header, payload) of a compact JWS, decoded without any verification."""
    header, payload, _ = token.split(".")
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(payload))


def tampered(token):
    """The token with one character in the middle of its payload changed (still base64url)."""
    header, payload, signature = token.split(".")
    i = len(payload) // 2
    payload = payload[:i] + ("B" if payload[i] != "B" else "C") + payload[i + 1:]
    return ".".join((header, payload, signature))


def unsigned(token):
    """The token's claims under {"alg":"none"} and an empty signature."""
    header, _ = jwt_parts(token)
    header["alg"] = "none"
    head = b64url_encode(json.dumps(header).encode())
    return head + "." + token.split(".")[1] + "."


def hs256_with(token, secret):
    """The token's claims re-signed with HMAC-SHA256 under `secret` (the alg-confusion attack:
    the public key used as an HMAC key)."""
    header, _ = jwt_parts(token)
    header["alg"] = "HS256"
    signing_input = b64url_encode(json.dumps(header).encode()) + "." + token.split(".")[1]
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url_encode(mac)


def totp(secret_b32, step, digits=6):
    """RFC 6238 (HOTP of the 30-second time step, RFC 4226), HMAC-SHA-1."""
    key = base64.b32decode(secret_b32.upper() + "=" * (-len(secret_b32) % 8))
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    number = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10 ** digits).zfill(digits)


def time_step(now=None):
    return int(time.time() if now is None else now) // 30


def wrong_code(secret, step):
    """A six-digit code that is no code of the steps around `step`."""
    near = {totp(secret, s) for s in range(step - 3, step + 4)}
    for candidate in ("000000", "111111", "123456", "999999", "424242"):
        if candidate not in near:
            return candidate
    raise AssertionError("unreachable")


def new_slug(prefix="auth"):
    return "%s-%s" % (prefix, os.urandom(5).hex())


def new_email(prefix="user"):
    return "%s.%s@example.com" % (prefix, os.urandom(4).hex())


class TotpHelperTest(unittest.TestCase):
    """The test's own TOTP against RFC 6238 appendix B (SHA-1, truncated to 6 digits)."""

    def test_rfc6238_vectors(self):
        secret = base64.b32encode(b"12345678901234567890").decode()
        for unix, code8 in ((59, "94287082"), (1111111109, "07081804"),
                            (1234567890, "89005924"), (2000000000, "69279037")):
            self.assertEqual(totp(secret, time_step(unix)), code8[2:])


# -- the client ------------------------------------------------------------------------------


class AuthMixin:
    def call(self, method, path, body=None, token=None, tenant=None, headers=None, raw=None):
        """One request: `token` goes into Authorization: Bearer, `tenant` into X-Tenant."""
        hdrs = {}
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        if tenant is not None:
            hdrs["X-Tenant"] = tenant
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        status, rh, payload = http_request(self.srv, method, path, body=data, headers=hdrs,
                                           timeout=30)
        ctype = rh.get("content-type", "")
        parsed = payload
        if payload and "json" in ctype and "ndjson" not in ctype:
            parsed = json.loads(payload)
        elif not payload:
            parsed = None
        return R(status, rh, parsed)

    def admin(self, method, path, body=None, tenant=None):
        return self.call(method, path, body, token=self.srv.admin_token, tenant=tenant)

    def new_tenant(self):
        """A fresh tenant; returns its record plus the owner's password under "password"."""
        email = new_email("owner")
        r = self.admin("POST", "/admin/v1/tenants", {
            "slug": new_slug(), "name": "Auth Co",
            "owner": {"email": email, "password": PASSWORD}})
        self.assertEqual(r.status, 201, r.body)
        tenant = dict(r.body)
        tenant["owner"] = dict(tenant["owner"], password=PASSWORD)
        return tenant

    def signup(self, tenant, email=None, password=PASSWORD, **extra):
        body = {"email": email or new_email(), "password": password}
        body.update(extra)
        r = self.call("POST", "/v1/auth/signup", body, tenant=tenant["slug"])
        self.assertEqual(r.status, 201, r.body)
        user = r.body["user"]
        user["password"] = password
        return user

    def try_login(self, tenant, email, password, user_agent=None):
        headers = {"User-Agent": user_agent} if user_agent else None
        return self.call("POST", "/v1/auth/login", {"email": email, "password": password},
                         tenant=tenant["slug"], headers=headers)

    def login(self, tenant, user, user_agent=None):
        """Tokens of a user without MFA (user: anything with "email" and "password")."""
        r = self.try_login(tenant, user["email"], user["password"], user_agent)
        self.assertEqual(r.status, 200, r.body)
        self.assertIn("access_token", r.body, r.body)
        return r.body

    def owner_login(self, tenant):
        return self.login(tenant, tenant["owner"])

    def me(self, access_token, tenant=None):
        return self.call("GET", "/v1/users/me", token=access_token, tenant=tenant)

    def refresh(self, refresh_token, tenant=None):
        return self.call("POST", "/v1/auth/refresh", {"refresh_token": refresh_token},
                         tenant=tenant)

    def audit(self, tenant, query):
        r = self.admin("GET", "/v1/audit" + query, tenant=tenant["slug"])
        self.assertEqual(r.status, 200, r.body)
        self.assertIsNone(r.body["next_cursor"], "more entries than one page")
        return r.body["data"]

    # -- assertions --------------------------------------------------------------------------

    def assertProblem(self, r, status, code):
        self.assertEqual(r.status, status, r.body)
        self.assertEqual(r.headers.get("content-type"), "application/problem+json", r.body)
        self.assertEqual(r.body["code"], code, r.body)
        self.assertEqual(r.body["status"], status, r.body)
        self.assertEqual(r.body["request_id"], r.headers.get("x-request-id"))

    def assertUnauthenticated(self, r, token_sent=True):
        self.assertProblem(r, 401, "unauthenticated")
        challenge = r.headers.get("www-authenticate", "")
        self.assertTrue(challenge.startswith("Bearer"), r.headers)
        if token_sent:
            self.assertIn('error="invalid_token"', challenge)
        else:
            self.assertEqual(challenge, "Bearer")

    def assertForbidden(self, r, permission):
        self.assertProblem(r, 403, "forbidden")
        self.assertEqual(r.body.get("required_permission"), permission, r.body)

    def assertPointers(self, r, *pointers):
        self.assertProblem(r, 400, "validation-failed")
        got = [e["pointer"] for e in r.body.get("errors", [])]
        for p in pointers:
            self.assertIn(p, got, r.body)

    def assertTokens(self, body, user_id=None, ttl=DEFAULT_ACCESS_TTL_S):
        self.assertEqual(set(body), TOKENS_KEYS, body)
        self.assertEqual(body["token_type"], "Bearer")
        self.assertEqual(body["expires_in"], ttl)
        self.assertEqual(len(body["access_token"].split(".")), 3)
        # docs/auth.md: base64url of tenant id ‖ session id ‖ 32 random bytes.
        self.assertEqual(len(body["refresh_token"]), 86, body["refresh_token"])
        self.assertRegex(body["refresh_token"], B64URL_RE)
        self.assertEqual(set(body["user"]), USER_KEYS, body["user"])
        if user_id is not None:
            self.assertEqual(body["user"]["id"], user_id)

    def eventually(self, probe, status, code, timeout=REVOCATION_S):
        """Polls probe() (→ R) until it answers status/code; fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            r = probe()
            if r.status == status and isinstance(r.body, dict) and r.body.get("code") == code:
                return r
            if time.monotonic() >= deadline:
                self.fail("still %d %r after %.1f s, expected %d %s"
                          % (r.status, r.body, timeout, status, code))
            time.sleep(0.05)

    def assertRevoked(self, access_token=None, refresh_token=None):
        """Within 1 s the access token and the refresh token get 401 token-revoked."""
        if access_token is not None:
            r = self.eventually(lambda: self.me(access_token), 401, "token-revoked")
            self.assertTrue(r.headers.get("www-authenticate", "").startswith("Bearer"))
        if refresh_token is not None:
            self.eventually(lambda: self.refresh(refresh_token), 401, "token-revoked")


class AuthTest(AuthMixin, ServerTestCase):
    server_args = ("--auth.max-failures=3", NO_ANONYMOUS_LIMIT) + CHEAP_ARGON2

    # -- signup --------------------------------------------------------------------------

    def test_signup_creates_a_member_with_a_lower_cased_email(self):
        tenant = self.new_tenant()
        mixed = "Ada.Lovelace.%s@Example.COM" % os.urandom(3).hex()
        r = self.call("POST", "/v1/auth/signup",
                      {"email": mixed, "password": PASSWORD, "display_name": "Ada"},
                      tenant=tenant["slug"])
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(set(r.body), {"user"})
        user = r.body["user"]
        self.assertEqual(set(user), USER_KEYS, user)
        self.assertRegex(user["id"], UUID7_RE)
        self.assertEqual(user["email"], mixed.lower())
        self.assertEqual(user["display_name"], "Ada")
        self.assertEqual(user["roles"], ["member"])
        self.assertIs(user["mfa_enabled"], False)
        self.assertRegex(user["created_at"], TS_RE)
        self.assertNotIn(PASSWORD, json.dumps(r.body))
        # The same address in another case is taken.
        r = self.call("POST", "/v1/auth/signup", {"email": mixed.upper(), "password": PASSWORD},
                      tenant=tenant["slug"])
        self.assertProblem(r, 409, "conflict")
        # Login with the lower-cased and with the original spelling.
        for email in (mixed.lower(), mixed):
            r = self.try_login(tenant, email, PASSWORD)
            self.assertEqual(r.status, 200, (email, r.body))
            self.assertEqual(r.body["user"]["id"], user["id"])
        # Without display_name it is null.
        other = self.signup(tenant)
        self.assertIsNone(other["display_name"])

    def test_signup_validates_its_input(self):
        tenant = self.new_tenant()

        def signup(body=None, raw=None):
            return self.call("POST", "/v1/auth/signup", body, tenant=tenant["slug"], raw=raw)

        self.assertPointers(signup({"email": new_email(), "password": "123456789"}), "/password")
        self.assertPointers(signup({"email": new_email(), "password": "x" * 1025}), "/password")
        self.assertPointers(signup({"email": "not-an-email", "password": PASSWORD}), "/email")
        self.assertPointers(signup({}), "/email", "/password")
        self.assertPointers(signup({"email": new_email(), "password": 1234567890}), "/password")
        # Unknown fields are refused, so nobody can sign up with a role.
        self.assertPointers(signup({"email": new_email(), "password": PASSWORD,
                                    "roles": ["owner"]}), "/roles")
        self.assertProblem(signup(raw=b"{"), 400, "bad-request")
        # The bounds themselves are fine.
        for password in ("x" * 10, "y" * 1024):
            self.assertEqual(signup({"email": new_email(), "password": password}).status, 201)

    def test_signup_can_be_closed_by_the_platform(self):
        tenant = self.new_tenant()
        path = "/admin/v1/tenants/" + tenant["id"]
        r = self.admin("PATCH", path, {"settings": {"signup": "closed"}})
        self.assertEqual(r.status, 200, r.body)
        r = self.call("POST", "/v1/auth/signup", {"email": new_email(), "password": PASSWORD},
                      tenant=tenant["slug"])
        self.assertProblem(r, 403, "forbidden")
        self.owner_login(tenant)  # logins go on
        r = self.admin("PATCH", path, {"settings": {"signup": "open"}})
        self.assertEqual(r.status, 200, r.body)
        self.signup(tenant)

    # -- login ---------------------------------------------------------------------------

    def test_login_answers_tokens_for_members_and_owners(self):
        tenant = self.new_tenant()
        member = self.signup(tenant)
        tokens = self.login(tenant, member)
        self.assertTokens(tokens, member["id"])
        self.assertEqual(tokens["user"]["roles"], ["member"])
        self.assertEqual(tokens["user"]["email"], member["email"])
        self.assertIs(tokens["user"]["mfa_enabled"], False)
        owner = self.owner_login(tenant)
        self.assertTokens(owner, tenant["owner"]["id"])
        self.assertEqual(owner["user"]["roles"], ["owner"])
        self.assertEqual(owner["user"]["email"], tenant["owner"]["email"])
        # Two logins are two sessions with their own tokens.
        again = self.login(tenant, member)
        self.assertNotEqual(again["refresh_token"], tokens["refresh_token"])
        self.assertNotEqual(jwt_parts(again["access_token"])[1]["sid"],
                            jwt_parts(tokens["access_token"])[1]["sid"])

    def test_wrong_password_and_unknown_email_get_the_same_answer(self):
        tenant = self.new_tenant()
        member = self.signup(tenant)
        wrong = self.try_login(tenant, member["email"], "not the password")
        unknown = self.try_login(tenant, new_email("nobody"), "not the password")
        for r in (wrong, unknown):
            self.assertProblem(r, 401, "invalid-credentials")

        def comparable(r):
            return {k: v for k, v in r.body.items() if k not in ("request_id", "instance")}
        self.assertEqual(comparable(wrong), comparable(unknown))
        self.assertEqual(wrong.headers.get("www-authenticate"),
                         unknown.headers.get("www-authenticate"))
        # A user of another tenant does not log in here.
        other = self.new_tenant()
        r = self.try_login(other, member["email"], PASSWORD)
        self.assertProblem(r, 401, "invalid-credentials")

    def test_login_validates_its_input(self):
        tenant = self.new_tenant()
        self.assertPointers(self.call("POST", "/v1/auth/login", {"email": new_email()},
                                      tenant=tenant["slug"]), "/password")
        self.assertPointers(self.call("POST", "/v1/auth/login",
                                      {"email": new_email(), "password": PASSWORD, "otp": "1"},
                                      tenant=tenant["slug"]), "/otp")

    # -- access tokens -------------------------------------------------------------------

    def test_the_access_token_carries_the_documented_claims(self):
        tenant = self.new_tenant()
        member = self.signup(tenant)
        before = time.time()
        tokens = self.login(tenant, member)
        header, claims = jwt_parts(tokens["access_token"])
        self.assertEqual(header["alg"], "EdDSA")
        self.assertEqual(header["typ"], "JWT")
        self.assertRegex(header["kid"], B64URL_RE)
        self.assertEqual(set(claims), CLAIMS, claims)
        self.assertEqual(claims["iss"], "troupe")
        self.assertEqual(claims["sub"], member["id"])
        self.assertEqual(claims["tid"], tenant["id"])
        self.assertRegex(claims["sid"], UUID7_RE)
        self.assertRegex(claims["jti"], UUID7_RE)
        self.assertIsInstance(claims["iat"], int)
        self.assertLessEqual(abs(claims["iat"] - before), 5)
        self.assertEqual(claims["exp"] - claims["iat"], DEFAULT_ACCESS_TTL_S)
        # Every token has its own jti.
        again = self.login(tenant, member)
        self.assertNotEqual(jwt_parts(again["access_token"])[1]["jti"], claims["jti"])

    def test_users_me_with_and_without_x_tenant(self):
        tenant = self.new_tenant()
        member = self.signup(tenant, display_name="Grace")
        tokens = self.login(tenant, member)
        answers = []
        for t in (tenant["slug"], tenant["id"], None):
            r = self.me(tokens["access_token"], tenant=t)
            self.assertEqual(r.status, 200, (t, r.body))
            answers.append(r.body)
        me = answers[0]
        self.assertEqual(answers[1], me)
        self.assertEqual(answers[2], me)
        self.assertEqual(set(me), USER_KEYS | {"permissions"}, me)
        self.assertEqual((me["id"], me["email"], me["display_name"], me["roles"]),
                         (member["id"], member["email"], "Grace", ["member"]))
        self.assertTrue(MEMBER_PERMISSIONS <= set(me["permissions"]), me["permissions"])
        for absent in ("audit:read", "api_keys:write", "tenant:admin", "*"):
            self.assertNotIn(absent, me["permissions"])
        owner = self.owner_login(tenant)
        r = self.me(owner["access_token"])
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body["roles"], ["owner"])
        perms = set(r.body["permissions"])
        self.assertTrue("*" in perms or {"audit:read", "tenant:admin"} <= perms, perms)

    def test_missing_and_bad_credentials_are_401_unauthenticated(self):
        tenant = self.new_tenant()
        owner = self.owner_login(tenant)
        member = self.login(tenant, self.signup(tenant))
        access = member["access_token"]
        self.assertEqual(self.me(access).status, 200)
        r = self.call("GET", "/v1/users/me", tenant=tenant["slug"])
        self.assertUnauthenticated(r, token_sent=False)
        _, _, owner_sig = owner["access_token"].split(".")
        kid = jwt_parts(access)[0]["kid"]
        jwks = self.call("GET", "/.well-known/jwks.json").body
        x = [k["x"] for k in jwks["keys"] if k["kid"] == kid][0]
        bad = {
            "tampered payload": tampered(access),
            "alg none": unsigned(access),
            "alg none without the trailing dot": unsigned(access)[:-1],
            "HS256 keyed with the public key (text)": hs256_with(access, x.encode()),
            "HS256 keyed with the public key (bytes)": hs256_with(access, b64url_decode(x)),
            "another token's signature": access.rsplit(".", 1)[0] + "." + owner_sig,
            "not a JWT": "not-a-jwt",
            "unknown API key": "trp_" + b64url_encode(os.urandom(32)),
        }
        for name, token in bad.items():
            for t in (tenant["slug"], None):  # without X-Tenant: no tenant from it either
                r = self.me(token, tenant=t)
                self.assertEqual(r.status, 401, (name, t, r.body))
                self.assertUnauthenticated(r)
        # The good token still works: nothing above hurt its session.
        self.assertEqual(self.me(access).status, 200)

    def test_self_routes_refuse_api_keys_and_the_admin_token(self):
        tenant = self.new_tenant()
        owner = self.owner_login(tenant)
        r = self.call("POST", "/v1/api-keys", {"name": "k", "permissions": ["users:read"]},
                      token=owner["access_token"])
        self.assertEqual(r.status, 201, r.body)
        key = r.body["key"]
        for token, t in ((key, None), (self.srv.admin_token, tenant["slug"])):
            r = self.call("GET", "/v1/users/me", token=token, tenant=t)
            self.assertProblem(r, 403, "forbidden")
            r = self.call("GET", "/v1/auth/sessions", token=token, tenant=t)
            self.assertProblem(r, 403, "forbidden")
            r = self.call("POST", "/v1/auth/logout", token=token, tenant=t)
            self.assertProblem(r, 403, "forbidden")

    # -- refresh -------------------------------------------------------------------------

    def test_refresh_rotates_and_reuse_revokes_the_whole_session(self):
        tenant = self.new_tenant()
        member = self.signup(tenant)
        first = self.login(tenant, member)
        bystander = self.login(tenant, member)  # another session of the same user
        r = self.refresh(first["refresh_token"])  # no X-Tenant: the token names its tenant
        self.assertEqual(r.status, 200, r.body)
        second = r.body
        self.assertTokens(second, member["id"])
        self.assertNotEqual(second["refresh_token"], first["refresh_token"])
        self.assertNotEqual(second["access_token"], first["access_token"])
        sid = jwt_parts(first["access_token"])[1]["sid"]
        self.assertEqual(jwt_parts(second["access_token"])[1]["sid"], sid)
        for access in (first["access_token"], second["access_token"]):
            self.assertEqual(self.me(access).status, 200)
        # The spent token again: reuse. The whole session dies.
        r = self.refresh(first["refresh_token"])
        self.assertProblem(r, 401, "token-revoked")
        self.assertRevoked(second["access_token"], second["refresh_token"])
        self.assertRevoked(first["access_token"])
        # Only that session.
        self.assertEqual(self.me(bystander["access_token"]).status, 200)
        r = self.refresh(bystander["refresh_token"], tenant=tenant["slug"])
        self.assertEqual(r.status, 200, r.body)

    def test_bad_refresh_requests(self):
        tenant = self.new_tenant()
        r = self.refresh("not-a-refresh-token")
        self.assertProblem(r, 401, "unauthenticated")
        r = self.refresh("not-a-refresh-token", tenant=tenant["slug"])
        self.assertProblem(r, 401, "unauthenticated")
        r = self.call("POST", "/v1/auth/refresh", {}, tenant=tenant["slug"])
        self.assertPointers(r, "/refresh_token")
        # A refresh token of another tenant is that tenant's credential: 403 tenant-mismatch,
        # and it still works where it belongs.
        other = self.new_tenant()
        tokens = self.owner_login(other)
        r = self.refresh(tokens["refresh_token"], tenant=tenant["slug"])
        self.assertProblem(r, 403, "tenant-mismatch")
        self.assertEqual(self.refresh(tokens["refresh_token"]).status, 200)

    # -- logout and sessions -------------------------------------------------------------

    def test_logout_revokes_the_session_and_only_it(self):
        tenant = self.new_tenant()
        member = self.signup(tenant)
        gone = self.login(tenant, member)
        kept = self.login(tenant, member)
        r = self.call("POST", "/v1/auth/logout", token=gone["access_token"])
        self.assertEqual(r.status, 204, r.body)
        self.assertIsNone(r.body)
        self.assertRevoked(gone["access_token"], gone["refresh_token"])
        self.assertEqual(self.me(kept["access_token"]).status, 200)
        self.assertEqual(self.refresh(kept["refresh_token"]).status, 200)

    def test_sessions_are_listed_and_can_be_revoked_one_by_one(self):
        tenant = self.new_tenant()
        member = self.signup(tenant)
        one = self.login(tenant, member, user_agent="e2e-one/1.0")
        two = self.login(tenant, member, user_agent="e2e-two/2.0")
        sid_one = jwt_parts(one["access_token"])[1]["sid"]
        sid_two = jwt_parts(two["access_token"])[1]["sid"]
        r = self.call("GET", "/v1/auth/sessions", token=one["access_token"])
        self.assertEqual(r.status, 200, r.body)
        self.assertIsNone(r.body["next_cursor"])
        sessions = r.body["data"]
        self.assertEqual([s["id"] for s in sessions], [sid_two, sid_one])  # newest first
        for s in sessions:
            self.assertEqual(set(s), SESSION_KEYS, s)
            self.assertRegex(s["created_at"], TS_RE)
            self.assertRegex(s["last_used_at"], TS_RE)
            self.assertEqual(s["ip"], "127.0.0.1")
        self.assertEqual([s["user_agent"] for s in sessions], ["e2e-two/2.0", "e2e-one/1.0"])
        self.assertEqual([s["current"] for s in sessions], [False, True])
        # Seen from the other session, the other one is current.
        r = self.call("GET", "/v1/auth/sessions", token=two["access_token"])
        self.assertEqual([s["current"] for s in r.body["data"]], [True, False])
        # Another user's session, or none at all, is not found.
        owner = self.owner_login(tenant)
        owner_sid = jwt_parts(owner["access_token"])[1]["sid"]
        for missing in (owner_sid, "0190a3c4-0000-7000-8000-000000000000"):
            r = self.call("DELETE", "/v1/auth/sessions/" + missing, token=one["access_token"])
            self.assertProblem(r, 404, "not-found")
        self.assertEqual(self.me(owner["access_token"]).status, 200)
        # Deleting one session is its logout.
        r = self.call("DELETE", "/v1/auth/sessions/" + sid_two, token=one["access_token"])
        self.assertEqual(r.status, 204, r.body)
        self.assertRevoked(two["access_token"], two["refresh_token"])
        r = self.call("GET", "/v1/auth/sessions", token=one["access_token"])
        self.assertEqual([s["id"] for s in r.body["data"]], [sid_one])
        self.assertEqual(self.me(one["access_token"]).status, 200)

    # -- password ------------------------------------------------------------------------

    def test_password_change_revokes_the_other_sessions(self):
        tenant = self.new_tenant()
        member = self.signup(tenant)
        changing = self.login(tenant, member)
        other = self.login(tenant, member)
        new_password = "a new and longer passphrase"
        r = self.call("POST", "/v1/auth/password",
                      {"current_password": "not the password", "new_password": new_password},
                      token=changing["access_token"])
        self.assertProblem(r, 401, "invalid-credentials")
        r = self.call("POST", "/v1/auth/password",
                      {"current_password": PASSWORD, "new_password": "short"},
                      token=changing["access_token"])
        self.assertPointers(r, "/new_password")
        self.assertEqual(self.me(other["access_token"]).status, 200)  # nothing changed yet
        r = self.call("POST", "/v1/auth/password",
                      {"current_password": PASSWORD, "new_password": new_password},
                      token=changing["access_token"])
        self.assertEqual(r.status, 204, r.body)
        self.assertRevoked(other["access_token"], other["refresh_token"])
        self.assertEqual(self.me(changing["access_token"]).status, 200)
        r = self.refresh(changing["refresh_token"])
        self.assertEqual(r.status, 200, r.body)
        self.assertProblem(self.try_login(tenant, member["email"], PASSWORD), 401,
                           "invalid-credentials")
        self.assertEqual(self.try_login(tenant, member["email"], new_password).status, 200)

    # -- throttling ----------------------------------------------------------------------

    def test_logins_are_throttled_per_account_after_max_failures(self):
        tenant = self.new_tenant()
        victim = self.signup(tenant)
        neighbour = self.signup(tenant)
        for _ in range(3):  # --auth.max-failures=3
            r = self.try_login(tenant, victim["email"], "not the password")
            self.assertProblem(r, 401, "invalid-credentials")
        for password in ("not the password", PASSWORD):  # even the right one now
            r = self.try_login(tenant, victim["email"], password)
            self.assertProblem(r, 429, "rate-limited")
            retry_after = r.headers.get("retry-after", "")
            self.assertRegex(retry_after, r"^[0-9]+$", r.headers)
            self.assertTrue(1 <= int(retry_after) <= 900, retry_after)
            self.assertNotIn("access_token", r.body)
        # Another account from the same IP is not affected.
        r = self.try_login(tenant, neighbour["email"], "not the password")
        self.assertProblem(r, 401, "invalid-credentials")
        self.login(tenant, neighbour)

    # -- MFA -----------------------------------------------------------------------------

    def verify(self, mfa_token, code, tenant=None):
        return self.call("POST", "/v1/auth/mfa/verify", {"mfa_token": mfa_token, "code": code},
                         tenant=tenant)

    def mfa_login(self, tenant, user):
        r = self.try_login(tenant, user["email"], user["password"])
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(set(r.body), {"mfa_required", "mfa_token", "methods"}, r.body)
        self.assertIs(r.body["mfa_required"], True)
        self.assertEqual(r.body["methods"], ["totp"])
        self.assertEqual(len(r.body["mfa_token"]), 86, r.body)
        return r.body["mfa_token"]

    def enable_totp(self, tenant, tokens):
        """Enrols and activates TOTP; returns (secret, the step activated with, codes)."""
        access = tokens["access_token"]
        r = self.call("POST", "/v1/auth/mfa/totp/enroll", token=access)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(set(r.body), {"secret", "otpauth_uri"})
        secret = r.body["secret"]
        self.assertRegex(secret, BASE32_RE)
        self.assertEqual(len(base64.b32decode(secret + "=" * (-len(secret) % 8))), 20)
        uri = r.body["otpauth_uri"]
        self.assertTrue(uri.startswith("otpauth://totp/"), uri)
        self.assertIn("secret=" + secret, uri)
        self.assertIn("issuer=", uri)
        self.assertIs(self.me(access).body["mfa_enabled"], False)  # pending until activated
        step = time_step()
        r = self.call("POST", "/v1/auth/mfa/totp/activate", {"code": wrong_code(secret, step)},
                      token=access)
        self.assertProblem(r, 401, "invalid-mfa-code")
        r = self.call("POST", "/v1/auth/mfa/totp/activate", {"code": totp(secret, step)},
                      token=access)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(set(r.body), {"recovery_codes"})
        codes = r.body["recovery_codes"]
        self.assertEqual(len(codes), 10)
        self.assertEqual(len(set(codes)), 10)
        for c in codes:
            self.assertRegex(c, RECOVERY_CODE_RE)
        self.assertIs(self.me(access).body["mfa_enabled"], True)
        return secret, step, codes

    def test_totp_mfa_from_enrolment_to_disabling(self):
        tenant = self.new_tenant()
        member = self.signup(tenant)
        tokens = self.login(tenant, member)
        access = tokens["access_token"]
        r = self.call("POST", "/v1/auth/mfa/totp/activate", {"code": "123456"}, token=access)
        self.assertProblem(r, 409, "conflict")  # nothing enrolled
        secret, step, codes = self.enable_totp(tenant, tokens)
        r = self.call("POST", "/v1/auth/mfa/totp/enroll", token=access)
        self.assertProblem(r, 409, "conflict")  # already on
        # The activation may have used step `step`; the next step's code is inside the ±1
        # window for the next 30 s at least, and certainly not spent yet.
        code = totp(secret, step + 1)
        mfa_token = self.mfa_login(tenant, member)
        r = self.verify(mfa_token, wrong_code(secret, step))  # no X-Tenant needed
        self.assertProblem(r, 401, "invalid-mfa-code")
        r = self.verify(mfa_token, code)
        self.assertEqual(r.status, 200, r.body)
        self.assertTokens(r.body, member["id"])
        self.assertIs(r.body["user"]["mfa_enabled"], True)
        self.assertEqual(self.me(r.body["access_token"]).status, 200)
        # The mfa_token is single-use.
        r = self.verify(mfa_token, codes[9])
        self.assertProblem(r, 401, "invalid-mfa-code")
        # A step's code is accepted once, and an earlier step's never after it.
        second = self.mfa_login(tenant, member)
        for stale in (code, totp(secret, step)):
            r = self.verify(second, stale)
            self.assertProblem(r, 401, "invalid-mfa-code")
        # A recovery code works once (here on the same mfa_token, after two misses).
        r = self.verify(second, codes[0])
        self.assertEqual(r.status, 200, r.body)
        self.assertTokens(r.body, member["id"])
        third = self.mfa_login(tenant, member)
        r = self.verify(third, codes[0])
        self.assertProblem(r, 401, "invalid-mfa-code")
        r = self.verify(third, codes[1])
        self.assertEqual(r.status, 200, r.body)
        # A garbage mfa_token names no tenant: without X-Tenant the request has none (401
        # unauthenticated); with it, the token is unknown there.
        self.assertProblem(self.verify("x" * 86, codes[2]), 401, "unauthenticated")
        self.assertProblem(self.verify("x" * 86, codes[2], tenant=tenant["slug"]), 401,
                           "invalid-mfa-code")
        # Five wrong codes kill an mfa_token.
        fourth = self.mfa_login(tenant, member)
        for _ in range(5):
            self.assertProblem(self.verify(fourth, wrong_code(secret, time_step())), 401,
                               "invalid-mfa-code")
        self.assertProblem(self.verify(fourth, codes[3]), 401, "invalid-mfa-code")
        # Disabling needs a valid code too; a recovery code is one.
        r = self.call("DELETE", "/v1/auth/mfa/totp", {"code": wrong_code(secret, time_step())},
                      token=access)
        self.assertProblem(r, 401, "invalid-mfa-code")
        r = self.call("DELETE", "/v1/auth/mfa/totp", {"code": codes[4]}, token=access)
        self.assertEqual(r.status, 204, r.body)
        self.assertIs(self.me(access).body["mfa_enabled"], False)
        tokens = self.login(tenant, member)  # no MFA step any more
        self.assertIs(tokens["user"]["mfa_enabled"], False)

    # -- API keys ------------------------------------------------------------------------

    def create_key(self, token, permissions, **extra):
        body = {"name": "key-" + os.urandom(2).hex(), "permissions": permissions}
        body.update(extra)
        return self.call("POST", "/v1/api-keys", body, token=token)

    def test_api_keys_authenticate_with_their_own_permissions(self):
        tenant = self.new_tenant()
        owner = self.owner_login(tenant)["access_token"]
        r = self.create_key(owner, ["audit:read"], name="ci reader")
        self.assertEqual(r.status, 201, r.body)
        created = r.body
        self.assertEqual(set(created), API_KEY_KEYS, created)
        self.assertRegex(created["id"], UUID7_RE)
        self.assertEqual(created["name"], "ci reader")
        self.assertEqual(created["permissions"], ["audit:read"])
        self.assertRegex(created["created_at"], TS_RE)
        self.assertIsNone(created["expires_at"])
        key = created["key"]
        self.assertTrue(key.startswith("trp_"), key)
        self.assertEqual(len(key), 47)
        self.assertRegex(key[4:], B64URL_RE)
        self.assertEqual(created["prefix"], key[:12])
        self.assertEqual(r.headers.get("location"), "/v1/api-keys/" + created["id"])
        # The key works, with or without X-Tenant.
        for t in (None, tenant["slug"], tenant["id"]):
            r = self.call("GET", "/v1/audit", token=key, tenant=t)
            self.assertEqual(r.status, 200, (t, r.body))
        # ... and only for what it may do.
        r = self.create_key(owner, ["users:read"])
        self.assertEqual(r.status, 201, r.body)
        reader = r.body
        self.assertForbidden(self.call("GET", "/v1/audit", token=reader["key"]), "audit:read")
        # Listing never shows a secret.
        r = self.call("GET", "/v1/api-keys", token=owner)
        self.assertEqual(r.status, 200, r.body)
        listed = {k["id"]: k for k in r.body["data"]}
        self.assertEqual(set(listed), {created["id"], reader["id"]})
        for k in listed.values():
            self.assertNotIn("key", k)
        self.assertEqual(listed[created["id"]]["prefix"], created["prefix"])
        self.assertEqual(listed[created["id"]]["permissions"], ["audit:read"])
        text = json.dumps(r.body)
        self.assertNotIn(key, text)
        self.assertNotIn(reader["key"], text)

    def test_an_api_key_made_with_the_admin_token_keeps_its_permissions(self):
        tenant = self.new_tenant()
        r = self.call("POST", "/v1/api-keys", {"name": "ops", "permissions": ["audit:read"]},
                      token=self.srv.admin_token, tenant=tenant["slug"])
        self.assertEqual(r.status, 201, r.body)
        key = r.body["key"]
        self.assertEqual(self.call("GET", "/v1/audit", token=key).status, 200)
        self.assertForbidden(self.call("GET", "/v1/api-keys", token=key), "api_keys:write")

    def test_api_key_permissions_must_be_a_subset_of_the_callers(self):
        tenant = self.new_tenant()
        owner = self.owner_login(tenant)["access_token"]
        member = self.login(tenant, self.signup(tenant))["access_token"]
        r = self.create_key(member, ["audit:read"])
        self.assertForbidden(r, "api_keys:write")  # members cannot manage keys at all
        r = self.call("GET", "/v1/api-keys", token=member)
        self.assertForbidden(r, "api_keys:write")
        # A key that may manage keys still cannot mint one with more than it has.
        r = self.create_key(owner, ["api_keys:write"])
        self.assertEqual(r.status, 201, r.body)
        r = self.create_key(r.body["key"], ["audit:read"])
        self.assertProblem(r, 403, "forbidden")

    def test_api_key_expiry_must_be_in_the_future(self):
        tenant = self.new_tenant()
        owner = self.owner_login(tenant)["access_token"]
        r = self.create_key(owner, ["audit:read"], expires_at="2020-01-01T00:00:00.000Z")
        self.assertPointers(r, "/expires_at")
        r = self.create_key(owner, ["audit:read"], expires_at="next tuesday")
        self.assertPointers(r, "/expires_at")
        r = self.create_key(owner, ["audit:read"], expires_at="2999-01-01T00:00:00.000Z")
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(r.body["expires_at"], "2999-01-01T00:00:00.000Z")
        self.assertEqual(self.call("GET", "/v1/audit", token=r.body["key"]).status, 200)

    def test_a_deleted_api_key_stops_working(self):
        tenant = self.new_tenant()
        owner = self.owner_login(tenant)["access_token"]
        r = self.create_key(owner, ["audit:read"])
        self.assertEqual(r.status, 201, r.body)
        key, key_id = r.body["key"], r.body["id"]
        self.assertEqual(self.call("GET", "/v1/audit", token=key).status, 200)  # now cached
        r = self.call("DELETE", "/v1/api-keys/" + key_id, token=owner)
        self.assertEqual(r.status, 204, r.body)
        for t in (None, tenant["slug"]):
            self.eventually(lambda: self.call("GET", "/v1/audit", token=key, tenant=t), 401,
                            "token-revoked")
        r = self.call("DELETE", "/v1/api-keys/0190a3c4-0000-7000-8000-000000000000",
                      token=owner)
        self.assertProblem(r, 404, "not-found")

    # -- tenancy and permissions ---------------------------------------------------------

    def test_a_credential_of_another_tenant_is_tenant_mismatch(self):
        a, b = self.new_tenant(), self.new_tenant()
        owner_a = self.owner_login(a)["access_token"]
        r = self.create_key(owner_a, ["audit:read"])
        self.assertEqual(r.status, 201, r.body)
        key_a = r.body["key"]
        for named in ({"X-Tenant": b["slug"]}, {"X-Tenant": b["id"]},
                      {"Host": "%s.localhost:%d" % (b["slug"], self.srv.port)}):
            r = self.call("GET", "/v1/users/me", token=owner_a, headers=named)
            self.assertProblem(r, 403, "tenant-mismatch")
            r = self.call("GET", "/v1/audit", token=key_a, headers=named)
            self.assertProblem(r, 403, "tenant-mismatch")
        # The same credentials in their own tenant are fine.
        self.assertEqual(self.me(owner_a, tenant=a["slug"]).status, 200)
        self.assertEqual(self.call("GET", "/v1/audit", token=key_a, tenant=a["slug"]).status,
                         200)

    def test_the_same_email_is_a_different_user_in_each_tenant(self):
        a, b = self.new_tenant(), self.new_tenant()
        email = new_email("twin")
        in_a = self.signup(a, email=email, password="password of tenant a")
        in_b = self.signup(b, email=email, password="password of tenant b")
        self.assertNotEqual(in_a["id"], in_b["id"])
        self.assertEqual(self.login(a, in_a)["user"]["id"], in_a["id"])
        self.assertEqual(self.login(b, in_b)["user"]["id"], in_b["id"])
        r = self.try_login(a, email, "password of tenant b")
        self.assertProblem(r, 401, "invalid-credentials")

    def test_reading_the_audit_log_needs_audit_read(self):
        tenant = self.new_tenant()
        member = self.login(tenant, self.signup(tenant))["access_token"]
        owner = self.owner_login(tenant)["access_token"]
        for path in ("/v1/audit", "/v1/audit/verify", "/v1/audit/export"):
            self.assertForbidden(self.call("GET", path, token=member), "audit:read")
            self.assertEqual(self.call("GET", path, token=owner).status, 200, path)
            self.assertEqual(self.admin("GET", path, tenant=tenant["slug"]).status, 200, path)

    # -- JWKS ----------------------------------------------------------------------------

    def test_the_jwks_publishes_the_signing_keys(self):
        tenant = self.new_tenant()
        tokens = self.owner_login(tenant)
        r = self.call("GET", "/.well-known/jwks.json")  # no tenant, no credential
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(set(r.body), {"keys"})
        self.assertGreaterEqual(len(r.body["keys"]), 1)
        kids = []
        for k in r.body["keys"]:
            self.assertEqual(set(k), {"kty", "crv", "x", "kid", "use", "alg"}, k)  # never "d"
            self.assertEqual((k["kty"], k["crv"], k["use"], k["alg"]),
                             ("OKP", "Ed25519", "sig", "EdDSA"))
            public = b64url_decode(k["x"])
            self.assertEqual(len(public), 32)
            # docs/auth.md: kid = base64url of the first 16 bytes of SHA-256(public key).
            self.assertEqual(k["kid"], b64url_encode(hashlib.sha256(public).digest()[:16]))
            kids.append(k["kid"])
        self.assertEqual(len(kids), len(set(kids)))
        self.assertIn(jwt_parts(tokens["access_token"])[0]["kid"], kids)

    # -- audit trail ---------------------------------------------------------------------

    def test_auth_events_are_audited_without_secrets(self):
        tenant = self.new_tenant()
        member = self.signup(tenant)
        secrets = [PASSWORD]
        first = self.login(tenant, member)
        self.assertProblem(self.try_login(tenant, member["email"], "wrong password here"), 401,
                           "invalid-credentials")
        unknown_email = new_email("ghost")
        self.assertProblem(self.try_login(tenant, unknown_email, "wrong password here"), 401,
                           "invalid-credentials")
        # Refresh, then reuse of the spent token.
        r = self.refresh(first["refresh_token"])
        self.assertEqual(r.status, 200, r.body)
        secrets += [first["refresh_token"], r.body["refresh_token"], r.body["access_token"]]
        self.assertProblem(self.refresh(first["refresh_token"]), 401, "token-revoked")
        # Logout, and a session deleted from another one.
        gone = self.login(tenant, member)
        self.assertEqual(self.call("POST", "/v1/auth/logout",
                                   token=gone["access_token"]).status, 204)
        keep, drop = self.login(tenant, member), self.login(tenant, member)
        drop_sid = jwt_parts(drop["access_token"])[1]["sid"]
        r = self.call("DELETE", "/v1/auth/sessions/" + drop_sid, token=keep["access_token"])
        self.assertEqual(r.status, 204, r.body)
        # Password change.
        new_password = "the second passphrase"
        r = self.call("POST", "/v1/auth/password",
                      {"current_password": PASSWORD, "new_password": new_password},
                      token=keep["access_token"])
        self.assertEqual(r.status, 204, r.body)
        member["password"] = new_password
        secrets.append(new_password)
        # MFA on, a login through it, MFA off.
        secret, step, codes = self.enable_totp(tenant, keep)
        secrets += [secret] + codes
        r = self.verify(self.mfa_login(tenant, member), totp(secret, step + 1))
        self.assertEqual(r.status, 200, r.body)
        r = self.call("DELETE", "/v1/auth/mfa/totp", {"code": codes[0]},
                      token=keep["access_token"])
        self.assertEqual(r.status, 204, r.body)
        # An API key created and deleted.
        owner = self.owner_login(tenant)["access_token"]
        r = self.create_key(owner, ["audit:read"])
        self.assertEqual(r.status, 201, r.body)
        key_id = r.body["id"]
        secrets.append(r.body["key"])
        self.assertEqual(self.call("DELETE", "/v1/api-keys/" + key_id, token=owner).status, 204)
        for tokens in (first, gone, keep, drop):
            secrets += [tokens["access_token"], tokens["refresh_token"]]

        entries = self.audit(tenant, "?action=auth.*&limit=200")
        self.assertTrue(entries)
        for e in entries:
            self.assertTrue(e["action"].startswith("auth."), e)

        def find(action, outcome, actor_type=None, actor_id=None):
            return [e for e in entries if e["action"] == action and e["outcome"] == outcome
                    and (actor_type is None or e["actor"]["type"] == actor_type)
                    and (actor_id is None or e["actor"]["id"] == actor_id)]

        self.assertTrue(find("auth.login", "success", "user", member["id"]), entries)
        self.assertTrue(find("auth.login", "success", "user", tenant["owner"]["id"]), entries)
        self.assertEqual(len(find("auth.login", "denied", "user", member["id"])), 1, entries)
        anonymous = find("auth.login", "denied", "anonymous")
        self.assertEqual(len(anonymous), 1, entries)
        self.assertEqual(anonymous[0]["ip"], "127.0.0.1")
        self.assertEqual(len(find("auth.refresh_reuse", "denied")), 1, entries)
        for action in ("auth.logout", "auth.password_changed", "auth.mfa_enabled",
                       "auth.mfa_verify", "auth.mfa_disabled"):
            self.assertEqual(len(find(action, "success", "user", member["id"])), 1,
                             (action, entries))
        revoked = [e for e in self.audit(tenant, "?action=session.revoked")
                   if e["resource"]["id"] == drop_sid]
        self.assertEqual([e["outcome"] for e in revoked], ["success"])
        self.assertEqual(revoked[0]["actor"], {"type": "user", "id": member["id"]})
        keys = self.audit(tenant, "?action=api_key.*")
        self.assertEqual([(e["action"], e["outcome"], e["resource"]["id"]) for e in keys],
                         [("api_key.revoked", "success", key_id),
                          ("api_key.created", "success", key_id)])
        # No secret anywhere: not in the listed entries, the export, or the stored rows.
        r = self.admin("GET", "/v1/audit/export", tenant=tenant["slug"])
        self.assertEqual(r.status, 200)
        exported = r.body.decode("utf-8")
        self.assertIn("auth.mfa_enabled", exported)
        listed = json.dumps(self.audit(tenant, "?limit=200"))
        stored = "\n".join(psql(self.srv, "SELECT entry FROM audit_log WHERE tenant_id = '%s'"
                                % tenant["id"]))
        for s in secrets:
            for where, text in (("export", exported), ("list", listed), ("table", stored)):
                self.assertNotIn(s, text, "a secret in the audit %s" % where)


class LoginTimingTest(AuthMixin, ServerTestCase):
    """With the default argon2id parameters an unknown email takes about as long as a wrong
    password (the dummy hash), so timing does not tell which emails exist."""

    server_args = (NO_ANONYMOUS_LIMIT,)
    TRIES = 5

    def timed_login(self, tenant, email):
        started = time.monotonic()
        r = self.try_login(tenant, email, "not the password at all")
        elapsed = time.monotonic() - started
        self.assertProblem(r, 401, "invalid-credentials")
        return elapsed

    def test_unknown_email_and_wrong_password_take_similar_time(self):
        tenant = self.new_tenant()
        member = self.signup(tenant)
        # Warm up both paths once (connections, caches); 1 + TRIES failures stay below the
        # default auth.max-failures (10).
        self.timed_login(tenant, member["email"])
        self.timed_login(tenant, new_email("ghost"))
        wrong, unknown = [], []
        for _ in range(self.TRIES):
            wrong.append(self.timed_login(tenant, member["email"]))
            unknown.append(self.timed_login(tenant, new_email("ghost")))
        ratio = statistics.median(unknown) / statistics.median(wrong)
        print("login timing: wrong password median %.1f ms, unknown email median %.1f ms "
              "(ratio %.2f)" % (statistics.median(wrong) * 1000,
                                statistics.median(unknown) * 1000, ratio))
        self.assertTrue(0.3 <= ratio <= 3.0, (wrong, unknown))


class AccessTokenExpiryTest(AuthMixin, ServerTestCase):
    server_args = ("--auth.access-ttl-s=2", NO_ANONYMOUS_LIMIT) + CHEAP_ARGON2

    def test_an_expired_access_token_is_token_expired_and_refresh_still_works(self):
        tenant = self.new_tenant()
        tokens = self.owner_login(tenant)
        self.assertTokens(tokens, tenant["owner"]["id"], ttl=2)
        _, claims = jwt_parts(tokens["access_token"])
        self.assertEqual(claims["exp"] - claims["iat"], 2)
        self.assertEqual(self.me(tokens["access_token"]).status, 200)  # and now cached
        time.sleep(max(0.0, claims["exp"] + 1.0 - time.time()))
        for t in (tenant["slug"], None):
            r = self.me(tokens["access_token"], tenant=t)
            self.assertProblem(r, 401, "token-expired")
            self.assertTrue(r.headers.get("www-authenticate", "").startswith("Bearer"))
        r = self.refresh(tokens["refresh_token"])
        self.assertEqual(r.status, 200, r.body)
        self.assertTokens(r.body, tenant["owner"]["id"], ttl=2)
        self.assertEqual(self.me(r.body["access_token"]).status, 200)


class JoseInteropTest(AuthMixin, ServerTestCase):
    """Access tokens verify with an independent JOSE library (jose, tests/jose) against
    /.well-known/jwks.json; a tampered or unsigned one does not."""

    server_args = (NO_ANONYMOUS_LIMIT,) + CHEAP_ARGON2

    def jose_verify(self, token):
        node = os.environ.get("TROUPE_NODE") or shutil.which("node")
        self.assertTrue(node, "node not found (set TROUPE_NODE, or run scripts/test)")
        self.assertTrue(os.path.isfile(os.path.join(JOSE_DIR, "node_modules", "jose",
                                                    "package.json")),
                        "jose is not installed: run `npm ci` in tests/jose (scripts/test does)")
        return subprocess.run(
            [node, os.path.join(JOSE_DIR, "verify.mjs"), self.srv.url + "/.well-known/jwks.json",
             token], cwd=JOSE_DIR, capture_output=True, text=True, timeout=60,
            stdin=subprocess.DEVNULL)

    def test_jose_verifies_access_tokens_from_the_jwks(self):
        tenant = self.new_tenant()
        tokens = self.owner_login(tenant)
        proc = self.jose_verify(tokens["access_token"])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        payload = json.loads(proc.stdout)
        self.assertEqual(payload["sub"], tenant["owner"]["id"])
        self.assertEqual(payload["tid"], tenant["id"])
        self.assertEqual(payload["iss"], "troupe")
        self.assertEqual(payload, jwt_parts(tokens["access_token"])[1])
        # A refreshed token too.
        r = self.refresh(tokens["refresh_token"])
        self.assertEqual(r.status, 200, r.body)
        proc = self.jose_verify(r.body["access_token"])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(json.loads(proc.stdout)["sid"],
                         jwt_parts(tokens["access_token"])[1]["sid"])
        for bad in (tampered(tokens["access_token"]), unsigned(tokens["access_token"])):
            proc = self.jose_verify(bad)
            self.assertNotEqual(proc.returncode, 0, proc.stdout)
            self.assertEqual(proc.stdout, "")


if __name__ == "__main__":
    unittest.main()
