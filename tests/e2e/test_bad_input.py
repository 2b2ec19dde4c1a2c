"""Hostile and broken input: hundreds of malformed, truncated, oversized and slow requests,
generated programmatically and sent over parallel raw connections.

Every case must end in a 4xx response or a closed connection, within its time limit — never a
5xx, never a hang. Afterwards the server must still serve, must not have counted any 5xx, and
must exit 0 on SIGTERM.

Every request targets a path that does not exist or uses a method its path does not allow, so
a request the server happens to parse as valid still gets a 4xx.
"""

import re
import signal
import socket
import threading
import time
import unittest

from support import Closed, Server, http_request, parse_metrics, scrape

READ_TIMEOUT_MS = 1000
IDLE_TIMEOUT_MS = 2000
MAX_BODY = 4096
MAX_HEADER = 4096
WORKERS = 16
CASE_LIMIT_S = 5.0  # read timeout plus a generous margin: beyond this it is a hang

SERVER_ARGS = ["--http.read-timeout-ms=%d" % READ_TIMEOUT_MS,
               "--http.idle-timeout-ms=%d" % IDLE_TIMEOUT_MS,
               "--http.max-body-bytes=%d" % MAX_BODY,
               "--http.max-header-bytes=%d" % MAX_HEADER,
               "--http.threads=4"]


class Lcg:
    """A small deterministic pseudo-random generator (the cases must be the same every run)."""

    def __init__(self, seed):
        self.state = seed & 0xFFFFFFFFFFFFFFFF

    def randrange(self, n):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        return (self.state >> 33) % n

    def choice(self, seq):
        return seq[self.randrange(len(seq))]


class Case:
    """parts: list of (bytes, delay before sending in seconds). close: half-close after
    sending. limit: seconds from the first byte sent to the outcome."""

    def __init__(self, name, data=b"", parts=None, close=False, limit=CASE_LIMIT_S,
                 min_close_s=None):
        self.name = name
        self.parts = parts if parts is not None else [(data, 0.0)]
        self.close = close
        self.limit = limit
        self.min_close_s = min_close_s

    def __repr__(self):
        head = b"".join(p for p, _ in self.parts)[:120]
        return "%s %r" % (self.name, head)


def req(method=b"POST", target=b"/nope", version=b"HTTP/1.1", headers=None, body=b""):
    lines = [method + b" " + target + b" " + version]
    lines += headers if headers is not None else [b"Host: a"]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


VALID = req(headers=[b"Host: a", b"Content-Type: application/json", b"Content-Length: 13"],
            body=b'{"a":"hello"}')
