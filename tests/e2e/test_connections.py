"""Connection handling: keep-alive, HTTP/1.0, pipelining, read and idle timeouts, and the
connection limit (API.md "Conventions"; `troupe --help` for the http.* limits)."""

import http.client
import json
import signal
import threading
import time
import unittest

from support import ServerTestCase, UUID7_RE, Closed, Server, build_request, http_request


class KeepAliveTest(ServerTestCase):
    def test_keep_alive_100_requests_one_socket(self):
        with self.srv.connect() as conn:
            local = conn.sock.getsockname()
            paths = ["/healthz", "/readyz", "/nope", "/openapi.json", "/problems/not-found"]
            for i in range(100):
                path = paths[i % len(paths)]
                rid = "ka-%d" % i
                resp = conn.request("GET", path, headers={"X-Request-ID": rid})
                self.assertIn(resp.status, (200, 404))
                self.assertEqual(resp.header("X-Request-ID"), rid)
                self.assertFalse(resp.closes(), "response %d closes the connection" % i)
            self.assertEqual(conn.sock.getsockname(), local)
            self.assertFalse(conn.eof)
            self.assertFalse(conn.wait_closed(0.3), "server closed a keep-alive connection")

    def test_keep_alive_http_client_reuses_socket(self):
        conn = http.client.HTTPConnection(self.srv.host, self.srv.port, timeout=5)
        try:
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            resp.read()
            sock = conn.sock
            self.assertIsNotNone(sock)
            port = sock.getsockname()[1]
            for _ in range(20):
                conn.request("GET", "/healthz")
                resp = conn.getresponse()
                self.assertEqual(resp.status, 200)
                self.assertEqual(resp.read(), b'{"status":"ok"}')
                self.assertIs(conn.sock, sock, "http.client had to reconnect")
            self.assertEqual(conn.sock.getsockname()[1], port)
        finally:
            conn.close()

    def test_keep_alive_across_error_responses(self):
        with self.srv.connect() as conn:
            for method, path, want in [("GET", "/nope", 404), ("POST", "/healthz", 405),
                                       ("GET", "/problems/zzz", 404), ("GET", "*", 400),
                                       ("OPTIONS", "/healthz", 204), ("HEAD", "/healthz", 200),
                                       ("GET", "/healthz", 200)]:
                resp = conn.request(method, path)
                self.assertEqual(resp.status, want, (method, path))
            self.assertFalse(conn.eof)

    def test_connection_close_request_header(self):
        with self.srv.connect() as conn:
            resp = conn.request("GET", "/healthz", headers={"Connection": "close"})
            self.assertEqual(resp.status, 200)
            self.assertTrue(resp.closes())
            self.assertTrue(conn.wait_closed(3.0))

    def test_http10_closes(self):
        with self.srv.connect() as conn:
            conn.send(b"GET /healthz HTTP/1.0\r\n\r\n")
            resp = conn.read_final_response()
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.body, b'{"status":"ok"}')
            self.assertIn(resp.version, ("HTTP/1.0", "HTTP/1.1"))
            self.assertIsNotNone(resp.header("X-Request-ID"))
            self.assertTrue(conn.wait_closed(3.0), "HTTP/1.0 connection left open")

    def test_http10_error_closes(self):
        with self.srv.connect() as conn:
            conn.send(b"GET /nope HTTP/1.0\r\n\r\n")
            resp = conn.read_final_response()
            self.assertEqual(resp.status, 404)
            self.assertEqual(resp.json()["code"], "not-found")
            self.assertTrue(conn.wait_closed(3.0))

    def test_pipelined_requests_in_order(self):
        paths = ["/healthz", "/nope", "/readyz", "/problems/conflict", "/healthz",
                 "/metrics", "/nope2", "/openapi.json", "/healthz", "/readyz"] * 3
        data = b"".join(build_request("GET", p, {"X-Request-ID": "pipe-%d" % i})
                        for i, p in enumerate(paths))
        with self.srv.connect() as conn:
            conn.send(data)
            for i, p in enumerate(paths):
                resp = conn.read_final_response(timeout=5.0)
                self.assertEqual(resp.header("X-Request-ID"), "pipe-%d" % i, "out of order")
                self.assertEqual(resp.status, 404 if p.startswith("/nope") else 200, p)
                if p == "/healthz":
                    self.assertEqual(resp.body, b'{"status":"ok"}')
            self.assertEqual(conn.buf, b"")
            self.assertEqual(conn.request("GET", "/healthz").status, 200)

    def test_pipelined_500_requests_one_send(self):
        n = 500
        data = b"".join(build_request("GET", "/openapi.json" if i % 2 else "/healthz",
                                      {"X-Request-ID": "many-%d" % i}) for i in range(n))
        with self.srv.connect() as conn:
            conn.send(data)
            for i in range(n):
                resp = conn.read_final_response(timeout=10.0)
                self.assertEqual(resp.status, 200)
                self.assertEqual(resp.header("X-Request-ID"), "many-%d" % i)
                if i % 2:
                    self.assertEqual(json.loads(resp.body)["openapi"][:3], "3.1")
            self.assertEqual(conn.buf, b"")

    def test_pipelined_with_bodies_and_head(self):
        reqs = [build_request("POST", "/healthz", {"X-Request-ID": "b0"}, b"abcdef"),
                build_request("HEAD", "/healthz", {"X-Request-ID": "b1"}),
                build_request("GET", "/healthz", {"X-Request-ID": "b2"}),
                build_request("POST", "/nope", {"X-Request-ID": "b3",
                                                "Transfer-Encoding": "chunked"},
                              b"3\r\nabc\r\n0\r\n\r\n"),
                build_request("GET", "/healthz", {"X-Request-ID": "b4"})]
        with self.srv.connect() as conn:
            conn.send(b"".join(reqs))
            want = [405, 200, 200, 404, 200]
            for i, status in enumerate(want):
                resp = conn.read_final_response(head=(i == 1))
                self.assertEqual((resp.header("X-Request-ID"), resp.status), ("b%d" % i, status))
            self.assertEqual(conn.buf, b"")

    def test_pipelined_sent_byte_by_byte(self):
        data = b"".join(build_request("GET", "/healthz", {"X-Request-ID": "bb-%d" % i})
                        for i in range(3))
        with self.srv.connect() as conn:
            for i in range(len(data)):
                conn.send(data[i:i + 1])
            for i in range(3):
                resp = conn.read_final_response()
                self.assertEqual(resp.header("X-Request-ID"), "bb-%d" % i)
                self.assertEqual(resp.status, 200)

    def test_many_parallel_connections(self):
        errors = []

        def worker(n):
            try:
                with self.srv.connect() as conn:
                    for j in range(10):
                        resp = conn.request("GET", "/healthz",
                                            headers={"X-Request-ID": "par-%d-%d" % (n, j)})
                        if resp.status != 200 or resp.header("X-Request-ID") != "par-%d-%d" % (n, j):
                            errors.append(resp)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertFalse(any(t.is_alive() for t in threads))
        self.assertEqual(errors, [])


