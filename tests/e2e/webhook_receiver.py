"""The other end of the webhook tests: a programmable HTTP receiver, the Standard Webhooks,
Stripe and GitHub signatures (API.md "Events and outbound webhooks", "Inbound webhooks") and a
polling helper. Only the Python standard library.

    rcv = Receiver()                       # listens on 127.0.0.1, an ephemeral port
    rcv.script("/hook", Reply(500), Reply(200, delay=3.0))
    url = rcv.url("/hook")
    ...
    first = rcv.wait_for(lambda reqs: reqs[0] if reqs else None, path="/hook")
    rcv.close()

Every request is recorded (path, lower-cased headers, raw body, monotonic and wall time, and the
status it was answered with). Each path answers from its script, in order, then from its
default (200 unless set_default() says otherwise). HTTP/1.1 keep-alive with a Content-Length on
every answer, one thread per connection."""

import base64
import hashlib
import hmac
import http.server
import json
import socket
import threading
import time
from collections import namedtuple

WAIT_S = 10.0

# One scripted answer. `body` is bytes or str; `delay` is slept before answering.
Reply = namedtuple("Reply", "status headers delay body", defaults=(200, None, 0.0, b""))


def poll(probe, timeout=WAIT_S, interval=0.1):
    """Calls probe() until it returns something truthy; returns that, or the last (falsy)
    value once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# -- signatures ------------------------------------------------------------------------------


def secret_key(secret):
    """The HMAC key of a Standard Webhooks secret: base64 after `whsec_`."""
    assert secret.startswith("whsec_"), secret
    return base64.b64decode(secret[len("whsec_"):], validate=True)


def standard_signature(secret, msg_id, timestamp, body):
    """`v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>` over the raw body bytes."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    signed = ("%s.%s." % (msg_id, timestamp)).encode("utf-8") + body
    mac = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def standard_headers(secret, msg_id, body, timestamp=None):
    """The three Standard Webhooks headers of a request a provider would send."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {"webhook-id": msg_id, "webhook-timestamp": ts,
            "webhook-signature": standard_signature(secret, msg_id, ts, body)}


def stripe_signature(secret, timestamp, body):
    """`t=<unix>,v1=<hex HMAC-SHA256(secret as UTF-8, "{t}.{body}")>`."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    mac = hmac.new(secret.encode("utf-8"), ("%d." % timestamp).encode() + body, hashlib.sha256)
    return "t=%d,v1=%s" % (timestamp, mac.hexdigest())


def github_signature(secret, body):
    """`sha256=<hex HMAC-SHA256(secret, body)>`."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


# -- the receiver ----------------------------------------------------------------------------


class Received:
    """One request as it arrived."""

    def __init__(self, method, path, headers, body, mono, wall, status):
        self.method = method
        self.path = path
        self.headers = headers  # {lower-case name: value}
        self.body = body        # raw bytes
        self.mono = mono        # time.monotonic() on arrival
        self.wall = wall        # time.time() on arrival
        self.status = status    # what the receiver answered

    @property
    def webhook_id(self):
        return self.headers.get("webhook-id")

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<%s %s id=%s → %d at %.3f %r>" % (self.method, self.path, self.webhook_id,
                                                  self.status, self.mono, self.body[:120])


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "e2e-receiver/1"
    timeout = 60  # an idle keep-alive connection is closed after this

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        self.server.receiver._opened(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.receiver._closed(self.connection)

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self):
        receiver = self.server.receiver
        body = self._read_body()
        reply = receiver._arrived(self, body)
        if reply.delay:
            receiver._stopping.wait(reply.delay)
        payload = reply.body.encode("utf-8") if isinstance(reply.body, str) else reply.body
        try:
            self.send_response(reply.status)
            for name, value in (reply.headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if payload and self.command != "HEAD":
                self.wfile.write(payload)
            self.wfile.flush()
        except OSError:  # the client gave up (a timeout under test): nothing to answer
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class Receiver:
    """A threaded HTTP server on `host`, port 0. Close it (tearDown / addCleanup)."""

    def __init__(self, host="127.0.0.1"):
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._requests = []
        self._scripts = {}
        self._defaults = {}
        self._connections = set()
        self._stopping = threading.Event()
        self._server = (_Server6 if ":" in host else _Server)((host, 0), _Handler)
        self._server.receiver = self
        self.host = host
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    # -- programming ---------------------------------------------------------------------

    def url(self, path="/hook"):
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "http://%s:%d%s" % (host, self.port, path)

    def script(self, path, *replies):
        """Appends answers for `path` (Reply or a (status, headers, delay[, body]) tuple)."""
        with self._lock:
            self._scripts.setdefault(path, []).extend(Reply(*r) for r in replies)

    def set_default(self, path, reply):
        """What `path` answers once its script is spent (else 200, empty body)."""
        with self._lock:
            self._defaults[path] = Reply(*reply)

    # -- what arrived --------------------------------------------------------------------

    def requests(self, path=None):
        with self._lock:
            return [r for r in self._requests if path is None or r.path == path]

    def ids(self, path=None):
        """The webhook-id of every request, in arrival order (duplicates kept)."""
        return [r.webhook_id for r in self.requests(path)]

    def wait_for(self, predicate, timeout=WAIT_S, path=None, what="the expected requests"):
        """Waits until predicate(requests so far, for `path` or all) is truthy and returns its
        value; fails with what arrived after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                reqs = [r for r in self._requests if path is None or r.path == path]
                value = predicate(reqs)
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("receiver: no %s within %.1f s; got %d request(s): %r"
                                         % (what, timeout, len(reqs), reqs[-10:]))
                self._changed.wait(min(left, 0.1))

    def wait_count(self, n, timeout=WAIT_S, path=None):
        """The first n requests (of `path`) once they have arrived."""
        return self.wait_for(lambda reqs: reqs[:n] if len(reqs) >= n else None, timeout, path,
                             "%d request(s)" % n)

    def wait_ids(self, ids, timeout=WAIT_S, path=None):
        """Waits until every webhook-id in `ids` arrived at least once; returns the requests."""
        wanted = set(ids)
        return self.wait_for(lambda reqs: reqs if wanted <= {r.webhook_id for r in reqs}
                             else None, timeout, path, "requests with ids %s" % sorted(wanted))

    # -- lifecycle -----------------------------------------------------------------------

    def close(self):
        self._stopping.set()
        self._server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:  # idle keep-alive connections end their threads
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- called by the handler -----------------------------------------------------------

    def _opened(self, conn):
        with self._lock:
            self._connections.add(conn)

    def _closed(self, conn):
        with self._lock:
            self._connections.discard(conn)

    def _arrived(self, handler, body):
        mono, wall = time.monotonic(), time.time()
        path = handler.path.split("?", 1)[0]
        headers = {}
        for name, value in handler.headers.items():
            name = name.lower()
            headers[name] = headers[name] + ", " + value if name in headers else value
        with self._changed:
            script = self._scripts.get(path)
            reply = script.pop(0) if script else self._defaults.get(path, Reply())
            self._requests.append(Received(handler.command, path, headers, body, mono, wall,
                                           reply.status))
            self._changed.notify_all()
        return reply
