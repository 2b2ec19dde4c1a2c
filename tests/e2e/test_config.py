"""Configuration (API.md "Configuration"): command-line, environment and INI file sources and
their precedence, errors (exit code 2 and one stderr line naming the key), `version`,
`--help`."""

import os
import re
import signal
import tempfile
import unittest

from support import Server, free_port, http_request, run_troupe


class ConfigErrorTest(unittest.TestCase):
    def assertConfigError(self, args, key, env=None):
        code, out, err = run_troupe(["serve"] + args, env=env, timeout=20)
        self.assertEqual(code, 2, "args=%r env=%r stdout=%r stderr=%r" % (args, env, out, err))
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, "expected one stderr line, got %r" % err)
        self.assertIn(key, lines[0])
        self.assertNotIn("listening", out)
        return lines[0]

    def test_port_not_a_number(self):
        self.assertConfigError(["--http.port=abc"], "http.port")

    def test_port_negative(self):
        self.assertConfigError(["--http.port=-5"], "http.port")

    def test_port_too_large(self):
        self.assertConfigError(["--http.port=65536"], "http.port")

    def test_port_empty(self):
        self.assertConfigError(["--http.port="], "http.port")

    def test_limits_not_a_list(self):
        self.assertConfigError(["--http.port=0", "--limits.principal=600"], "limits.principal")

    def test_limits_bad_list(self):
        for value in ("[600]", "[a,b]", "[600,60,1]", "[-1,60]"):
            self.assertConfigError(["--http.port=0", "--limits.tenant=" + value],
                                   "limits.tenant")

    def test_unknown_key(self):
        line = self.assertConfigError(["--htp.port=1"], "htp.port")
        self.assertNotIn("Traceback", line)

    def test_unknown_key_in_known_group(self):
        self.assertConfigError(["--http.prot=1"], "http.prot")

    def test_bad_enum_values(self):
        self.assertConfigError(["--http.port=0", "--log.format=xml"], "log.format")
        self.assertConfigError(["--http.port=0", "--log.level=loud"], "log.level")

    def test_bad_booleans_and_sizes(self):
        self.assertConfigError(["--http.port=0", "--webhooks.allow-private-targets=maybe"],
                               "webhooks.allow-private-targets")
        self.assertConfigError(["--http.port=0", "--http.max-body-bytes=lots"],
                               "http.max-body-bytes")
        self.assertConfigError(["--http.port=0", "--http.max-header-bytes=100"],
                               "http.max-header-bytes")

    def test_bad_list(self):
        self.assertConfigError(["--http.port=0", "--webhooks.retry-schedule=[a]"],
                               "webhooks.retry-schedule")

    def test_env_bad_value(self):
        line = self.assertConfigError([], "", env={"TROUPE_HTTP_PORT": "abc"})
        self.assertTrue("http.port" in line or "TROUPE_HTTP_PORT" in line, line)

    def test_env_bad_value_names_key(self):
        line = self.assertConfigError(["--http.max-body-bytes=1024"], "",
                                      env={"TROUPE_LIMITS_PRINCIPAL": "600"})
        self.assertTrue("limits.principal" in line or "TROUPE_LIMITS_PRINCIPAL" in line, line)

    def test_config_file_errors(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "bad.ini")
            with open(path, "w") as f:
                f.write("[http]\nprot=8080\n")
            self.assertConfigError(["--config-file=" + path], "prot")
            with open(path, "w") as f:
                f.write("[http]\nport=banana\n")
            self.assertConfigError(["--config-file=" + path], "port")
            missing = os.path.join(tmp, "missing.ini")
            self.assertConfigError(["--config-file=" + missing], "missing.ini")

    def test_unknown_command(self):
        code, out, err = run_troupe(["frobnicate"])
        self.assertNotEqual(code, 0)
        self.assertIn("frobnicate", err)

    def test_no_arguments(self):
        code, _, _ = run_troupe([])
        self.assertNotEqual(code, 0)