VALID_CHUNKED = req(headers=[b"Host: a", b"Transfer-Encoding: chunked"],
                    body=b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")


def garbage_cases(rng):
    cases = []
    for i in range(24):
        n = rng.choice([1, 2, 7, 64, 300, 1500, 5000])
        blob = bytes(rng.randrange(256) for _ in range(n))
        if i % 3 == 0:
            blob += b"\r\n\r\n"
        cases.append(Case("garbage-%d-len%d" % (i, n), blob, close=(i % 2 == 0)))
    printable = bytes(range(32, 127))
    for i in range(6):
        blob = bytes(rng.choice(printable) for _ in range(10 + rng.randrange(390)))
        cases.append(Case("printable-garbage-%d" % i, blob + b"\r\n\r\n"))
    cases.append(Case("only-crlfs", b"\r\n" * 50, close=True))
    cases.append(Case("only-spaces", b" " * 100 + b"\r\n\r\n"))
    cases.append(Case("nul-bytes", b"\x00" * 200))
    cases.append(Case("nothing-sent-closed", b"", close=True))
    cases.append(Case("nothing-sent-idle", b"", limit=IDLE_TIMEOUT_MS / 1000.0 + 3.0))
    cases.append(Case("tls-client-hello", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"
                      + bytes(range(32)) + b"\x00\x00\x02\x13\x01\x01\x00" + b"\x00" * 100))
    cases.append(Case("http2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                      + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"))
    cases.append(Case("ssh-banner", b"SSH-2.0-OpenSSH_9.0\r\n"))
    return cases


def method_cases():
    methods = [b"G ET", b"GET\t", b"", b"123", b"GE\x00T", b"G\xc3\xa9T", b"(GET)", b"GET/",
               b"get", b"Get", b"FOO", b"X" * 40, b"M" * 5000, b"GET\x7f", b"{}", b"\xff\xfe",
               b"CONNECT", b"TRACE", b"PRI", b"DELETE", b"PATCH"]
    cases = []
    for i, m in enumerate(methods):
        target = b"127.0.0.1:80" if m == b"CONNECT" else b"/healthz"
        cases.append(Case("method-%d" % i, req(method=m, target=target)))
    return cases


def version_cases():
    versions = [b"HTTP/9.9", b"HTTP/2.0", b"HTTP/0.9", b"HTTP/1.2", b"HTTP/1", b"HTTP/1.1.1",
                b"http/1.1", b"HTTP/ 1.1", b"HTTP/1.1x", b"HTTPS/1.1", b"HTTP/11", b"",
                b"HTTP/1.01", b"HTTP/a.b", b"HTTP\\1.1", b"HTTP/1.1 ", b"HTTP/-1.1",
                b"HTTP/1.1\x00"]
    return [Case("version-%d" % i, req(method=b"GET", version=v)) for i, v in enumerate(versions)]


def framing_cases():
    return [
        Case("lf-only", b"GET /nope HTTP/1.1\nHost: a\n\n"),
        Case("lf-only-closed", b"GET /nope HTTP/1.1\nHost: a\n\n", close=True),
        Case("cr-only", b"GET /nope HTTP/1.1\rHost: a\r\r", close=True),
        Case("no-final-crlf-closed", b"GET /nope HTTP/1.1\r\nHost: a\r\n", close=True),
        Case("no-crlf-at-all-closed", b"GET /nope HTTP/1.1", close=True),
        Case("mixed-endings", b"GET /nope HTTP/1.1\r\nHost: a\nX-A: b\r\n\n"),
        Case("crlf-crlf-in-request-line", b"GET /nope\r\n\r\nHTTP/1.1\r\n\r\n"),
        Case("leading-crlf", b"\r\nGET /nope HTTP/1.1\r\nHost: a\r\n\r\n"),
        Case("many-leading-crlf", b"\r\n" * 20 + b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n"),
        Case("leading-space", b" GET /nope HTTP/1.1\r\nHost: a\r\n\r\n"),
        Case("tab-separators", b"GET\t/nope\tHTTP/1.1\r\nHost: a\r\n\r\n"),
        Case("double-space", b"GET  /nope  HTTP/1.1\r\nHost: a\r\n\r\n"),
        Case("bare-cr-in-header", b"GET /nope HTTP/1.1\r\nHost: a\rX: b\r\n\r\n"),
    ]


def header_cases():
    h = [
        (b"no-colon", [b"Host: a", b"NoColonHere"]),
        (b"space-in-name", [b"Host: a", b"Bad Name: v"]),
        (b"space-before-colon", [b"Host: a", b"X-A : v"]),
        (b"tab-before-colon", [b"Host: a", b"X-A\t: v"]),
        (b"empty-name", [b"Host: a", b": v"]),
        (b"obs-fold", [b"Host: a", b"X-A: b", b" c"]),
        (b"obs-fold-tab", [b"Host: a", b"X-A: b", b"\tc"]),
        (b"fold-first-line", [b" Host: a"]),
        (b"nul-in-value", [b"Host: a", b"X-A: b\x00c"]),
        (b"nul-in-name", [b"Host: a", b"X-\x00A: b"]),
        (b"ctl-in-value", [b"Host: a", b"X-A: \x01\x02\x03"]),
        (b"del-in-value", [b"Host: a", b"X-A: b\x7f"]),
        (b"del-in-name", [b"Host: a", b"X\x7fA: b"]),
        (b"utf8-name", [b"Host: a", b"X-\xc3\xa9: b"]),
        (b"high-bytes-value", [b"Host: a", b"X-A: \xff\xfe\xfd"]),
        (b"colon-only", [b"Host: a", b":"]),
        (b"two-hosts", [b"Host: a", b"Host: b"]),
        (b"no-host", []),
        (b"bad-request-id", [b"Host: a", b"X-Request-ID: " + b"\x00" * 10]),
        (b"long-request-id", [b"Host: a", b"X-Request-ID: " + b"r" * 2000]),
        (b"brackets-name", [b"Host: a", b"[X]: b"]),
        (b"quote-name", [b"Host: a", b"\"X\": b"]),
        (b"expect-weird", [b"Host: a", b"Expect: 200-ok", b"Content-Length: 2"]),
        (b"connection-garbage", [b"Host: a", b"Connection: \x01, keep-alive, ,,,"]),
        (b"upgrade-h2c", [b"Host: a", b"Connection: Upgrade, HTTP2-Settings",
                          b"Upgrade: h2c", b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"]),
        (b"upgrade-websocket", [b"Host: a", b"Connection: Upgrade", b"Upgrade: websocket",
                                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                                b"Sec-WebSocket-Version: 13"]),
    ]
    cases = [Case("header-" + name.decode(), req(headers=hdrs)) for name, hdrs in h]
    cases.append(Case("header-expect-weird-with-body",
                      req(headers=[b"Host: a", b"Expect: 100-continue", b"Content-Length: 2"],
                          body=b"{}")))
    return cases


def size_cases():
    cases = []
    for n in (MAX_HEADER - 100, MAX_HEADER + 1, 10000, 100000, 1000000):
        cases.append(Case("huge-header-value-%d" % n, req(headers=[b"Host: a",
                                                                  b"X-Big: " + b"v" * n])))
    for n in (100, 1000, 10000):
        hdrs = [b"Host: a"] + [b"X-H%d: v" % i for i in range(n)]
        cases.append(Case("many-headers-%d" % n, req(headers=hdrs)))
    cases.append(Case("many-same-headers", req(headers=[b"Host: a"] + [b"X-A: v"] * 2000)))
    cases.append(Case("huge-header-name", req(headers=[b"Host: a", b"X" * 8000 + b": v"])))
    cases.append(Case("long-method", req(method=b"A" * 20000)))
    cases.append(Case("long-version", req(version=b"HTTP/1." + b"1" * 9000)))
    cases.append(Case("body-over-limit", req(headers=[b"Host: a", b"Content-Length: %d"
                                                      % (MAX_BODY + 1)],
                                             body=b"b" * (MAX_BODY + 1))))
    cases.append(Case("body-way-over-limit", req(headers=[b"Host: a", b"Content-Length: %d"
                                                          % (MAX_BODY * 100)],
                                                 body=b"b" * (MAX_BODY * 100))))
    cases.append(Case("chunked-over-limit", req(headers=[b"Host: a",
                                                         b"Transfer-Encoding: chunked"],
                                                body=(b"400\r\n" + b"c" * 1024 + b"\r\n") * 6
                                                + b"0\r\n\r\n")))
    cases.append(Case("chunked-many-tiny", req(headers=[b"Host: a",
                                                        b"Transfer-Encoding: chunked"],
                                               body=b"1\r\nx\r\n" * 3000 + b"0\r\n\r\n")))
    return cases


def content_length_cases():
    values = [b"-1", b"abc", b"1.5", b"", b" 5", b"0x10", b"99999999999999999999999",
              b"18446744073709551616", b"5, 5", b"5, 6", b"+5", b"5 5", b"\x00", b"1e3"]
    cases = [Case("cl-%d" % i, req(headers=[b"Host: a", b"Content-Length: " + v], body=b"hello"))
             for i, v in enumerate(values)]
    cases.append(Case("cl-two-different", req(headers=[b"Host: a", b"Content-Length: 5",
                                                       b"Content-Length: 6"], body=b"hello!")))
    cases.append(Case("cl-two-same", req(headers=[b"Host: a", b"Content-Length: 5",
                                                  b"Content-Length: 5"], body=b"hello")))
    cases.append(Case("cl-on-get", req(method=b"GET", headers=[b"Host: a",
                                                              b"Content-Length: 3"],
                                       body=b"abc")))
    return cases


def transfer_encoding_cases():
    chunked = b"5\r\nhello\r\n0\r\n\r\n"
    te = [
        (b"cl-and-te", [b"Content-Length: 5", b"Transfer-Encoding: chunked"]),
        (b"te-and-cl", [b"Transfer-Encoding: chunked", b"Content-Length: 50"]),
        (b"te-gzip-chunked", [b"Transfer-Encoding: gzip, chunked"]),
        (b"te-chunked-gzip", [b"Transfer-Encoding: chunked, gzip"]),
        (b"te-identity", [b"Transfer-Encoding: identity"]),
        (b"te-twice", [b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"]),
        (b"te-space-colon", [b"Transfer-Encoding : chunked"]),
        (b"te-xchunked", [b"Transfer-Encoding: xchunked"]),
        (b"te-chunked-x", [b"Transfer-Encoding: chunked-x"]),
        (b"te-empty", [b"Transfer-Encoding: "]),
        (b"te-tab", [b"Transfer-Encoding:\tchunked"]),
        (b"te-uppercase", [b"TRANSFER-ENCODING: CHUNKED"]),
        (b"te-vertical-tab", [b"Transfer-Encoding: \x0bchunked"]),
    ]
    cases = [Case(name.decode(), req(headers=[b"Host: a"] + hdrs, body=chunked))
             for name, hdrs in te]
    cases.append(Case("te-http10", req(version=b"HTTP/1.0", headers=[
        b"Host: a", b"Transfer-Encoding: chunked"], body=chunked)))
    return cases


def chunked_cases():
    bodies = [
        (b"bad-hex", b"zz\r\nhello\r\n0\r\n\r\n"),
        (b"negative", b"-5\r\nhello\r\n0\r\n\r\n"),
        (b"huge-size", b"ffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
        (b"size-16-f", b"ffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
        (b"missing-crlf-after-data", b"5\r\nhelloXX0\r\n\r\n"),
        (b"size-too-small", b"3\r\nhello\r\n0\r\n\r\n"),
        (b"ext-garbage", b"5;;;=\x01\r\nhello\r\n0\r\n\r\n"),
        (b"ext-ok", b"5;name=value\r\nhello\r\n0\r\n\r\n"),
        (b"leading-space-size", b" 5\r\nhello\r\n0\r\n\r\n"),
        (b"0x-prefix", b"0x5\r\nhello\r\n0\r\n\r\n"),
        (b"trailer-garbage", b"5\r\nhello\r\n0\r\nNoColon\r\n\r\n"),
        (b"trailer-ok", b"5\r\nhello\r\n0\r\nX-T: v\r\n\r\n"),
        (b"lf-only", b"5\nhello\n0\n\n"),
        (b"empty-size-line", b"\r\nhello\r\n0\r\n\r\n"),
        (b"nul-size", b"\x00\r\nhello\r\n0\r\n\r\n"),
        (b"size-with-plus", b"+5\r\nhello\r\n0\r\n\r\n"),
    ]
    cases = [Case("chunked-" + name.decode(), req(headers=[b"Host: a",
                                                           b"Transfer-Encoding: chunked"],
                                                  body=body))
             for name, body in bodies]
    cases.append(Case("chunked-no-terminator-closed",
                      req(headers=[b"Host: a", b"Transfer-Encoding: chunked"],
                          body=b"5\r\nhello\r\n"), close=True))
    cases.append(Case("chunked-size-beyond-data-closed",
                      req(headers=[b"Host: a", b"Transfer-Encoding: chunked"],
                          body=b"100\r\nhello"), close=True))
    cases.append(Case("chunked-no-terminator-stalled",
                      req(headers=[b"Host: a", b"Transfer-Encoding: chunked"],
                          body=b"5\r\nhello\r\n")))
    return cases


def truncated_body_cases():
    cases = []
    for sent, declared in ((0, 10), (5, 10), (50, 100), (4000, 4096)):
        data = req(headers=[b"Host: a", b"Content-Length: %d" % declared], body=b"t" * sent)
        cases.append(Case("truncated-body-%d-of-%d-closed" % (sent, declared), data, close=True))
        cases.append(Case("truncated-body-%d-of-%d-stalled" % (sent, declared), data))
    return cases


def target_cases():
    targets = [b"/" * 3000, b"/" + b"a" * 10000, b"%", b"/%zz", b"/%00", b"/%", b"/%2",
               b"/..%2f..%2fetc/passwd", b"/../../etc/passwd", b"/nope%00", b"/nope?%zz",
               b"/nope?\x00", b"/\x7f", b"/\xf0\x9f\x98\x80", b"/\xe9", b"/a b", b"/#frag",
               b"//nope", b"/nope/../nope", b"http://x/nope", b"https://127.0.0.1:1/",
               b"*", b"", b"/problems/%zz", b"/problems/%00", b"/problems/..%2F..%2F",
               b"/problems/" + b"x" * 3000, b"/problems/\xc3\xa9", b"/problems/not-found/x",
               b"/nope?" + b"q=1&" * 800, b"/%25%32%65", b"/\\nope", b"/%u0041",
               b"/nope;param", b"/nope\t", b"/{code}", b"/problems/{code}", b"/.", b"/..",
               b"?", b"/nope?a=%ff%fe", b"\x00", b"/" + b"%41" * 1000]
    cases = []
    for i, t in enumerate(targets):
        cases.append(Case("target-%d" % i, req(method=b"POST", target=t)))
    for i, t in enumerate((b"*", b"/nope", b"example.com:443", b"http://x/healthz")):
        cases.append(Case("target-options-%d" % i, req(method=b"OPTIONS", target=t)))
    cases.append(Case("target-connect", req(method=b"CONNECT", target=b"example.com:443")))
    return cases


def cut_cases():
    cases = []
    for i in range(len(VALID) + 1):
        cases.append(Case("cut-%d-of-%d-closed" % (i, len(VALID)), VALID[:i], close=True))
    for i in range(0, len(VALID_CHUNKED) + 1, 2):
        cases.append(Case("cut-chunked-%d-of-%d-closed" % (i, len(VALID_CHUNKED)),
                          VALID_CHUNKED[:i], close=True))
    for i in range(1, len(VALID), 9):  # stalled: cut without closing, the read timeout ends it
        cases.append(Case("cut-%d-of-%d-stalled" % (i, len(VALID)), VALID[:i],
                          min_close_s=READ_TIMEOUT_MS / 1000.0 * 0.8))
    return cases


def slow_cases():
    cases = []
    # Slowloris: a header line every 150 ms, for longer than the read timeout.
    parts = [(b"GET /nope HTTP/1.1\r\n", 0.0)] + [(b"X-S%d: v\r\n" % i, 0.15) for i in range(20)]
    cases.append(Case("slowloris-headers", parts=parts, limit=READ_TIMEOUT_MS / 1000.0 + 2.0,
                      min_close_s=READ_TIMEOUT_MS / 1000.0 * 0.8))
    parts = [(bytes([b]), 0.1) for b in b"GET /nope HTTP/1.1\r\nHost: aaaaaaaaaaaaaaaaaaaaaaaaa"]
    cases.append(Case("slowloris-bytes", parts=parts, limit=READ_TIMEOUT_MS / 1000.0 + 2.0,
                      min_close_s=READ_TIMEOUT_MS / 1000.0 * 0.8))
    parts = ([(req(headers=[b"Host: a", b"Content-Length: 1000"]), 0.0)]
             + [(b"x", 0.1) for _ in range(40)])
    cases.append(Case("slow-body", parts=parts, limit=READ_TIMEOUT_MS / 1000.0 + 2.0,
                      min_close_s=READ_TIMEOUT_MS / 1000.0 * 0.8))
    for i, partial in enumerate((b"G", b"GET ", b"GET /nope", b"GET /nope HTTP/1.1",
                                 b"GET /nope HTTP/1.1\r\n", b"GET /nope HTTP/1.1\r\nHost: a",
                                 b"GET /nope HTTP/1.1\r\nHost: a\r\n",
                                 b"GET /nope HTTP/1.1\r\nHost: a\r\n\r")):
        cases.append(Case("partial-headers-stalled-%d" % i, partial,
                          min_close_s=READ_TIMEOUT_MS / 1000.0 * 0.8))
    parts = [(b"POST /nope HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
              b"Content-Length: 10\r\n\r\n", 0.0)]
    cases.append(Case("expect-continue-body-never-sent", parts=parts,
                      min_close_s=READ_TIMEOUT_MS / 1000.0 * 0.8))
    return cases


CATEGORIES = {
    "garbage": garbage_cases(Lcg(20261122)),
    "methods": method_cases(),
    "versions": version_cases(),
    "framing": framing_cases(),
    "headers": header_cases(),
    "sizes": size_cases(),
    "content_length": content_length_cases(),
    "transfer_encoding": transfer_encoding_cases(),
    "chunked": chunked_cases(),
    "truncated_bodies": truncated_body_cases(),
    "targets": target_cases(),
    "cuts": cut_cases(),
    "slow": slow_cases(),
}
ALL_CASES = [c for cases in CATEGORIES.values() for c in cases]

_STATUS_RE = re.compile(rb"^HTTP/1\.[01] (\d{3})[ \r]")


def run_case(server, case):
    """Returns None if the case passed, else a description of the failure."""
    started = time.monotonic()
    try:
        conn = server.connect(timeout=CASE_LIMIT_S)
    except OSError as e:
        return "connect failed: %r" % e
    try:
        sent_ok = True
        for data, delay in case.parts:
            if delay:
                time.sleep(delay)
                if conn.wait_closed(0.01):  # closed while we were trickling: fine
                    break
            if data and not conn.send(data):
                sent_ok = False
                break
        if case.close and sent_ok:
            conn.shutdown_write()
        deadline = started + case.limit + sum(d for _, d in case.parts)
        statuses = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "hang: neither a final response nor a close within %.1f s (got %r)" % (
                    case.limit, statuses)
            try:
                resp = conn.read_response(timeout=left)
            except Closed as closed:
                if closed.partial:
                    m = _STATUS_RE.match(closed.partial)
                    if not m:
                        return "closed after partial garbage: %r" % closed.partial[:200]
                    status = int(m.group(1))
                    if status >= 500 or status < 400:
                        return "partial response with status %d" % status
                break
            except socket.timeout:
                continue  # the deadline check above reports it
            except AssertionError as e:
                return "unparsable response: %s" % e
            statuses.append(resp.status)
            if resp.status == 100:
                continue  # interim; the final answer or the close follows
            if resp.status >= 500:
                return "server error %d: %r" % (resp.status, resp.body[:300])
            if not 400 <= resp.status < 500:
                return "status %d for a malformed request: %r" % (resp.status, resp)
            if resp.header("Content-Type") != "application/problem+json":
                return "a %d without a problem document: %r" % (resp.status, resp)
            if resp.json().get("request_id") != resp.header("X-Request-ID"):
                return "problem request_id differs from X-Request-ID: %r" % resp
            break
        elapsed = time.monotonic() - started
        if case.min_close_s is not None and not statuses and elapsed < case.min_close_s:
            return "closed after %.2f s, before the read timeout" % elapsed
        return None
    except Exception as e:  # noqa: BLE001 - every surprise is a reported failure
        return "client error: %r" % e
    finally:
        conn.close()


def run_parallel(server, cases):
    """Runs the cases on WORKERS threads; returns [(case, failure)]."""
    failures = []
    lock = threading.Lock()
    index = [0]

    def worker():
        while True:
            with lock:
                if index[0] >= len(cases):
                    return
                case = cases[index[0]]
                index[0] += 1
            failure = run_case(server, case)
            if failure is not None:
                with lock:
                    failures.append((case, failure))

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    budget = time.monotonic() + 120
    for t in threads:
        t.join(max(0.0, budget - time.monotonic()))
    if any(t.is_alive() for t in threads):
        failures.append((None, "worker threads still running after 120 s"))
    return failures


class BadInputTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(*SERVER_ARGS)
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def check(self, category):
        self.assertTrue(self.srv.running(), "the server is not running:\n" + self.srv.logs())
        cases = CATEGORIES[category]
        self.assertTrue(cases)
        failures = run_parallel(self.srv, cases)
        report = "\n".join("  %r\n    -> %s" % (c, f) for c, f in failures)
        self.assertEqual(failures, [], "%d of %d %s cases failed:\n%s" % (
            len(failures), len(cases), category, report))
        self.assertTrue(self.srv.running(), "the server died:\n" + self.srv.logs())
        status, _, _ = http_request(self.srv, "GET", "/healthz")
        self.assertEqual(status, 200)

    def test_garbage(self):
        self.check("garbage")

    def test_methods(self):
        self.check("methods")

    def test_versions(self):
        self.check("versions")

    def test_framing(self):
        self.check("framing")

    def test_headers(self):
        self.check("headers")

    def test_sizes(self):
        self.check("sizes")

    def test_content_length(self):
        self.check("content_length")

    def test_transfer_encoding(self):
        self.check("transfer_encoding")

    def test_chunked(self):
        self.check("chunked")

    def test_truncated_bodies(self):
        self.check("truncated_bodies")

    def test_targets(self):
        self.check("targets")

    def test_cuts(self):
        self.check("cuts")

    def test_slow(self):
        self.check("slow")

    def test_valid_request_of_the_cuts_is_answered(self):
        with self.srv.connect() as conn:
            conn.send(VALID)
            resp = conn.read_final_response()
            self.assertEqual(resp.status, 404)
            conn.send(VALID_CHUNKED)
            resp = conn.read_final_response()
            self.assertEqual(resp.status, 404)

    def test_zz_afterwards(self):
        """Runs last: the server survived everything, counted no 5xx, and stops cleanly."""
        self.assertGreaterEqual(len(ALL_CASES), 200)
        self.assertTrue(self.srv.running(), "the server died:\n" + self.srv.logs())
        for _ in range(3):
            status, _, body = http_request(self.srv, "GET", "/healthz")
            self.assertEqual(status, 200)
            self.assertEqual(body, b'{"status":"ok"}')
        text = scrape(self.srv)
        self.assertNotRegex(text, r'status="5\d\d"', "5xx responses were counted")
        samples = parse_metrics(text)
        fours = sum(v for n, l, v in samples if n == "troupe_http_requests_total"
                    and l.get("status", "").startswith("4"))
        self.assertGreater(fours, 50, "the 4xx answers were not counted")
        self.assertNotRegex(self.srv.logs(), r"status=5\d\d")
        self.assertNotRegex(self.srv.logs(), r"(?i)\b(error|critical)\b")
        self.assertEqual(self.srv.stop(signal.SIGTERM, timeout=15), 0, self.srv.logs()[-3000:])


if __name__ == "__main__":
    unittest.main()
