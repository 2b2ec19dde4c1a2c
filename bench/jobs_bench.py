#!/usr/bin/env python3
"""Job queue benchmark (issue 9), run by `scripts/bench jobs`.

Measurements against Troupe servers started by this script on one PostgreSQL database
(--jobs.test-handlers=true, rate limits off):

1. Processed test.noop jobs per second at jobs.concurrency 10 and 16. A backlog of N jobs is
   written straight into `jobs` (as POST /v1/jobs writes them) in one transaction; one more job
   is then enqueued through POST /v1/jobs, which pokes the dispatcher. The clock runs from the
   backlog's COMMIT to the last job's finished_at (both PostgreSQL's clock); the script checks
   that all N + 1 jobs succeeded.
2. Enqueue rate through the API: POST /v1/jobs (one job per request) from C client threads,
   and POST /v1/jobs/batch (100 jobs per request), for a fixed time, counting 201 answers.
3. Idle pickup latency: with nothing else queued, one job at a time through POST /v1/jobs;
   enqueue -> start = the attempt's started_at minus the job's created_at (the enqueue
   transaction's start), both stamped by the server (milliseconds).

Standard library only. Prints one line per measurement; exits non-zero on any failure.

  jobs_bench.py TROUPE_BIN PG_CONNINFO [JOBS] [SAMPLES] [SECONDS]
"""

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Client:
    def __init__(self, port, headers):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = dict({"Content-Type": "application/json"}, **headers)

    def call(self, method, path, body=None):
        self.conn.request(method, path, json.dumps(body) if body is not None else None,
                          self.headers)
        r = self.conn.getresponse()
        raw = r.read()
        return r.status, (json.loads(raw) if raw else None)