class TimeoutTest(unittest.TestCase):
    def test_read_timeout_slow_headers(self):
        with Server("--http.read-timeout-ms=500", "--http.idle-timeout-ms=10000") as srv:
            with srv.connect() as conn:
                conn.send(b"GET /healthz HTTP/1.1\r\n")
                started = time.monotonic()
                closed_at = None
                for i in range(40):  # trickle one header every 100 ms, never finish
                    if not conn.send(b"X-Slow-%d: v\r\n" % i):
                        closed_at = time.monotonic()
                        break
                    if conn.wait_closed(0.1):
                        closed_at = time.monotonic()
                        break
                self.assertIsNotNone(closed_at, "slow client not disconnected after 4 s")
                elapsed = closed_at - started
                self.assertGreater(elapsed, 0.3, "closed before the read timeout")
                self.assertLess(elapsed, 2.0, "closed too late: %.2f s" % elapsed)
                if conn.buf:  # an answer is optional; a 5xx is not acceptable
                    self.assertRegex(conn.buf, rb"^HTTP/1\.[01] 4\d\d ")
            self.assertEqual(http_request(srv, "GET", "/healthz")[0], 200)
            self.assertEqual(srv.stop(), 0)

    def test_read_timeout_slow_body(self):
        with Server("--http.read-timeout-ms=500", "--http.idle-timeout-ms=10000") as srv:
            with srv.connect() as conn:
                conn.send(b"POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n")
                started = time.monotonic()
                closed_at = None
                for _ in range(40):
                    if not conn.send(b"x") or conn.wait_closed(0.1):
                        closed_at = time.monotonic()
                        break
                self.assertIsNotNone(closed_at, "slow body not disconnected after 4 s")
                self.assertLess(closed_at - started, 2.0)
                if conn.buf:
                    self.assertRegex(conn.buf, rb"^HTTP/1\.[01] 4\d\d ")
            self.assertEqual(srv.stop(), 0)

    def test_request_within_read_timeout_served(self):
        with Server("--http.read-timeout-ms=1000") as srv:
            with srv.connect() as conn:
                data = build_request("GET", "/healthz")
                for i in range(0, len(data), 8):  # ~0.4 s in all, under the limit
                    conn.send(data[i:i + 8])
                    time.sleep(0.05)
                self.assertEqual(conn.read_final_response().status, 200)
                # The timer is per request: a second slow-ish request is fine too.
                for i in range(0, len(data), 8):
                    conn.send(data[i:i + 8])
                    time.sleep(0.05)
                self.assertEqual(conn.read_final_response().status, 200)
            self.assertEqual(srv.stop(), 0)

    def test_idle_timeout(self):
        with Server("--http.idle-timeout-ms=500", "--http.read-timeout-ms=5000") as srv:
            with srv.connect() as conn:
                self.assertEqual(conn.request("GET", "/healthz").status, 200)
                # Still open shortly after the response ...
                self.assertFalse(conn.wait_closed(0.2))
                self.assertEqual(conn.request("GET", "/healthz").status, 200)
                # ... and closed after the idle timeout.
                started = time.monotonic()
                self.assertTrue(conn.wait_closed(3.0), "idle connection not closed")
                elapsed = time.monotonic() - started
                self.assertGreater(elapsed, 0.3)
                self.assertLess(elapsed, 2.0)
                self.assertEqual(conn.buf, b"", "no bytes may be sent on an idle close")
            with srv.connect() as conn:  # a connection that never sends anything
                started = time.monotonic()
                self.assertTrue(conn.wait_closed(3.0), "silent connection not closed")
                self.assertLess(time.monotonic() - started, 2.0)
            self.assertEqual(http_request(srv, "GET", "/healthz")[0], 200)
            self.assertEqual(srv.stop(), 0)


