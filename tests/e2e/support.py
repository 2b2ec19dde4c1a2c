"""Shared helpers of the end-to-end tests: a running `troupe serve` process, raw-socket HTTP
helpers for the requests a normal client cannot send, and an http.client wrapper.

Only the Python standard library is used. Every socket operation has a timeout, and every
server process is killed when its `with` block ends, whatever happened inside it.
"""

import errno
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 15.0
SOCKET_TIMEOUT_S = 5.0

_URL_RE = re.compile(r'url["=:]+\s*"?(https?://(\[[0-9a-fA-F:]+\]|[0-9.]+|[A-Za-z0-9.-]+):(\d+))')

_SANITIZER_RE = re.compile(r"ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error: ")

UUID7_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
HTTP_DATE_RE = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"\d{4} \d{2}:\d{2}:\d{2} GMT$")


TEST_KEY_ENCRYPTION_KEY = "e2e0" * 16  # 32 bytes as 64 hex digits


def psql(server, sql, timeout=120):
    """Runs `sql` as the database superuser (the tables' owner) on the server's database;
    returns stdout lines."""
    url = os.environ.get("TROUPE_TEST_PG")
    if url:
        args = [url]
    else:
        args = ["-h", os.path.join(server.cwd, "var", "pg"), "-U", "postgres", "-d", "troupe"]
    psql_bin = shutil.which("psql") or "/usr/bin/psql"
    out = subprocess.run([psql_bin] + args + ["-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
                         capture_output=True, text=True, timeout=timeout, check=True)
    return out.stdout.splitlines()


def troupe_bin():
    """The server binary: $TROUPE_BIN, else the dev build. Waits a little if the lead is
    rebuilding it right now."""
    path = os.environ.get("TROUPE_BIN") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "build-dev", "bin", "troupe")
    deadline = time.monotonic() + 60.0
    while not (os.path.isfile(path) and os.access(path, os.X_OK)):
        if time.monotonic() > deadline:
            raise RuntimeError("troupe binary not found at %s (set TROUPE_BIN)" % path)
        time.sleep(0.5)
    return path


def _retrying(spawn):
    """Calls spawn(path); retries for a while if the binary is being replaced right now."""
    deadline = time.monotonic() + 30.0
    while True:
        try:
            return spawn(troupe_bin())
        except OSError as e:
            if e.errno not in (errno.ETXTBSY, errno.ENOENT, errno.EACCES, errno.ENOEXEC) \
                    or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def run_troupe(args, env=None, timeout=20.0):
    """Runs the binary to completion: returns (exit code, stdout, stderr) as text."""
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith("TROUPE_") or k == "TROUPE_BIN"}
    full_env.update(env or {})
    with tempfile.TemporaryDirectory(prefix="troupe-e2e-") as cwd:
        proc = _retrying(lambda path: subprocess.run(
            [path] + list(args), env=full_env, capture_output=True, timeout=timeout, text=True,
            stdin=subprocess.DEVNULL, cwd=cwd))
    return proc.returncode, proc.stdout, proc.stderr


