"""Graceful shutdown on SIGTERM and SIGINT: stop accepting, close idle keep-alive
connections, let requests in flight finish with `Connection: close`, exit 0."""

import signal
import socket
import time
import unittest

from support import Closed, Server, http_request

IN_FLIGHT_HEAD = (b"POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\n"
                  b"Content-Length: 10\r\n\r\n")


class ShutdownMixin:
    SIG = signal.SIGTERM
    SIGNAL_NAME = "Terminated"

    def test_idle_server_exits_0(self):
        with Server() as srv:
            self.assertEqual(http_request(srv, "GET", "/healthz")[0], 200)
            started = time.monotonic()
            code = srv.stop(self.SIG, timeout=10)
            self.assertEqual(code, 0, srv.logs())
            self.assertLess(time.monotonic() - started, 3.0)

    def test_idle_keep_alive_connection_closed_and_exit_0(self):
        with Server() as srv:
            conns = [srv.connect() for _ in range(3)]
            try:
                for c in conns:
                    resp = c.request("GET", "/healthz")
                    self.assertEqual(resp.status, 200)
                    self.assertFalse(resp.closes())
                fresh = srv.connect()  # connected, nothing sent yet
                conns.append(fresh)
                time.sleep(0.1)
                started = time.monotonic()
                srv.send_signal(self.SIG)
                for c in conns:
                    self.assertTrue(c.wait_closed(3.0), "idle connection not closed")
                    self.assertEqual(c.buf, b"", "bytes sent on an idle connection at shutdown")
                code = srv.wait(5.0)
                elapsed = time.monotonic() - started
                self.assertEqual(code, 0, srv.logs())
                self.assertLess(elapsed, 3.0, "idle connections delayed the exit")
            finally:
                for c in conns:
                    c.close()

    def test_in_flight_request_finishes_with_connection_close(self):
        with Server() as srv:
            with srv.connect() as conn:
                conn.send(IN_FLIGHT_HEAD + b"12345")  # the request is being read
                time.sleep(0.2)
                started = time.monotonic()
                srv.send_signal(self.SIG)
                time.sleep(0.3)
                self.assertTrue(srv.running(), "exited with a request in flight")
                self.assertTrue(conn.send(b"67890"))
                try:
                    resp = conn.read_final_response(timeout=3.0)
                except Closed:
                    self.fail("in-flight request got no response")
                self.assertEqual(resp.status, 405)
                self.assertEqual(resp.json()["code"], "method-not-allowed")
                self.assertTrue(resp.closes(), "response during drain lacks Connection: close")
                self.assertTrue(conn.wait_closed(3.0))
            code = srv.wait(5.0)
            self.assertEqual(code, 0, srv.logs())
            self.assertLess(time.monotonic() - started, 3.0)
            self.assertIsNotNone(srv.wait_for_line(lambda l: "status=405" in l, timeout=1))

    def test_in_flight_get_with_body(self):
        with Server() as srv:
            with srv.connect() as conn:
                conn.send(b"GET /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab")
                time.sleep(0.2)
                srv.send_signal(self.SIG)
                time.sleep(0.2)
                conn.send(b"cd")
                resp = conn.read_final_response(timeout=3.0)
                self.assertEqual(resp.status, 200)
                self.assertEqual(resp.body, b'{"status":"ok"}')
                self.assertTrue(resp.closes())
            self.assertEqual(srv.wait(5.0), 0)

    def test_readyz_unavailable_while_draining(self):
        with Server() as srv:
            with srv.connect() as conn:
                conn.send(b"GET /readyz HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{")
                time.sleep(0.2)
                srv.send_signal(self.SIG)
                time.sleep(0.2)
                conn.send(b"}")
                resp = conn.read_final_response(timeout=3.0)
                self.assertEqual(resp.status, 503)
                self.assertNotEqual(resp.json()["status"], "ready")
                self.assertIsNotNone(resp.header("Retry-After"))
                self.assertTrue(resp.closes())
            self.assertEqual(srv.wait(5.0), 0)

    def test_new_connections_refused_or_closed_while_draining(self):
        with Server() as srv:
            with srv.connect() as conn:
                conn.send(IN_FLIGHT_HEAD + b"12")  # keeps the server draining
                time.sleep(0.2)
                srv.send_signal(self.SIG)
                time.sleep(0.3)
                self.assertTrue(srv.running())
                outcome = None
                try:
                    late = socket.create_connection((srv.host, srv.port), timeout=2.0)
                except (ConnectionRefusedError, ConnectionResetError):
                    outcome = "refused"
                else:
                    try:
                        late.settimeout(2.0)
                        try:
                            late.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
                            data = b""
                            while True:
                                chunk = late.recv(4096)
                                if not chunk:
                                    break
                                data += chunk
                            outcome = data
                        except (ConnectionResetError, BrokenPipeError):
                            outcome = "reset"
                        except socket.timeout:
                            self.fail("a connection made during the drain hangs (neither "
                                      "refused nor closed within 2 s)")
                    finally:
                        late.close()
                if isinstance(outcome, bytes) and outcome:
                    self.assertNotRegex(outcome, rb"^HTTP/1\.1 2\d\d",
                                        "a new connection was served during the drain")
                conn.send(b"34567890")
                resp = conn.read_final_response(timeout=3.0)
                self.assertEqual(resp.status, 405)
                self.assertTrue(resp.closes())
            self.assertEqual(srv.wait(5.0), 0)
        # After the exit nothing listens on the port any more.
        with self.assertRaises(OSError):
            socket.create_connection((srv.host, srv.port), timeout=2.0).close()

    def test_pipelined_request_after_drain_not_served(self):
        """A request already in flight is answered; one pipelined after it is not (the
        connection closes after the in-flight response)."""
        with Server() as srv:
            with srv.connect() as conn:
                conn.send(b"GET /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nx")
                time.sleep(0.2)
                srv.send_signal(self.SIG)
                time.sleep(0.2)
                conn.send(b"y" + b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
                resp = conn.read_final_response(timeout=3.0)
                self.assertEqual(resp.status, 200)
                self.assertTrue(resp.closes())
                self.assertTrue(conn.wait_closed(3.0))
                self.assertEqual(conn.buf, b"", "a second response was sent after close")
            self.assertEqual(srv.wait(5.0), 0)

    def test_grace_expires_then_exit_0(self):
        with Server("--http.shutdown-grace-ms=1000", "--http.read-timeout-ms=60000") as srv:
            with srv.connect() as conn:
                conn.send(IN_FLIGHT_HEAD + b"1")  # never completed
                time.sleep(0.2)
                started = time.monotonic()
                srv.send_signal(self.SIG)
                code = srv.wait(8.0)
                elapsed = time.monotonic() - started
                self.assertEqual(code, 0, srv.logs())
                self.assertGreater(elapsed, 0.8, "did not wait for the request in flight")
                self.assertLess(elapsed, 4.0, "grace of 1 s not honoured: %.2f s" % elapsed)
                self.assertTrue(conn.wait_closed(2.0))

    def test_shutdown_log_lines(self):
        with Server() as srv:
            self.assertEqual(srv.stop(self.SIG), 0)
            logs = srv.logs()
            self.assertRegex(logs, r"shutdown requested.*signal=%s" % self.SIGNAL_NAME)
            self.assertIn("draining connections", logs)
            self.assertRegex(logs, r"(?m)\bstopped$")
            lines = srv.snapshot()
            order = [next(i for i, l in enumerate(lines) if key in l)
                     for key in ("listening", "shutdown requested", "draining connections")]
            self.assertEqual(order, sorted(order))
            self.assertIn("stopped", lines[-1])
            self.assertEqual(srv.stderr_lines, [])


class SigtermTest(ShutdownMixin, unittest.TestCase):
    SIG = signal.SIGTERM
    SIGNAL_NAME = "Terminated"


class SigintTest(ShutdownMixin, unittest.TestCase):
    SIG = signal.SIGINT
    SIGNAL_NAME = "Interrupt"


class SecondSignalTest(unittest.TestCase):
    def test_second_signal_exits_at_once(self):
        with Server("--http.shutdown-grace-ms=10000", "--http.read-timeout-ms=60000") as srv:
            with srv.connect() as conn:
                conn.send(IN_FLIGHT_HEAD + b"1")
                time.sleep(0.2)
                srv.send_signal(signal.SIGTERM)
                time.sleep(1.3)  # a repeat within 1 s counts as the same request
                self.assertTrue(srv.running())
                started = time.monotonic()
                srv.send_signal(signal.SIGTERM)
                code = srv.wait(3.0)
                self.assertIsNotNone(code, "a second signal did not end the process")
                self.assertLess(time.monotonic() - started, 2.0)

    def test_a_repeat_within_a_second_is_the_same_request(self):
        # timeout(1) and some supervisors signal the process and its group at once.
        with Server("--http.shutdown-grace-ms=10000") as srv:
            with srv.connect() as conn:
                conn.send(IN_FLIGHT_HEAD + b"12345")
                time.sleep(0.2)
                srv.send_signal(signal.SIGTERM)
                srv.send_signal(signal.SIGTERM)
                time.sleep(0.3)
                self.assertTrue(srv.running(), "a duplicate signal forced the exit")
                self.assertTrue(conn.send(b"67890"))
                resp = conn.read_final_response(timeout=3.0)
                self.assertEqual(resp.status, 405)
                self.assertTrue(resp.closes())
            self.assertEqual(srv.wait(5.0), 0, srv.logs())


if __name__ == "__main__":
    unittest.main()
