"""Platform routes (API.md "Platform", "Observability", "Conventions"): health, readiness,
metrics, the OpenAPI document, problem pages, HEAD/OPTIONS, request ids, standard headers and
request logging."""

import json
import os
import signal
import time
import unittest

from support import (HTTP_DATE_RE, ServerTestCase, UUID7_RE, Server, get_json, http_request, metric_value,
                     parse_metrics, scrape)


class PlatformTest(ServerTestCase):
    server_args = ("--http.threads=2",)

    # -- health -------------------------------------------------------------------------

    def test_healthz(self):
        status, headers, body = get_json(self.srv, "/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(body, {"status": "ok"})
        self.assertTrue(headers["content-type"].startswith("application/json"), headers)

    def test_readyz(self):
        status, headers, body = get_json(self.srv, "/readyz")
        self.assertEqual(status, 200)
        self.assertEqual(body["status"], "ready")
        self.assertIsInstance(body["checks"], dict)
        self.assertEqual(body["checks"].get("cluster"), "ok", body)
        for name, value in body["checks"].items():
            self.assertEqual(value, "ok", "check %s is %r while ready" % (name, value))
        self.assertTrue(headers["content-type"].startswith("application/json"), headers)

    # -- metrics --------------------------------------------------------------------------

    def test_metrics_format(self):
        status, headers, body = http_request(self.srv, "GET", "/metrics")
        self.assertEqual(status, 200)
        ctype = headers["content-type"].replace(" ", "")
        self.assertTrue(ctype.startswith("text/plain"), ctype)
        self.assertIn("version=0.0.4", ctype)
        text = body.decode("utf-8")
        samples = parse_metrics(text)
        self.assertEqual(metric_value(samples, "troupe_actors", kind="http_front"), 1.0, text)
        for family in ("troupe_http_requests_total", "troupe_http_request_duration_seconds"):
            self.assertRegex(text, r"(?m)^# TYPE %s (counter|histogram)$" % family)
        self.assertRegex(text, r"(?m)^# TYPE troupe_http_requests_total counter$")
        self.assertRegex(text, r"(?m)^# TYPE troupe_http_request_duration_seconds histogram$")
        self.assertRegex(text, r"(?m)^# TYPE troupe_actors gauge$")

    def test_metrics_counter_increments(self):
        http_request(self.srv, "GET", "/healthz")  # make sure the series exists
        before = metric_value(parse_metrics(scrape(self.srv)), "troupe_http_requests_total",
                              method="GET", route="/healthz", status="200")
        self.assertIsNotNone(before)
        for _ in range(5):
            self.assertEqual(http_request(self.srv, "GET", "/healthz")[0], 200)
        after = metric_value(parse_metrics(scrape(self.srv)), "troupe_http_requests_total",
                             method="GET", route="/healthz", status="200")
        self.assertEqual(after - before, 5)

    def test_metrics_counts_errors_by_status(self):
        http_request(self.srv, "GET", "/no-such-route-for-metrics")
        samples = parse_metrics(scrape(self.srv))
        before = sum(v for n, l, v in samples if n == "troupe_http_requests_total"
                     and l.get("status") == "404")
        for _ in range(3):
            self.assertEqual(http_request(self.srv, "GET", "/no-such-route-for-metrics")[0], 404)
        samples = parse_metrics(scrape(self.srv))
        after = sum(v for n, l, v in samples if n == "troupe_http_requests_total"
                    and l.get("status") == "404")
        self.assertEqual(after - before, 3)
        for n, l, v in samples:
            if n == "troupe_http_requests_total":
                self.assertNotIn("/no-such-route-for-metrics", l.get("route", ""),
                                 "raw paths must not become metric labels")

    def test_metrics_histogram_consistent(self):
        for path in ("/healthz", "/readyz", "/openapi.json"):
            http_request(self.srv, "GET", path)
        samples = parse_metrics(scrape(self.srv))
        routes = {l["route"] for n, l, v in samples
                  if n == "troupe_http_request_duration_seconds_count"}
        self.assertTrue({"/healthz", "/readyz", "/openapi.json"} <= routes, routes)
        for route in routes:
            buckets = [(l["le"], v) for n, l, v in samples
                       if n == "troupe_http_request_duration_seconds_bucket"
                       and l.get("route") == route]
            self.assertTrue(buckets, route)
            self.assertEqual(buckets[-1][0], "+Inf", route)
            bounds = [float(le) for le, _ in buckets]
            self.assertEqual(bounds, sorted(bounds), route)
            counts = [v for _, v in buckets]
            self.assertEqual(counts, sorted(counts), "buckets must be cumulative: %s" % route)
            count = metric_value(samples, "troupe_http_request_duration_seconds_count",
                                 route=route)
            total = metric_value(samples, "troupe_http_request_duration_seconds_sum",
                                 route=route)
            self.assertEqual(buckets[-1][1], count, route)
            self.assertIsNotNone(total, route)
            self.assertGreaterEqual(total, 0.0)
            if count == 0:
                self.assertEqual(total, 0.0)
        # Requests of a route are counted in its histogram as well.
        hz_count = metric_value(samples, "troupe_http_request_duration_seconds_count",
                                route="/healthz")
        hz_total = sum(v for n, l, v in samples if n == "troupe_http_requests_total"
                       and l.get("route") == "/healthz")
        self.assertEqual(hz_count, hz_total)

    # -- OpenAPI --------------------------------------------------------------------------

    def openapi(self):
        status, headers, body = http_request(self.srv, "GET", "/openapi.json")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("application/json"), headers)
        return json.loads(body.decode("utf-8"))

    @staticmethod
    def concrete(path):
        return path.replace("{code}", "not-found").replace("{", "x").replace("}", "")

    def test_openapi_document(self):
        doc = self.openapi()
        self.assertRegex(doc["openapi"], r"^3\.1\.\d+$")
        self.assertIn("title", doc["info"])
        self.assertIn("version", doc["info"])
        paths = doc["paths"]
        for p in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/problems/{code}"):
            self.assertIn(p, paths)
            self.assertIn("get", paths[p])

    def test_openapi_documented_paths_answer(self):
        doc = self.openapi()
        for path, item in doc["paths"].items():
            url = self.concrete(path)
            status, _, _ = http_request(self.srv, "GET", url)
            self.assertNotEqual(status, 404, "documented path %s answers 404" % path)
            self.assertLess(status, 500, path)
            for method in item:
                if method not in ("get", "put", "post", "delete", "options", "head", "patch"):
                    continue
                body = b"{}" if method in ("put", "post", "patch") else None
                hdrs = {"Content-Type": "application/json"} if body else {}
                status, _, _ = http_request(self.srv, method.upper(), url, body=body,
                                            headers=hdrs)
                self.assertNotIn(status, (404, 405),
                                 "documented route %s %s answers %d" % (method, path, status))
                self.assertLess(status, 500, "%s %s" % (method, path))

    def test_openapi_problem_codes_have_pages(self):
        doc = self.openapi()
        codes = doc["components"]["schemas"]["ProblemCode"]["enum"]
        for required in ("not-found", "bad-request", "method-not-allowed", "payload-too-large",
                         "service-unavailable", "internal", "validation-failed"):
            self.assertIn(required, codes)
        for code in codes:
            status, headers, body = http_request(self.srv, "GET", "/problems/" + code)
            self.assertEqual(status, 200, code)
            self.assertTrue(headers["content-type"].startswith("text/html"), headers)
            self.assertIn(code, body.decode("utf-8"))
            status, headers, body = http_request(self.srv, "GET", "/problems/" + code,
                                                 headers={"Accept": "application/json"})
            self.assertEqual(status, 200, code)
            self.assertTrue(headers["content-type"].startswith("application/json"), headers)
            page = json.loads(body.decode("utf-8"))
            self.assertEqual(page["code"], code)
            self.assertEqual(page["type"], "/problems/" + code)
            self.assertIsInstance(page["status"], int)
            self.assertTrue(400 <= page["status"] <= 599, page)
            self.assertTrue(page["title"])
            self.assertTrue(page["description"])

    def test_problem_page_statuses(self):
        expected = {"bad-request": 400, "not-found": 404, "method-not-allowed": 405,
                    "payload-too-large": 413, "service-unavailable": 503, "internal": 500,
                    "unauthenticated": 401, "forbidden": 403, "conflict": 409,
                    "rate-limited": 429}
        for code, want in expected.items():
            status, _, page = get_json(self.srv, "/problems/" + code,
                                       headers={"Accept": "application/json"})
            self.assertEqual(status, 200)
            self.assertEqual(page["status"], want, code)

    def test_unknown_problem_code_is_404_problem(self):
        status, headers, body = http_request(self.srv, "GET", "/problems/no-such-code")
        self.assertEqual(status, 404)
        self.assertEqual(headers["content-type"], "application/problem+json")
        problem = json.loads(body.decode("utf-8"))
        self.assertEqual(problem["code"], "not-found")
        self.assertEqual(problem["instance"], "/problems/no-such-code")

    # -- HEAD and OPTIONS -----------------------------------------------------------------

    def test_head_same_headers_no_body(self):
        for path in ("/healthz", "/readyz", "/openapi.json", "/problems/not-found"):
            with self.srv.connect() as conn:
                got = conn.request("GET", path)
                head = conn.request("HEAD", path)
                self.assertEqual(got.status, 200)
                self.assertEqual(head.status, 200, path)
                self.assertEqual(head.body, b"")
                self.assertEqual(head.header("Content-Type"), got.header("Content-Type"), path)
                self.assertEqual(head.header("Content-Length"), got.header("Content-Length"),
                                 path)
                self.assertEqual(head.header("Server"), "troupe")
                self.assertIsNotNone(head.header("X-Request-ID"))
                # No body bytes followed the HEAD response: the next response parses cleanly.
                again = conn.request("GET", "/healthz")
                self.assertEqual(again.status, 200)
                self.assertEqual(again.body, b'{"status":"ok"}')
                self.assertEqual(conn.buf, b"")

    def test_head_on_unknown_path(self):
        with self.srv.connect() as conn:
            resp = conn.request("HEAD", "/no-such-path")
            self.assertEqual(resp.status, 404)
            self.assertEqual(resp.body, b"")
            self.assertEqual(conn.request("GET", "/healthz").status, 200)

    def test_options(self):
        for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/problems/not-found"):
            with self.srv.connect() as conn:
                resp = conn.request("OPTIONS", path)
                self.assertEqual(resp.status, 204, path)
                allow = {m.strip() for m in resp.header("Allow", "").split(",")}
                self.assertEqual(allow, {"GET", "HEAD", "OPTIONS"}, path)
                self.assertEqual(resp.body, b"")
                self.assertIsNone(resp.header("Content-Length"), "RFC 9110 8.6")
                self.assertIsNotNone(resp.header("X-Request-ID"))
                self.assertEqual(conn.request("GET", "/healthz").status, 200)

    def test_options_unknown_path_is_404(self):
        status, headers, _ = http_request(self.srv, "OPTIONS", "/no-such-path")
        self.assertEqual(status, 404)
        self.assertEqual(headers["content-type"], "application/problem+json")

    # -- request ids and standard headers -------------------------------------------------

    def test_request_id_echoed(self):
        for rid in ("abc", "A-b_c.9", "x" * 128, "0", "0f1e2d3c-4b5a-4697-8877-665544332211"):
            status, headers, _ = http_request(self.srv, "GET", "/healthz",
                                              headers={"X-Request-ID": rid})
            self.assertEqual(status, 200)
            self.assertEqual(headers["x-request-id"], rid)

    def test_request_id_header_name_case_insensitive(self):
        with self.srv.connect() as conn:
            resp = conn.request("GET", "/healthz", headers={"x-request-id": "lower-case-name"})
            self.assertEqual(resp.header("X-Request-ID"), "lower-case-name")
            resp = conn.request("GET", "/healthz", headers={"X-REQUEST-ID": "upper-case-name"})
            self.assertEqual(resp.header("X-Request-ID"), "upper-case-name")

    def test_request_id_echoed_on_errors(self):
        status, headers, body = http_request(self.srv, "GET", "/nope",
                                             headers={"X-Request-ID": "err-id-1"})
        self.assertEqual(status, 404)
        self.assertEqual(headers["x-request-id"], "err-id-1")
        self.assertEqual(json.loads(body)["request_id"], "err-id-1")

    def assertFreshUuid7(self, value):
        self.assertRegex(value, UUID7_RE)
        ms = int(value.replace("-", "")[:12], 16)
        self.assertLess(abs(ms / 1000.0 - time.time()), 300, "UUIDv7 time is off: " + value)

    def test_invalid_request_id_replaced(self):
        for rid in ("x" * 129, "has space", "semi;colon", "slash/", "ümlaut".encode("utf-8")
                    .decode("latin-1"), "a+b", "{json}", "tab\there"):
            with self.srv.connect() as conn:
                resp = conn.request("GET", "/healthz", headers={"X-Request-ID": rid})
                self.assertEqual(resp.status, 200)
                got = resp.header("X-Request-ID")
                self.assertNotEqual(got, rid)
                self.assertFreshUuid7(got)

    def test_empty_request_id_replaced(self):
        with self.srv.connect() as conn:
            resp = conn.request("GET", "/healthz", headers={"X-Request-ID": ""})
            self.assertEqual(resp.status, 200)
            self.assertFreshUuid7(resp.header("X-Request-ID"))

    def test_fresh_request_ids_unique(self):
        seen = set()
        with self.srv.connect() as conn:
            for _ in range(50):
                resp = conn.request("GET", "/healthz")
                rid = resp.header("X-Request-ID")
                self.assertFreshUuid7(rid)
                seen.add(rid)
        self.assertEqual(len(seen), 50)

    def test_standard_headers(self):
        cases = [("GET", "/healthz"), ("GET", "/metrics"), ("GET", "/nope"),
                 ("POST", "/healthz"), ("OPTIONS", "/healthz"), ("HEAD", "/readyz"),
                 ("GET", "/problems/not-found")]
        for method, path in cases:
            with self.srv.connect() as conn:
                resp = conn.request(method, path)
                self.assertEqual(resp.version, "HTTP/1.1")
                self.assertEqual(resp.header("Server"), "troupe", (method, path))
                date = resp.header("Date")
                self.assertIsNotNone(date, (method, path))
                self.assertRegex(date, HTTP_DATE_RE)
                now = int(time.time())
                near = {time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(t))
                        for t in range(now - 5, now + 6)}
                self.assertIn(date, near, "Date is not the current time")
                if resp.status == 204:
                    # RFC 9110 8.6: a 204 carries no Content-Length.
                    self.assertIsNone(resp.header("Content-Length"), (method, path))
                    self.assertEqual(resp.body, b"")
                    continue
                self.assertIsNotNone(resp.header("Content-Length"), (method, path))
                self.assertEqual(len(resp.headers_named("Content-Length")), 1)
                if method != "HEAD":
                    self.assertEqual(int(resp.header("Content-Length")), len(resp.body))
                self.assertIsNotNone(resp.header("X-Request-ID"), (method, path))

    # -- logs -----------------------------------------------------------------------------

    def test_one_log_line_per_request(self):
        ids = ["log-test-%d-%s" % (i, os.urandom(4).hex()) for i in range(4)]
        requests = [("GET", "/healthz", 200, "/healthz"), ("GET", "/nope/x", 404, "(unmatched)"),
                    ("DELETE", "/readyz", 405, "/readyz"),
                    ("GET", "/problems/conflict", 200, "/problems/{code}")]
        for rid, (method, path, want, _) in zip(ids, requests):
            status, _, _ = http_request(self.srv, method, path, headers={"X-Request-ID": rid})
            self.assertEqual(status, want)
        for rid, (method, path, want, route) in zip(ids, requests):
            line = self.srv.wait_for_line(lambda l, rid=rid: ("request_id=" + rid) in l,
                                          timeout=5)
            self.assertIsNotNone(line, "no log line with request id " + rid)
            time.sleep(0.05)
            matching = [l for l in self.srv.snapshot() if ("request_id=" + rid) in l]
            self.assertEqual(len(matching), 1, matching)
            self.assertIn(" info ", line)
            self.assertIn("method=%s " % method, line)
            self.assertIn("path=%s " % path, line)
            self.assertIn("status=%d " % want, line)
            self.assertIn("route=%s " % route, line)
            self.assertRegex(line, r"duration_ms=\d+(\.\d+)? ")
            self.assertRegex(line, r"tenant=\S+")
            self.assertRegex(line, r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z ")


class JsonLogTest(unittest.TestCase):
    def test_json_request_lines(self):
        with Server("--log.format=json") as srv:
            rid = "json-log-" + os.urandom(4).hex()
            self.assertEqual(http_request(srv, "GET", "/healthz",
                                          headers={"X-Request-ID": rid})[0], 200)
            self.assertEqual(http_request(srv, "GET", "/nope")[0], 404)
            line = srv.wait_for_line(lambda l: rid in l, timeout=5)
            self.assertIsNotNone(line)
            entry = json.loads(line)
            self.assertEqual(entry["event"], "request")
            self.assertEqual(entry["level"], "info")
            self.assertEqual(entry["logger"], "http")
            self.assertEqual(entry["method"], "GET")
            self.assertEqual(entry["path"], "/healthz")
            self.assertEqual(entry["route"], "/healthz")
            self.assertEqual(entry["status"], 200)
            self.assertEqual(entry["request_id"], rid)
            self.assertIsInstance(entry["duration_ms"], (int, float))
            self.assertRegex(entry["ts"], r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
            self.assertIsNotNone(srv.wait_for_line(lambda l: '"/nope"' in l, timeout=5))
            requests = []
            for l in srv.snapshot():
                obj = json.loads(l)
                for key in ("ts", "level", "logger", "event"):
                    self.assertIn(key, obj, l)
                if obj["event"] == "request":
                    requests.append(obj)
            # Each io thread writes its own block of lines: across connections the order of
            # lines is not the order of requests (docs/http.md).
            self.assertEqual(sorted(r["status"] for r in requests), [200, 404])
            self.assertEqual(srv.stop(signal.SIGTERM), 0)

    def test_json_escapes_request_fields(self):
        with Server("--log.format=json") as srv:
            targets = [b'/q"uote', b"/back\\slash", b'/x{"y":1}', b"/%22%5c"]
            for i, target in enumerate(targets):
                with srv.connect() as conn:
                    conn.send(b"GET " + target + b" HTTP/1.1\r\nHost: a\r\nX-Request-ID: esc-%d\r\n\r\n"
                              % i)
                    self.assertEqual(conn.read_final_response().status, 404)
            for i, target in enumerate(targets):
                line = srv.wait_for_line(lambda l, i=i: '"esc-%d"' % i in l, timeout=5)
                self.assertIsNotNone(line)
                entry = json.loads(line)
                self.assertEqual(entry["path"], target.decode("latin-1"))
                self.assertEqual(entry["request_id"], "esc-%d" % i)
            self.assertEqual(srv.stop(), 0)

    def test_json_every_line_including_shutdown(self):
        """log.format=json: every line is one JSON object, the shutdown lines included."""
        with Server("--log.format=json") as srv:
            self.assertEqual(http_request(srv, "GET", "/healthz")[0], 200)
            self.assertEqual(srv.stop(signal.SIGTERM), 0)
            lines = srv.snapshot()
            self.assertGreaterEqual(len(lines), 3, lines)
            events = []
            for l in lines:
                try:
                    obj = json.loads(l)
                except ValueError:
                    self.fail("log line is not JSON: %r" % l)
                self.assertIsInstance(obj, dict)
                for key in ("ts", "level", "logger", "event"):
                    self.assertIn(key, obj, l)
                events.append(obj["event"])
            self.assertIn("listening", events)
            self.assertIn("request", events)
            self.assertTrue(any("shutdown" in e for e in events), events)
            self.assertTrue(any("stopped" in e for e in events), events)


if __name__ == "__main__":
    unittest.main()