class CommandsTest(unittest.TestCase):
    def test_version(self):
        code, out, err = run_troupe(["version"])
        self.assertEqual(code, 0, err)
        self.assertRegex(out.strip(), r"^troupe \d+\.\d+\.\d+$")
        self.assertEqual(len(out.strip().splitlines()), 1)

    def test_version_matches_openapi(self):
        _, out, _ = run_troupe(["version"])
        version = out.strip().split()[1]
        with Server() as srv:
            status, _, body = http_request(srv, "GET", "/openapi.json")
            self.assertEqual(status, 200)
            self.assertIn('"version": "%s"' % version, body.decode("utf-8").replace('":"', '": "'))
            self.assertEqual(srv.stop(), 0)

    def test_help(self):
        code, out, err = run_troupe(["--help"])
        self.assertEqual(code, 0, err)
        for command in ("serve", "version"):
            self.assertRegex(out, r"(?m)^\s+%s\b" % command)
        defaults = {
            "http.port": "8080",
            "http.address": "127.0.0.1",
            "http.max-body-bytes": "1048576",
            "http.max-header-bytes": "16384",
            "database.url": "",
            "database.pool-size": "8",
            "limits.principal": "[600,60]",
            "limits.tenant": "[6000,60]",
            "limits.anonymous": "[30,60]",
            "webhooks.retry-schedule": "[5,300,1800,7200,18000,36000,36000]",
            "webhooks.allow-private-targets": "false",
            "jobs.retry-base-ms": "1000",
            "auth.issuer": "troupe",
            "log.format": "text",
            "log.level": "info",
        }
        for key, default in defaults.items():
            m = re.search(r"(?m)^\s+%s\s+(.*)$" % re.escape(key), out)
            self.assertIsNotNone(m, "--help does not list " + key)
            self.assertIn(default, m.group(1), "default of %s" % key)

    def test_help_lists_every_api_md_key(self):
        _, out, _ = run_troupe(["--help"])
        keys = """http.address http.port http.threads http.max-body-bytes http.base-domain
            http.tls-cert http.tls-key database.url database.embedded-dir database.pool-size
            tenants.idle-timeout-s admin.token auth.issuer auth.access-ttl-s auth.refresh-ttl-s
            auth.max-failures auth.key-rotation-days auth.key-encryption-key limits.principal
            limits.tenant limits.anonymous limits.inbound quota.requests-per-month
            idempotency.ttl-s audit.retention-days webhooks.retry-schedule webhooks.timeout-ms
            webhooks.disable-after webhooks.allow-private-targets jobs.retry-base-ms
            jobs.retry-max-ms jobs.concurrency jobs.test-handlers cluster.node-id cluster.port
            cluster.seeds log.level log.format""".split()
        for key in keys:
            self.assertRegex(out, r"(?m)^\s+%s\s" % re.escape(key))

    def test_help_anywhere(self):
        for args in (["serve", "--help"], ["help"]):
            code, out, _ = run_troupe(args)
            self.assertEqual(code, 0, args)
            self.assertIn("http.port", out)


class SourcesTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def ini(self, text):
        path = os.path.join(self.tmp.name, "troupe.ini")
        with open(path, "w") as f:
            f.write(text)
        return path

    def serve_and_check(self, srv, port):
        self.assertEqual(srv.port, port, srv.logs())
        status, _, body = http_request(srv, "GET", "/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(srv.stop(signal.SIGTERM), 0)

    def test_config_file_port(self):
        port = free_port()
        path = self.ini("; test file\n[http]\nport=%d\naddress=\"127.0.0.1\"\n" % port)
        with Server("--config-file=" + path, port_zero=False) as srv:
            self.serve_and_check(srv, port)

    def test_config_file_other_settings(self):
        path = self.ini("[http]\nport=0\nmax-body-bytes=100\n\n[log]\nformat=\"json\"\n")
        with Server("--config-file=" + path, port_zero=False) as srv:
            self.assertTrue(srv.lines[0].startswith("{"), srv.lines[0])
            with srv.connect() as conn:
                resp = conn.request("POST", "/healthz", body=b"x" * 200)
                self.assertEqual(resp.status, 413)
            self.assertEqual(srv.stop(), 0)

    def test_env_beats_file(self):
        file_port, env_port = free_port(), free_port()
        path = self.ini("[http]\nport=%d\n" % file_port)
        with Server("--config-file=" + path, port_zero=False,
                    env={"TROUPE_HTTP_PORT": str(env_port)}) as srv:
            self.serve_and_check(srv, env_port)

    def test_command_line_beats_env(self):
        file_port, env_port, cli_port = free_port(), free_port(), free_port()
        path = self.ini("[http]\nport=%d\n" % file_port)
        with Server("--config-file=" + path, "--http.port=%d" % cli_port, port_zero=False,
                    env={"TROUPE_HTTP_PORT": str(env_port)}) as srv:
            self.serve_and_check(srv, cli_port)

    def test_command_line_beats_env_without_file(self):
        env_port, cli_port = free_port(), free_port()
        with Server("--http.port=%d" % cli_port, port_zero=False,
                    env={"TROUPE_HTTP_PORT": str(env_port)}) as srv:
            self.serve_and_check(srv, cli_port)

    def test_env_dashes_become_underscores(self):
        with Server(env={"TROUPE_HTTP_MAX_BODY_BYTES": "100"}) as srv:
            with srv.connect() as conn:
                self.assertEqual(conn.request("POST", "/healthz", body=b"x" * 200).status, 413)
            with srv.connect() as conn:
                self.assertEqual(conn.request("POST", "/healthz", body=b"x" * 50).status, 405)
            self.assertEqual(srv.stop(), 0)

    def test_env_port(self):
        port = free_port()
        with Server(port_zero=False, env={"TROUPE_HTTP_PORT": str(port)}) as srv:
            self.serve_and_check(srv, port)

    def test_port_in_use_fails(self):
        with Server() as first:
            code, out, err = run_troupe(["serve", "--http.port=%d" % first.port], timeout=20)
            self.assertNotEqual(code, 0)
            self.assertIn(str(first.port), out + err)
            self.assertEqual(http_request(first, "GET", "/healthz")[0], 200)
            self.assertEqual(first.stop(), 0)


if __name__ == "__main__":
    unittest.main()
