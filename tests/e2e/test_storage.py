"""The storage layer seen from outside: `troupe migrate`, the embedded PostgreSQL of `serve`,
and /readyz's database check."""

import json
import os
import signal
import subprocess
import tempfile
import time
import unittest

from support import Server, http_request, troupe_bin


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


class MigrateCommandTest(unittest.TestCase):
    def test_migrate_applies_the_schema_and_exits_0(self):
        url = os.environ.get("TROUPE_TEST_PG")
        if not url:
            self.fail("TROUPE_TEST_PG is not set: run through scripts/test")
        env = {k: v for k, v in os.environ.items() if not k.startswith("TROUPE_")}
        with tempfile.TemporaryDirectory() as cwd:
            proc = subprocess.run([troupe_bin(), "migrate", "--database.url=" + url], env=env,
                                  cwd=cwd, capture_output=True, text=True, timeout=60,
                                  stdin=subprocess.DEVNULL)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertRegex(proc.stdout, r"schema ready version=[1-9]")
        self.assertNotIn("listening", proc.stdout)  # migrate does not serve

    def test_an_unreachable_database_fails_with_exit_1(self):
        with tempfile.TemporaryDirectory() as cwd:
            proc = subprocess.run([troupe_bin(), "migrate",
                                   "--database.url=host=/nonexistent port=1 connect_timeout=2"],
                                  cwd=cwd, capture_output=True, text=True, timeout=60,
                                  stdin=subprocess.DEVNULL)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("cannot connect to postgres", proc.stdout)


class EmbeddedPostgresTest(unittest.TestCase):
    """No database.url: serve starts, uses and stops its own PostgreSQL."""

    def embedded_server(self, cwd=None):
        return Server("--database.url=", cwd=cwd)

    def postmaster_pid(self, srv):
        with open(os.path.join(srv.cwd, "var", "pg", "data", "postmaster.pid")) as f:
            return int(f.readline())

    def test_serve_runs_migrates_and_stops_its_postgres_and_reuses_the_data(self):
        with self.embedded_server() as srv:
            self.assertIsNotNone(srv.wait_for_line(lambda l: "embedded postgres ready" in l
                                                   and "initialised_now=true" in l, timeout=1))
            pid = self.postmaster_pid(srv)
            self.assertTrue(pid_alive(pid))
            status, _, body = http_request(srv, "GET", "/readyz")
            self.assertEqual(status, 200, body)
            self.assertEqual(json.loads(body)["checks"]["database"], "ok")
            self.assertEqual(srv.stop(), 0)
            deadline = time.monotonic() + 10
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            self.assertFalse(pid_alive(pid), "PostgreSQL outlived troupe")
            with self.embedded_server(cwd=srv.cwd) as again:
                self.assertIsNotNone(again.wait_for_line(
                    lambda l: "embedded postgres ready" in l and "initialised_now=false" in l,
                    timeout=1))
                self.assertEqual(again.stop(), 0)

    def test_readyz_is_503_while_postgres_is_down(self):
        with self.embedded_server() as srv:
            pid = self.postmaster_pid(srv)
            os.kill(pid, signal.SIGINT)  # fast shutdown behind troupe's back
            deadline = time.monotonic() + 10
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            status, headers, body = http_request(srv, "GET", "/readyz")
            self.assertEqual(status, 503, body)
            checks = json.loads(body)["checks"]
            self.assertNotEqual(checks["database"], "ok")
            self.assertEqual(headers.get("retry-after"), "1")
            self.assertEqual(http_request(srv, "GET", "/healthz")[0], 200)  # alive, not ready


if __name__ == "__main__":
    unittest.main()