def free_port():
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `troupe serve` child process.

        with Server("--http.max-body-bytes=1024") as srv:
            status, headers, body = http_request(srv, "GET", "/healthz")

    Adds --http.port=0 unless `port_zero=False`. stdout and stderr lines are collected by
    background threads (`lines`, `stderr_lines`). Runs in a fresh temporary directory (removed
    afterwards) unless `cwd` is given, so that nothing the server writes under ./var lands in
    the source tree or leaks between servers."""

    def __init__(self, *args, env=None, port_zero=True, cwd=None, admin_token=True):
        self.args = list(args)
        if port_zero:
            self.args.insert(0, "--http.port=0")
        # scripts/test starts one throw-away PostgreSQL for the run; without it every server
        # would initialise an embedded one of its own (seconds each).
        test_pg = os.environ.get("TROUPE_TEST_PG")
        if test_pg and not any(a.startswith("--database.url") for a in self.args):
            self.args.append("--database.url=" + test_pg)
        # A server without admin.token generates one and prints it on stderr; tests that are
        # not about that give it one (admin_token=False leaves it unset).
        # scripts/test's PostgreSQL is shared by every server of the run: they must agree on
        # the key that encrypts the audit log's data keys (a fixed test key, never a real one).
        if not any(a.startswith("--auth.key-encryption-key") for a in self.args):
            self.args.append("--auth.key-encryption-key=" + TEST_KEY_ENCRYPTION_KEY)
        if admin_token and not any(a.startswith("--admin.token") for a in self.args):
            self.admin_token = "tra_e2e_" + os.urandom(16).hex()
            self.args.append("--admin.token=" + self.admin_token)
        else:
            self.admin_token = None
        self.env = dict(os.environ)
        for key in list(self.env):
            if key.startswith("TROUPE_") and key != "TROUPE_BIN":
                del self.env[key]  # the tests decide the configuration
        self.env.update(env or {})
        self.cwd = cwd
        self._tmp = None
        self.proc = None
        self.url = None
        self.host = None
        self.port = None
        self.lines = []
        self.stderr_lines = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._threads = []
        self.exit_code = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout=START_TIMEOUT_S):
        if self.cwd is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="troupe-e2e-")
            self.cwd = self._tmp.name
            os.chmod(self.cwd, 0o755)  # an embedded PostgreSQL runs as the postgres user
        self.proc = _retrying(lambda path: subprocess.Popen(
            [path, "serve"] + self.args, env=self.env, cwd=self.cwd,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        for stream, sink in ((self.proc.stdout, self.lines), (self.proc.stderr, self.stderr_lines)):
            t = threading.Thread(target=self._pump, args=(stream, sink), daemon=True)
            t.start()
            self._threads.append(t)
        line = self.wait_for_line(lambda l: _URL_RE.search(l) is not None and "listening" in l,
                                  timeout=timeout)
        if line is None:
            code = self.proc.poll()
            self.__exit__(None, None, None)
            raise RuntimeError("server did not report listening within %.0f s (exit=%r)\n"
                               "stdout:\n%s\nstderr:\n%s" % (timeout, code, "\n".join(self.lines),
                                                             "\n".join(self.stderr_lines)))
        m = _URL_RE.search(line)
        self.url = m.group(1)
        self.host = m.group(2).strip("[]")
        self.port = int(m.group(3))
        return self

    def _pump(self, stream, sink):
        for raw in iter(stream.readline, b""):
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            with self._changed:
                sink.append(text)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_line(self, predicate, timeout=5.0, start=0, stream="stdout"):
        """The first line (index >= start) matching predicate, or None after timeout."""
        sink = self.lines if stream == "stdout" else self.stderr_lines
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in sink[start:]:
                    if predicate(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                if self.proc.poll() is not None and all(not t.is_alive() for t in self._threads):
                    return None
                self._changed.wait(min(left, 0.1))

    def snapshot(self):
        with self._lock:
            return list(self.lines)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=STOP_TIMEOUT_S):
        """Waits for the exit; returns the code, or None if it is still running."""
        try:
            self.exit_code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        for t in self._threads:
            t.join(timeout=2.0)
        return self.exit_code

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT_S):
        """Sends sig and returns the exit code; kills and returns None on a timeout."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.wait(timeout)
        if code is None:
            self.kill()
        return code

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                pass
        for t in self._threads:
            t.join(timeout=2.0)

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        # A still-running server is stopped gracefully, so that a sanitizer build runs its
        # exit-time checks (LeakSanitizer) too; only a server that does not stop is killed.
        if self.proc is not None and self.proc.poll() is None:
            self.stop(signal.SIGTERM, timeout=STOP_TIMEOUT_S)
        self.kill()
        reports = [l for l in self.stderr_lines if _SANITIZER_RE.search(l)]
        for stream in (self.proc.stdout, self.proc.stderr) if self.proc else ():
            try:
                stream.close()
            except OSError:
                pass
        if self._tmp is not None:
            try:
                self._tmp.cleanup()
            except OSError:
                pass
            self._tmp = None
        if reports and exc[0] is None:
            raise AssertionError("sanitizer report from the server:\n" +
                                 "\n".join(self.stderr_lines[-60:]))
        return False

    # -- clients ---------------------------------------------------------------------------

    def connect(self, timeout=SOCKET_TIMEOUT_S):
        return RawConn(self.host, self.port, timeout)

    def logs(self):
        return "\n".join(self.snapshot())


