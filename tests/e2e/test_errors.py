"""Error responses (API.md "Errors"): RFC 9457 problem documents for 404, 405, 413, 431 and
400, the connection handling that goes with them, and Expect: 100-continue."""

import json
import signal
import socket
import unittest

from support import ServerTestCase, UUID7_RE, Closed, Server, http_request

PROBLEM_KEYS = {"type", "code", "title", "status", "detail", "instance", "request_id"}


class ErrorsTest(ServerTestCase):
    server_args = ("--http.max-body-bytes=1024", "--http.max-header-bytes=2048",
                   "--http.read-timeout-ms=3000")

    def tearDown(self):
        # Whatever a test did, the server must still serve.
        status, _, body = http_request(self.srv, "GET", "/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(body, b'{"status":"ok"}')

    def assertProblem(self, resp, status, code, instance=None):
        """resp: support.Response. Checks the RFC 9457 shape and the request id."""
        self.assertEqual(resp.status, status, resp)
        self.assertEqual(resp.header("Content-Type"), "application/problem+json", resp)
        problem = resp.json()
        self.assertTrue(PROBLEM_KEYS <= set(problem), problem)
        self.assertEqual(problem["status"], status)
        self.assertEqual(problem["code"], code)
        self.assertEqual(problem["type"], "/problems/" + code)
        self.assertIsInstance(problem["title"], str)
        self.assertTrue(problem["title"])
        self.assertIsInstance(problem["detail"], str)
        rid = resp.header("X-Request-ID")
        self.assertIsNotNone(rid)
        self.assertEqual(problem["request_id"], rid)
        self.assertEqual(resp.header("Server"), "troupe")
        self.assertIsNotNone(resp.header("Date"))
        self.assertEqual(int(resp.header("Content-Length")), len(resp.body))
        if instance is not None:
            self.assertEqual(problem["instance"], instance)
        # The type resolves to the documentation page of the code.
        s, _, page = http_request(self.srv, "GET", problem["type"],
                                  headers={"Accept": "application/json"})
        self.assertEqual(s, 200)
        self.assertEqual(json.loads(page)["status"], status)
        return problem

    # -- 404 / 405 -----------------------------------------------------------------------

    def test_404_problem(self):
        for path in ("/does-not-exist", "/healthz/extra", "/v0/anything", "/HEALTHZ",
                     "/problems", "/problems/", "/metrics.txt"):
            with self.srv.connect() as conn:
                resp = conn.request("GET", path)
                self.assertProblem(resp, 404, "not-found", instance=path)
                self.assertFreshId(resp)
                self.assertFalse(resp.closes(), "a 404 need not close the connection")
                self.assertEqual(conn.request("GET", "/healthz").status, 200)

    def test_404_instance_without_query(self):
        with self.srv.connect() as conn:
            resp = conn.request("GET", "/nope?a=1&b=2")
            self.assertProblem(resp, 404, "not-found", instance="/nope")

    def test_404_keeps_client_request_id(self):
        with self.srv.connect() as conn:
            resp = conn.request("GET", "/nope", headers={"X-Request-ID": "client-id-404"})
            problem = self.assertProblem(resp, 404, "not-found")
            self.assertEqual(problem["request_id"], "client-id-404")

    def assertFreshId(self, resp):
        self.assertRegex(resp.header("X-Request-ID"), UUID7_RE)

    def test_405_problem_with_allow(self):
        for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/problems/not-found"):
            for method in ("POST", "PUT", "PATCH", "DELETE"):
                with self.srv.connect() as conn:
                    body = b'{"a":1}' if method != "DELETE" else b""
                    resp = conn.request(method, path, body=body,
                                        headers={"Content-Type": "application/json"})
                    problem = self.assertProblem(resp, 405, "method-not-allowed")
                    self.assertIn(problem["instance"], (path,))
                    allow = resp.header("Allow")
                    self.assertIsNotNone(allow, (method, path))
                    self.assertEqual({m.strip() for m in allow.split(",")},
                                     {"GET", "HEAD", "OPTIONS"}, (method, path))
                    self.assertEqual(conn.request("GET", "/healthz").status, 200)

    def test_405_unknown_method_token(self):
        # A syntactically valid but unknown method on a known path: 405 (or 501 is not
        # allowed here: the contract wants method-not-allowed for known paths).
        with self.srv.connect() as conn:
            resp = conn.request("FROB", "/healthz")
            self.assertProblem(resp, 405, "method-not-allowed")
            self.assertIsNotNone(resp.header("Allow"))

    # -- 413 ------------------------------------------------------------------------------

    def test_413_content_length_closes(self):
        with self.srv.connect() as conn:
            conn.send(b"POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 2048\r\n\r\n" + b"x" * 2048)
            resp = conn.read_final_response()
            self.assertProblem(resp, 413, "payload-too-large")
            self.assertTrue(resp.closes(), resp)
            self.assertTrue(conn.wait_closed(3.0), "connection not closed after 413")

    def test_413_problem_names_the_path(self):
        """The problem's instance is the request path, also for a 413 decided from the
        Content-Length header (the request line was read)."""
        with self.srv.connect() as conn:
            conn.send(b"POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 4096\r\n\r\n")
            resp = conn.read_final_response()
            self.assertProblem(resp, 413, "payload-too-large", instance="/healthz")

    def test_413_chunked_keeps_client_request_id(self):
        """Every response carries the client's X-Request-ID when it is valid — the 413 for a
        chunked body too (its headers were read completely)."""
        with self.srv.connect() as conn:
            conn.send(b"POST /healthz HTTP/1.1\r\nHost: a\r\nX-Request-ID: rid-413-chunked\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n800\r\n" + b"x" * 2048 + b"\r\n0\r\n\r\n")
            resp = conn.read_final_response()
            self.assertEqual(resp.status, 413)
            self.assertEqual(resp.header("X-Request-ID"), "rid-413-chunked")
            self.assertEqual(resp.json()["request_id"], "rid-413-chunked")

    def test_413_content_length_keeps_client_request_id(self):
        with self.srv.connect() as conn:
            conn.send(b"POST /healthz HTTP/1.1\r\nHost: a\r\nX-Request-ID: rid-413-length\r\n"
                      b"Content-Length: 2048\r\n\r\n" + b"x" * 2048)
            resp = conn.read_final_response()
            self.assertEqual(resp.status, 413)
            self.assertEqual(resp.header("X-Request-ID"), "rid-413-length")
            self.assertEqual(resp.json()["request_id"], "rid-413-length")

    def test_413_announced_without_body_sent(self):
        # The server may answer as soon as it sees the Content-Length.
        with self.srv.connect() as conn:
            conn.send(b"POST /nope HTTP/1.1\r\nHost: a\r\nContent-Length: 100000000\r\n\r\n")
            resp = conn.read_final_response()
            self.assertProblem(resp, 413, "payload-too-large")
            self.assertTrue(conn.wait_closed(3.0))

    def test_413_chunked_closes(self):
        with self.srv.connect() as conn:
            chunk = b"y" * 600
            data = (b"POST /healthz HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 3 + b"0\r\n\r\n")
            conn.send(data)
            resp = conn.read_final_response()
            self.assertProblem(resp, 413, "payload-too-large")
            self.assertTrue(conn.wait_closed(3.0), "connection not closed after 413")

    def test_body_at_limit_is_accepted(self):
        with self.srv.connect() as conn:
            resp = conn.request("POST", "/healthz", body=b"z" * 1024)
            self.assertProblem(resp, 405, "method-not-allowed")  # read fully, then routed
            self.assertEqual(conn.request("GET", "/healthz").status, 200)

    def test_413_then_server_still_serves(self):
        for _ in range(5):
            with self.srv.connect() as conn:
                conn.send(b"POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n"
                          + b"q" * 5000)
                try:
                    resp = conn.read_final_response()
                    self.assertEqual(resp.status, 413)
                except Closed:
                    self.fail("closed without a 413")
        self.assertEqual(http_request(self.srv, "GET", "/healthz")[0], 200)

    # -- 431 ------------------------------------------------------------------------------

    def test_431_big_header_closes(self):
        with self.srv.connect() as conn:
            conn.send(b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * 4000 + b"\r\n\r\n")
            resp = conn.read_final_response()
            self.assertProblem(resp, 431, "header-fields-too-large")
            self.assertTrue(resp.closes())
            self.assertTrue(conn.wait_closed(3.0), "connection not closed after 431")

    def test_431_many_headers(self):
        headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 20) for i in range(200))
        with self.srv.connect() as conn:
            conn.send(b"GET /healthz HTTP/1.1\r\nHost: a\r\n" + headers + b"\r\n")
            resp = conn.read_final_response()
            self.assertProblem(resp, 431, "header-fields-too-large")
            self.assertTrue(conn.wait_closed(3.0))

    def test_431_long_request_line(self):
        with self.srv.connect() as conn:
            conn.send(b"GET /" + b"p" * 3000 + b" HTTP/1.1\r\nHost: a\r\n\r\n")
            resp = conn.read_final_response()
            self.assertIn(resp.status, (414, 431), resp)
            self.assertEqual(resp.header("Content-Type"), "application/problem+json")
            self.assertTrue(conn.wait_closed(3.0))

    def test_headers_under_limit_accepted(self):
        with self.srv.connect() as conn:
            resp = conn.request("GET", "/healthz", headers={"X-Medium": "m" * 1500})
            self.assertEqual(resp.status, 200)

    # -- 400 ------------------------------------------------------------------------------

    def test_400_malformed_request_line_closes(self):
        cases = [b"GARBAGE\r\n\r\n",
                 b"GET /healthz\r\nHost: a\r\n\r\n",
                 b"GET  /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
                 b"GET /healthz HTTP/1.1 extra\r\nHost: a\r\n\r\n",
                 b"GET /healthz HTTP/9.9\r\nHost: a\r\n\r\n",
                 b"GET /healthz FTP/1.1\r\nHost: a\r\n\r\n",
                 b"G(T /healthz HTTP/1.1\r\nHost: a\r\n\r\n",
                 b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40 + b"\r\n\r\n"]
        for data in cases:
            with self.srv.connect() as conn:
                conn.send(data)
                try:
                    resp = conn.read_final_response()
                except Closed:
                    self.fail("closed without a 400 for %r" % data)
                self.assertProblem(resp, 400, "bad-request")
                self.assertTrue(resp.closes(), data)
                self.assertTrue(conn.wait_closed(3.0), "connection open after 400: %r" % data)

    def test_400_malformed_header_closes(self):
        cases = [b"GET /healthz HTTP/1.1\r\nHost: a\r\nNoColonHere\r\n\r\n",
                 b"GET /healthz HTTP/1.1\r\nHost: a\r\nBad Name: v\r\n\r\n",
                 b"GET /healthz HTTP/1.1\r\nHost: a\r\n: empty-name\r\n\r\n",
                 b"POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n",
                 b"POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
                 b"POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
                 b"Content-Length: 2\r\n\r\nab"]
        for data in cases:
            with self.srv.connect() as conn:
                conn.send(data)
                try:
                    resp = conn.read_final_response()
                except Closed:
                    self.fail("closed without a 400 for %r" % data)
                self.assertProblem(resp, 400, "bad-request")
                self.assertTrue(conn.wait_closed(3.0), "connection open after 400: %r" % data)

    def test_400_after_good_request_on_same_connection(self):
        with self.srv.connect() as conn:
            self.assertEqual(conn.request("GET", "/healthz").status, 200)
            conn.send(b"NOT A REQUEST\r\n\r\n")
            resp = conn.read_final_response()
            self.assertProblem(resp, 400, "bad-request")
            self.assertTrue(conn.wait_closed(3.0))

    def test_non_absolute_targets(self):
        for target in ("*", "http://127.0.0.1/healthz", "healthz", "//", "?x=1"):
            for method in ("GET", "OPTIONS"):
                with self.srv.connect() as conn:
                    conn.send("%s %s HTTP/1.1\r\nHost: a\r\n\r\n" % (method, target))
                    try:
                        resp = conn.read_final_response()
                    except Closed:
                        self.fail("closed without an answer for %s %s" % (method, target))
                    self.assertIn(resp.status, (400, 404), (method, target, resp))
                    self.assertEqual(resp.header("Content-Type"), "application/problem+json")
                    self.assertEqual(resp.json()["request_id"], resp.header("X-Request-ID"))

    # -- Expect: 100-continue -------------------------------------------------------------

    def test_expect_100_continue(self):
        with self.srv.connect() as conn:
            conn.send(b"POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 7\r\nExpect: 100-continue\r\n\r\n")
            interim = conn.read_response(timeout=3.0)
            self.assertEqual(interim.version, "HTTP/1.1")
            self.assertEqual(interim.status, 100)
            conn.send(b'{"a":1}')
            resp = conn.read_response(timeout=3.0)
            self.assertProblem(resp, 405, "method-not-allowed")
            self.assertEqual(conn.request("GET", "/healthz").status, 200)

    def test_expect_100_continue_on_unknown_path(self):
        with self.srv.connect() as conn:
            conn.send(b"PUT /nope HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                      b"Expect: 100-continue\r\n\r\n")
            first = conn.read_response(timeout=3.0)
            if first.status == 100:
                conn.send(b"abc")
                first = conn.read_response(timeout=3.0)
            self.assertProblem(first, 404, "not-found")

    def test_expect_100_continue_too_large(self):
        with self.srv.connect() as conn:
            conn.send(b"POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n"
                      b"Expect: 100-continue\r\n\r\n")
            resp = conn.read_final_response(timeout=3.0)
            self.assertProblem(resp, 413, "payload-too-large")
            self.assertTrue(conn.wait_closed(3.0))

    def test_expect_100_not_sent_before_headers_complete(self):
        with self.srv.connect() as conn:
            conn.send(b"POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n"
                      b"Expect: 100-continue\r\n")
            with self.assertRaises(socket.timeout):
                conn.read_response(timeout=0.5)
            conn.send(b"\r\n")
            self.assertEqual(conn.read_response(timeout=3.0).status, 100)
            conn.send(b"{}")
            self.assertEqual(conn.read_response(timeout=3.0).status, 405)


if __name__ == "__main__":
    unittest.main()
