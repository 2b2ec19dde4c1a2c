"""HTTPS: http.tls-cert and http.tls-key turn the listener into TLS only (API.md Conventions)."""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
import warnings

from support import Server, run_troupe

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


def make_certificate(directory, name="server"):
    """A fresh self-signed P-256 certificate for localhost/127.0.0.1: (cert path, key path)."""
    cert = os.path.join(directory, name + ".pem")
    key = os.path.join(directory, name + ".key")
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=30)
    return cert, key


class TlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="troupe-tls-")
        cls.cert, cls.key = make_certificate(cls.tmp.name)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def client_context(self):
        ctx = ssl.create_default_context(cafile=self.cert)  # verifies chain and host name
        return ctx

    def https_get(self, sock, path):
        sock.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path).encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            self.assertTrue(chunk, "connection closed before a response")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            chunk = sock.recv(4096)
            self.assertTrue(chunk)
            body += chunk
        return head.split(b"\r\n")[0], body

    def test_https_serves_verified_requests_with_keep_alive(self):
        with Server("--http.tls-cert=" + self.cert, "--http.tls-key=" + self.key) as srv:
            self.assertTrue(srv.url.startswith("https://"), srv.url)
            with socket.create_connection((srv.host, srv.port), timeout=5) as raw:
                with self.client_context().wrap_socket(raw, server_hostname="localhost") as tls:
                    self.assertIn(tls.version(), ("TLSv1.2", "TLSv1.3"))
                    for _ in range(20):  # one TLS session, many requests
                        status, body = self.https_get(tls, "/healthz")
                        self.assertEqual(status, b"HTTP/1.1 200 OK")
                        self.assertEqual(body, b'{"status":"ok"}')
                    status, body = self.https_get(tls, "/nope")
                    self.assertEqual(status, b"HTTP/1.1 404 Not Found")
                    self.assertIn(b'"code":"not-found"', body)
            self.assertEqual(srv.stop(), 0)

    def test_plain_http_to_the_tls_port_gets_no_http_answer(self):
        with Server("--http.tls-cert=" + self.cert, "--http.tls-key=" + self.key) as srv:
            with socket.create_connection((srv.host, srv.port), timeout=5) as raw:
                raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
                received = b""
                try:
                    while True:
                        chunk = raw.recv(4096)
                        if not chunk:
                            break
                        received += chunk
                except (ConnectionResetError, socket.timeout):
                    pass
                self.assertNotIn(b"HTTP/1.1 200", received)
            # The server is unharmed.
            with socket.create_connection((srv.host, srv.port), timeout=5) as raw:
                with self.client_context().wrap_socket(raw, server_hostname="localhost") as tls:
                    self.assertEqual(self.https_get(tls, "/healthz")[0], b"HTTP/1.1 200 OK")

    def version_context(self, version):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.cert)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = version
            ctx.maximum_version = version
        ctx.set_ciphers("ALL:@SECLEVEL=0")  # let this client offer what the server must refuse
        return ctx

    def test_tls_1_2_is_accepted_and_older_versions_are_refused_by_the_server(self):
        with Server("--http.tls-cert=" + self.cert, "--http.tls-key=" + self.key) as srv:
            with socket.create_connection((srv.host, srv.port), timeout=5) as raw:
                ctx = self.version_context(ssl.TLSVersion.TLSv1_2)
                with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                    self.assertEqual(tls.version(), "TLSv1.2")
                    self.assertEqual(self.https_get(tls, "/healthz")[0], b"HTTP/1.1 200 OK")
            for version in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
                with socket.create_connection((srv.host, srv.port), timeout=5) as raw:
                    with self.assertRaises(ssl.SSLError) as refused:
                        self.version_context(version).wrap_socket(raw, server_hostname="localhost")
                    # The server's alert, not this client failing to offer the version.
                    self.assertIn("PROTOCOL_VERSION", str(refused.exception))

    def test_graceful_shutdown_over_tls(self):
        with Server("--http.tls-cert=" + self.cert, "--http.tls-key=" + self.key) as srv:
            with socket.create_connection((srv.host, srv.port), timeout=5) as raw:
                with self.client_context().wrap_socket(raw, server_hostname="localhost") as tls:
                    self.https_get(tls, "/healthz")  # an idle keep-alive TLS connection
                    started = time.monotonic()
                    srv.send_signal(signal.SIGTERM)
                    self.assertEqual(srv.wait(5.0), 0)
                    self.assertLess(time.monotonic() - started, 3.0)

    def test_unusable_certificate_or_key_is_a_usage_error(self):
        other_cert, other_key = make_certificate(self.tmp.name, "other")
        missing = os.path.join(self.tmp.name, "missing.pem")
        cases = [
            (["--http.tls-cert=" + missing, "--http.tls-key=" + self.key], "http.tls-cert"),
            (["--http.tls-cert=" + self.cert, "--http.tls-key=" + missing], "http.tls-key"),
            (["--http.tls-cert=" + self.cert, "--http.tls-key=" + other_key], "http.tls-key"),
            (["--http.tls-cert=" + self.cert, "--http.tls-key=" + self.cert], "http.tls-key"),
            (["--http.tls-cert=" + self.cert], "http.tls-key"),
        ]
        for args, key in cases:
            code, out, err = run_troupe(["serve", "--http.port=0"] + args)
            self.assertEqual(code, 2, (args, out, err))
            lines = [l for l in err.splitlines() if l.strip()]
            self.assertEqual(len(lines), 1, err)
            self.assertIn(key, lines[0])


if __name__ == "__main__":
    unittest.main()