def psql(conninfo, sql):
    out = subprocess.run(["psql", conninfo, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        sys.exit("psql failed: " + out.stderr)
    return out.stdout.strip()


class Troupe:
    def __init__(self, binary, pg, admin, concurrency, log):
        self.port = free_port()
        self.log = open(log, "w")
        self.proc = subprocess.Popen(
            [binary, "serve", "--http.port=%d" % self.port, "--log.level=" + os.environ.get("TROUPE_BENCH_LOG_LEVEL", "warn"),
             "--admin.token=" + admin, "--database.url=" + pg,
             "--auth.key-encryption-key=" + "ab" * 32, "--jobs.test-handlers=true",
             "--jobs.concurrency=%d" % concurrency, "--limits.principal=[100000000,1]",
             "--limits.tenant=[100000000,1]", "--limits.anonymous=[100000000,1]"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        sys.exit("troupe did not start (see %s)" % log)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def tenant(port, admin, name):
    c = Client(port, {"Authorization": "Bearer " + admin})
    status, t = c.call("POST", "/admin/v1/tenants",
                       {"slug": name, "name": name,
                        "owner": {"email": "o@bench.test", "password": "benchmark-password"}})
    if status != 201:
        sys.exit("cannot create a tenant: %s %s" % (status, t))
    return t["id"], {"Authorization": "Bearer " + admin, "X-Tenant": name}


def processed(binary, pg, admin, concurrency, jobs, log):
    srv = Troupe(binary, pg, admin, concurrency, log)
    try:
        tid, headers = tenant(srv.port, admin, "bench-jobs-c%d-%d" % (concurrency, os.getpid()))
        committed = float(psql(pg, (
            "BEGIN; INSERT INTO jobs (tenant_id, id, type, state, payload, run_at, next_at) "
            "SELECT '{t}', gen_random_uuid(), 'test.noop', 'available', '{{}}', now(), now() "
            "FROM generate_series(1, {n}); INSERT INTO job_queue (tenant_id, due_at) VALUES "
            "('{t}', now()) ON CONFLICT (tenant_id) DO UPDATE SET due_at = now(); COMMIT; "
            "SELECT extract(epoch FROM clock_timestamp()); ANALYZE jobs").format(t=tid, n=jobs)).splitlines()[-2])
        status, _ = Client(srv.port, headers).call("POST", "/v1/jobs", {"type": "test.noop"})
        if status != 201:
            sys.exit("cannot enqueue: %s" % status)
        deadline = time.time() + 600
        while time.time() < deadline:
            # An index probe, not a count: the poll must not take CPU from the run it measures.
            left = psql(pg, "SELECT EXISTS (SELECT 1 FROM jobs WHERE tenant_id = '%s' AND next_at "
                            "IS NOT NULL)" % tid)
            if left == "f":
                break
            time.sleep(0.25)
        row = psql(pg, "SELECT count(*) FILTER (WHERE state = 'succeeded'), count(*), "
                       "extract(epoch FROM max(finished_at)) FROM jobs WHERE tenant_id = '%s'"
                       % tid).split("|")
        ok, total, last = int(row[0]), int(row[1]), float(row[2])
        if ok != jobs + 1 or total != jobs + 1:
            print("processed  concurrency=%d FAILED: %d of %d succeeded" % (concurrency, ok, total))
            return False
        rate = jobs / (last - committed)
        print("processed  concurrency=%-3d jobs=%d  %.0f jobs/s  (%.2f s)"
              % (concurrency, jobs, rate, last - committed))
        return True
    finally:
        srv.stop()


def enqueue(binary, pg, admin, seconds, threads, log):
    srv = Troupe(binary, pg, admin, 16, log)
    try:
        tid, headers = tenant(srv.port, admin, "bench-enqueue-%d" % os.getpid())
        results = {}
        for mode, path, body, per in (
                ("single", "/v1/jobs", {"type": "test.noop"}, 1),
                ("batched", "/v1/jobs/batch", {"jobs": [{"type": "test.noop"}] * 100}, 100)):
            counts = [0] * threads
            errors = []
            stop = time.time() + seconds

            def worker(i):
                c = Client(srv.port, headers)
                while time.time() < stop:
                    status, answer = c.call("POST", path, body)
                    if status != 201:
                        errors.append((status, answer))
                        return
                    counts[i] += per

            ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
            start = time.time()
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            elapsed = time.time() - start
            if errors:
                print("enqueue    %s FAILED: %s" % (mode, errors[0]))
                return False
            results[mode] = sum(counts) / elapsed
            print("enqueue    %-8s clients=%d  %.0f jobs/s" % (mode, threads, results[mode]))
        return True
    finally:
        srv.stop()


def pickup(binary, pg, admin, samples, log):
    srv = Troupe(binary, pg, admin, 16, log)
    try:
        tid, headers = tenant(srv.port, admin, "bench-pickup-%d" % os.getpid())
        c = Client(srv.port, headers)
        ids = []
        for _ in range(samples):
            status, job = c.call("POST", "/v1/jobs", {"type": "test.noop"})
            if status != 201:
                sys.exit("cannot enqueue: %s" % status)
            ids.append(job["id"])
            time.sleep(0.02)
        time.sleep(0.5)
        rows = psql(pg, "SELECT extract(epoch FROM (attempts->0->>'started_at')::timestamptz - "
                        "created_at) * 1000 FROM jobs WHERE tenant_id = '%s' AND state = "
                        "'succeeded'" % tid).splitlines()
        lat = sorted(float(x) for x in rows)
        if len(lat) != samples:
            print("pickup     FAILED: %d of %d succeeded" % (len(lat), samples))
            return False
        q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
        print("pickup     idle enqueue->start  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  (n=%d)"
              % (statistics.median(lat), q(0.9), q(0.99), len(lat)))
        return True
    finally:
        srv.stop()


def main():
    binary, pg = sys.argv[1:3]
    jobs = int(sys.argv[3]) if len(sys.argv) > 3 else 100000
    samples = int(sys.argv[4]) if len(sys.argv) > 4 else 200
    seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 10
    logs = os.environ.get("TROUPE_BENCH_LOGS", "/tmp")
    admin = "tra_bench_" + os.urandom(8).hex()
    ok = True
    for concurrency in (10, 16):
        ok = processed(binary, pg, admin, concurrency, jobs,
                       os.path.join(logs, "jobs-c%d.log" % concurrency)) and ok
    ok = pickup(binary, pg, admin, samples, os.path.join(logs, "jobs-pickup.log")) and ok
    if os.environ.get("TROUPE_BENCH_ENQUEUE", "1") == "1":
        ok = enqueue(binary, pg, admin, seconds, 8, os.path.join(logs, "jobs-enqueue.log")) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