class MaxConnectionsTest(ServerTestCase):
    server_args = ("--http.max-connections=2",)

    def fill(self):
        conns = [self.srv.connect(), self.srv.connect()]
        for c in conns:  # make sure both are accepted and counted
            self.assertEqual(c.request("GET", "/healthz").status, 200)
        return conns

    def release(self, conns):
        for c in conns:
            c.close()
        time.sleep(0.3)  # let the server notice

    def read_rejection(self):
        with self.srv.connect() as extra:
            extra.send(build_request("GET", "/healthz"))
            try:
                resp = extra.read_final_response(timeout=5.0)
            except Closed:
                self.fail("extra connection closed without a 503")
            closed = extra.wait_closed(3.0)
        return resp, closed

    def test_extra_connection_gets_503(self):
        conns = self.fill()
        try:
            resp, closed = self.read_rejection()
            self.assertEqual(resp.status, 503)
            self.assertEqual(resp.header("Content-Type"), "application/problem+json")
            self.assertEqual(resp.header("Retry-After"), "1")
            problem = resp.json()
            self.assertEqual(problem["code"], "service-unavailable")
            self.assertEqual(problem["type"], "/problems/service-unavailable")
            self.assertEqual(problem["status"], 503)
            self.assertEqual(problem["request_id"], resp.header("X-Request-ID"))
            self.assertRegex(resp.header("X-Request-ID"), UUID7_RE)
            self.assertTrue(closed, "rejected connection left open")
            # The admitted connections still work.
            for c in conns:
                self.assertEqual(c.request("GET", "/healthz").status, 200)
        finally:
            self.release(conns)
        # Capacity comes back when connections close.
        self.assertEqual(http_request(self.srv, "GET", "/healthz")[0], 200)

    def test_503_has_standard_headers(self):
        """Every response has Date, Server: troupe and Content-Length — the connection-limit
        rejection too."""
        conns = self.fill()
        try:
            resp, _ = self.read_rejection()
            self.assertEqual(resp.status, 503)
            self.assertEqual(int(resp.header("Content-Length")), len(resp.body))
            self.assertEqual(resp.header("Server"), "troupe", resp)
            self.assertIsNotNone(resp.header("Date"), resp)
        finally:
            self.release(conns)

    def test_capacity_returns_after_rejections(self):
        conns = self.fill()
        try:
            resp, _ = self.read_rejection()
            self.assertEqual(resp.status, 503)
        finally:
            self.release(conns)
        # The server stays healthy and serves again at full capacity.
        conns = self.fill()
        self.release(conns)


if __name__ == "__main__":
    unittest.main()