# -- raw sockets ---------------------------------------------------------------------------


class Response:
    def __init__(self, version, status, reason, headers, body):
        self.version = version
        self.status = status
        self.reason = reason
        self.header_list = headers  # [(name, value)] in order
        self.body = body

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.header_list:
            if k.lower() == name:
                return v
        return default

    def headers_named(self, name):
        name = name.lower()
        return [v for k, v in self.header_list if k.lower() == name]

    @property
    def headers(self):
        return {k.lower(): v for k, v in self.header_list}

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def closes(self):
        return "close" in (self.header("Connection") or "").lower()

    def __repr__(self):
        return "<Response %s %d %r %r>" % (self.version, self.status, self.header_list,
                                           self.body[:200])


class Closed(Exception):
    """The peer closed the connection (EOF or reset) before a complete response."""

    def __init__(self, partial=b""):
        super().__init__("connection closed by the server (%d bytes received)" % len(partial))
        self.partial = partial


class RawConn:
    """One TCP connection with a receive buffer, so that pipelined responses can be split."""

    def __init__(self, host, port, timeout=SOCKET_TIMEOUT_S):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b""
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def send(self, data):
        """Sends everything; returns False if the server had already closed the connection."""
        if isinstance(data, str):
            data = data.encode("latin-1")
        try:
            self.sock.settimeout(self.timeout)
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            return False

    def shutdown_write(self):
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _recv(self, deadline):
        """Appends what arrives to the buffer; False on EOF/reset. Raises socket.timeout."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out waiting for the server")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            self.eof = True
            return False
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_response(self, timeout=None, head=False):
        """Reads one response (interim 1xx responses count as one). Raises Closed if the
        connection ends first, socket.timeout if nothing complete arrives in time."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\r\n\r\n" not in self.buf:
            if not self._recv(deadline):
                raise Closed(self.buf)
        head_bytes, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head_bytes.decode("latin-1").split("\r\n")
        m = re.match(r"^(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
        if not m:
            raise AssertionError("malformed status line from the server: %r" % lines[0])
        version, status, reason = m.group(1), int(m.group(2)), m.group(3) or ""
        headers = []
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                raise AssertionError("malformed header line from the server: %r" % line)
            headers.append((name.strip(), value.strip()))
        self.buf = rest
        resp = Response(version, status, reason, headers, b"")
        if 100 <= status < 200 or status in (204, 304) or head:
            return resp
        te = (resp.header("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            resp.body = self._read_chunked(deadline)
            return resp
        length = resp.header("Content-Length")
        if length is not None:
            n = int(length)
            while len(self.buf) < n:
                if not self._recv(deadline):
                    raise Closed(self.buf)
            resp.body, self.buf = self.buf[:n], self.buf[n:]
            return resp
        while self._recv(deadline):  # delimited by close
            pass
        resp.body, self.buf = self.buf, b""
        return resp

    def _read_chunked(self, deadline):
        body = b""
        while True:
            while b"\r\n" not in self.buf:
                if not self._recv(deadline):
                    raise Closed(self.buf)
            size_line, _, self.buf = self.buf.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(self.buf) < size + 2:
                if not self._recv(deadline):
                    raise Closed(self.buf)
            body += self.buf[:size]
            self.buf = self.buf[size + 2:]
            if size == 0:
                return body

    def read_final_response(self, timeout=None, head=False):
        """Skips interim 1xx responses."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            resp = self.read_response(timeout=max(0.01, deadline - time.monotonic()), head=head)
            if resp.status >= 200:
                return resp

    def wait_closed(self, timeout):
        """True if the server closes the connection within timeout (any unread bytes are
        kept in `buf`); False if it is still open then."""
        deadline = time.monotonic() + timeout
        try:
            while self._recv(deadline):
                pass
            return True
        except socket.timeout:
            return False

    def request(self, method, path, headers=None, body=b"", version="HTTP/1.1", timeout=None):
        """Sends one request and reads its final response."""
        self.send(build_request(method, path, headers, body, version))
        return self.read_final_response(timeout=timeout, head=(method == "HEAD"))


def build_request(method, path, headers=None, body=b"", version="HTTP/1.1"):
    if isinstance(body, str):
        body = body.encode("utf-8")
    hdrs = [("Host", "127.0.0.1")]
    given = {k.lower() for k, _ in (headers.items() if isinstance(headers, dict) else headers or [])}
    if "host" in given:
        hdrs = []
    hdrs += list(headers.items() if isinstance(headers, dict) else headers or [])
    if body and "content-length" not in given and "transfer-encoding" not in given:
        hdrs.append(("Content-Length", str(len(body))))
    text = "%s %s %s\r\n" % (method, path, version)
    text += "".join("%s: %s\r\n" % (k, v) for k, v in hdrs)
    return text.encode("latin-1") + b"\r\n" + body


def raw_exchange(server, data, timeout=SOCKET_TIMEOUT_S, shutdown_write=False):
    """Sends bytes on a fresh connection; returns (Response or None if closed first, closed
    after the response?)."""
    with server.connect(timeout) as conn:
        conn.send(data)
        if shutdown_write:
            conn.shutdown_write()
        try:
            resp = conn.read_final_response(timeout=timeout)
        except Closed:
            return None, True
        return resp, conn.wait_closed(0.5)


# -- http.client ---------------------------------------------------------------------------


def http_request(server, method, path, body=None, headers=None, timeout=SOCKET_TIMEOUT_S):
    """One request on a fresh http.client connection: (status, headers dict with lower-case
    names, body bytes)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def get_json(server, path, headers=None):
    status, hdrs, body = http_request(server, "GET", path, headers=headers)
    return status, hdrs, json.loads(body.decode("utf-8"))


# -- metrics -------------------------------------------------------------------------------

_SAMPLE_RE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*)\})?'
    r'\s+(\S+)(\s+-?\d+)?$')
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text → list of (name, {label: value}, float value)."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            raise AssertionError("unparsable metrics line: %r" % line)
        labels = dict(_LABEL_RE.findall(m.group(3) or ""))
        samples.append((m.group(1), labels, float(m.group(4))))
    return samples


def metric_value(samples, name, **labels):
    for n, l, v in samples:
        if n == name and all(l.get(k) == val for k, val in labels.items()):
            return v
    return None


def scrape(server):
    status, _, body = http_request(server, "GET", "/metrics")
    if status != 200:
        raise AssertionError("/metrics answered %d" % status)
    return body.decode("utf-8")


class ServerTestCase(unittest.TestCase):
    """One server for the whole class, started with `server_args`. Before each test it must
    still run; after the last one it must exit 0 on SIGTERM."""

    server_args = ()

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(*cls.server_args)
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop(signal.SIGTERM)
        cls.srv.__exit__(None, None, None)
        if code != 0:
            raise AssertionError("server exit code after SIGTERM: %r" % code)

    def setUp(self):
        self.assertTrue(self.srv.running(), "the server died:\n" + self.srv.logs())
