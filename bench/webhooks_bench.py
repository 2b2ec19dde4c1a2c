#!/usr/bin/env python3
"""Webhook delivery benchmark (issue 8), run by `scripts/bench webhooks`.

Two measurements against a running Troupe (--webhooks.allow-private-targets=true):

1. Throughput. A backlog of N signed deliveries is written straight into the outbox (events
   plus one pending delivery per endpoint and event, as POST /v1/events writes them) in one
   transaction, for 1 and for 50 endpoints that point at the bench's receiver (the Beast
   "hello" server, which answers every request 200). The time runs from that COMMIT until
   every delivery is recorded `succeeded`; the script then checks that exactly N attempts
   were recorded. Writing the backlog directly keeps the publishing path (measured by the
   other scenarios) out of the delivery rate.
2. Latency. Events are published one at a time through POST /v1/events to an endpoint whose
   receiver is this script; publish → first delivery = arrival at the receiver minus the
   moment the POST was sent (one clock, one process).

Standard library only. Prints one line per measurement and exits non-zero on any failure.

  webhooks_bench.py TROUPE_URL ADMIN_TOKEN RECEIVER_URL PG_CONNINFO [DELIVERIES] [SAMPLES]
                    [PAUSE_S]
"""

import http.client
import http.server
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse


def call(base, method, path, body=None, headers=None):
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    data = json.dumps(body) if body is not None else None
    hdrs = {"Content-Type": "application/json"}
    hdrs.update(headers or {})
    conn.request(method, path, data, hdrs)
    r = conn.getresponse()
    raw = r.read()
    conn.close()
    return r.status, (json.loads(raw) if raw else None)


def psql(conninfo, sql):
    out = subprocess.run(["psql", conninfo, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        sys.exit("psql failed: " + out.stderr)
    return out.stdout.strip()


def main():
    troupe, admin, receiver, pg = sys.argv[1:5]
    deliveries = int(sys.argv[5]) if len(sys.argv) > 5 else 20000
    samples = int(sys.argv[6]) if len(sys.argv) > 6 else 200
    pause = float(sys.argv[7]) if len(sys.argv) > 7 else 0.0
    slug = "bench-wh-%d" % os.getpid()
    status, tenant = call(troupe, "POST", "/admin/v1/tenants",
                          {"slug": slug, "name": "Webhooks bench",
                           "owner": {"email": "o@bench.test", "password": "benchmark-password"}},
                          {"Authorization": "Bearer " + admin})
    if status != 201:
        sys.exit("cannot create the bench tenant: %s %s" % (status, tenant))
    tid = tenant["id"]
    status, login = call(troupe, "POST", "/v1/auth/login",
                         {"email": "o@bench.test", "password": "benchmark-password"},
                         {"X-Tenant": slug})
    if status != 200:
        sys.exit("cannot log in: %s %s" % (status, login))
    auth = {"Authorization": "Bearer " + login["access_token"], "X-Tenant": slug}
    failed = False

    for endpoints in (1, 50):
        run = "bench.run%d" % endpoints
        ids = []
        for i in range(endpoints):
            status, ep = call(troupe, "POST", "/v1/webhooks/endpoints",
                              {"url": "%s/hook/%d/%d" % (receiver, endpoints, i),
                               "events": [run]}, auth)
            if status != 201:
                sys.exit("cannot create an endpoint: %s %s" % (status, ep))
            ids.append(ep["id"])
        events = deliveries // endpoints
        total = events * endpoints
        id_list = ",".join("'%s'::uuid" % i for i in ids)
        # The outbox rows POST /v1/events would write, in one transaction.
        started = None
        sql = (
            "BEGIN; "
            "INSERT INTO events (tenant_id, id, type, payload) SELECT '%(tid)s', "
            "gen_random_uuid(), '%(run)s', jsonb_build_object('n', g, 'order', "
            "jsonb_build_object('id', md5(g::text), 'amount', g * 100, 'currency', 'EUR')) "
            "FROM generate_series(1, %(events)d) g; "
            "INSERT INTO webhook_deliveries (tenant_id, id, endpoint_id, event_id, event_type, "
            "next_attempt_at, created_at) SELECT '%(tid)s', gen_random_uuid(), ep, e.id, e.type, "
            "now(), e.created_at FROM events e CROSS JOIN unnest(ARRAY[%(ids)s]) ep "
            "WHERE e.tenant_id = '%(tid)s' AND e.type = '%(run)s'; "
            "INSERT INTO webhook_queue (tenant_id, due_at) VALUES ('%(tid)s', now()) "
            "ON CONFLICT (tenant_id) DO UPDATE SET due_at = now(); COMMIT;"
            % {"tid": tid, "run": run, "events": events, "ids": id_list})
        psql(pg, sql)
        started = time.monotonic()
        deadline = started + 300
        count_sql = ("SELECT count(*) FROM webhook_deliveries WHERE tenant_id = '%s' AND "
                     "event_type = '%s' AND status = 'succeeded'" % (tid, run))
        done = 0
        while time.monotonic() < deadline:
            done = int(psql(pg, count_sql))
            if done >= total:
                break
            time.sleep(0.25)
        elapsed = time.monotonic() - started
        stats = psql(pg, (
            "SELECT count(*), count(*) FILTER (WHERE a.status_code BETWEEN 200 AND 299), "
            "extract(epoch FROM max(a.at) - min(a.at)), "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY a.duration_ms), "
            "percentile_cont(0.99) WITHIN GROUP (ORDER BY a.duration_ms) "
            "FROM webhook_attempts a JOIN webhook_deliveries d ON d.tenant_id = a.tenant_id "
            "AND d.id = a.delivery_id WHERE d.tenant_id = '%s' AND d.event_type = '%s'"
            % (tid, run))).split("|")
        attempts, ok = int(stats[0]), int(stats[1])
        span = float(stats[2] or 0)
        note = ""
        if done != total or attempts != total or ok != total:
            note = "  FAILED: %d of %d succeeded, %d attempts recorded, %d 2xx" % (
                done, total, attempts, ok)
            failed = True
        print("webhooks-%-3d endpoints=%-2d deliveries=%d  %8.0f deliveries/s (commit to "
              "last recorded: %.2f s)  %8.0f/s between first and last attempt  "
              "attempt p50=%sms p99=%sms%s"
              % (endpoints, endpoints, total, total / elapsed, elapsed,
                 total / span if span > 0 else 0, stats[3], stats[4], note), flush=True)

    # Latency: publish -> first delivery, one event at a time (after `pause` seconds: the
    # throughput runs leave dead rows behind that slow claims down until autovacuum ran).
    time.sleep(pause)
    arrivals = {}
    arrived = threading.Condition()

    class Receiver(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            now = time.monotonic()
            event = self.headers.get("webhook-id")
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            with arrived:
                arrivals.setdefault(event, now)
                arrived.notify_all()
            del body

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    status, ep = call(troupe, "POST", "/v1/webhooks/endpoints",
                      {"url": "http://127.0.0.1:%d/latency" % server.server_port,
                       "events": ["bench.latency"]}, auth)
    if status != 201:
        sys.exit("cannot create the latency endpoint: %s %s" % (status, ep))
    latencies = []
    for n in range(samples):
        sent = time.monotonic()
        status, event = call(troupe, "POST", "/v1/events",
                             {"type": "bench.latency", "payload": {"n": n}}, auth)
        if status != 202:
            sys.exit("publish failed: %s %s" % (status, event))
        with arrived:
            if not arrived.wait_for(lambda: event["id"] in arrivals, timeout=10):
                sys.exit("event %s did not arrive within 10 s" % event["id"])
        latencies.append((arrivals[event["id"]] - sent) * 1000)
    server.shutdown()
    latencies.sort()
    print("webhooks-latency publish->first delivery over %d events: p50=%.2fms p90=%.2fms "
          "p99=%.2fms" % (samples, statistics.median(latencies),
                          latencies[int(len(latencies) * 0.9) - 1],
                          latencies[int(len(latencies) * 0.99) - 1]), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
