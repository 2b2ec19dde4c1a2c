"""Jobs and schedules end to end (API.md "Jobs and schedules", "Audit log"; docs/jobs.md):
enqueueing (one job, or a batch) and its validation, delays and run_at, unique keys, listing
and paging, retries with exponential backoff up to jobs.retry-max-ms, discarding (and the
job.discarded event), cancel and retry by hand, timeouts, priorities, the built-in types
(http.request against a receiver of the test, tenant.export without secrets, audit.prune),
permissions, idempotency, metrics, cron schedules (validation, next_run_at in a time zone,
enabling, once per due second even with two servers on one database), and no job lost or run
twice (through the idempotent helper) across a kill -9.

Each test creates its own tenant; one server per class. Retries are fast
(--jobs.retry-base-ms=200 --jobs.retry-max-ms=1000) and the test.* handlers are on."""

import datetime
import json
import os
import signal
import tempfile
import time
import unittest
import urllib.parse
import zoneinfo

from support import UUID7_RE, Server, ServerTestCase, metric_value, parse_metrics, psql, scrape
from test_auth import PASSWORD, TS_RE
from test_webhooks import BASE_ARGS, WebhookMixin
from webhook_receiver import WAIT_S, Reply, poll

JOBS = "/v1/jobs"
SCHEDULES = "/v1/schedules"
JOB_ARGS = ("--jobs.test-handlers=true", "--jobs.retry-base-ms=200", "--jobs.retry-max-ms=1000",
            "--webhooks.allow-private-targets=true", "--webhooks.retry-schedule=[1,1]",
            "--webhooks.timeout-ms=2000")
JOB_KEYS = {"id", "type", "state", "payload", "priority", "attempt", "max_attempts", "timeout_s",
            "run_at", "created_at", "finished_at", "result", "last_error", "unique_key",
            "schedule", "cancel_requested"}
ATTEMPT_KEYS = {"n", "started_at", "finished_at", "error"}
SCHEDULE_KEYS = {"name", "cron", "timezone", "job", "enabled", "next_run_at", "last_run_at",
                 "created_at", "updated_at"}
STATES = ("scheduled", "available", "running", "retrying", "succeeded", "discarded", "cancelled")
FINISHED = ("succeeded", "discarded", "cancelled")
UNKNOWN_ID = "0190a3c4-0000-7000-8000-000000000000"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
UTC = datetime.timezone.utc
# A UUIDv7 made in SQL: 48 bits of Unix milliseconds, version 7, the variant, random bits.
UUID7_SQL = ("(lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0') "
             "|| '7' || substr(md5(random()::text), 1, 3) || to_hex(8 + floor(random() * 4)::int) "
             "|| substr(md5(random()::text), 1, 15))::uuid")


# -- time ------------------------------------------------------------------------------------


def ts(text):
    """An RFC 3339 UTC timestamp with milliseconds → aware datetime."""
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def iso(dt):
    """Aware datetime → `2026-01-02T03:04:05.678Z`."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def now():
    return datetime.datetime.now(UTC)


def seconds(a, b):
    """b - a in seconds (timestamps as text)."""
    return (ts(b) - ts(a)).total_seconds()


def next_match(after, matches, step):
    """The first time after `after` (aware, UTC) on the `step` grid (a timedelta of one minute
    or one second) for which matches(utc datetime) holds; brute force, up to 8 days ahead."""
    if step == datetime.timedelta(seconds=1):
        t = after.replace(microsecond=0) + step
    else:
        t = after.replace(second=0, microsecond=0) + step
    limit = after + datetime.timedelta(days=8)
    while t <= limit:
        if matches(t):
            return t
        t += step
    raise AssertionError("no match within 8 days")


MINUTE = datetime.timedelta(minutes=1)
SECOND = datetime.timedelta(seconds=1)


def local_daily(hour, minute, zone, after):
    """The next hour:minute of wall-clock time in `zone` after `after` (no DST gap at that
    time of day), in UTC."""
    tz = zoneinfo.ZoneInfo(zone)
    local = after.astimezone(tz)
    cand = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if cand <= local:
        day = (local + datetime.timedelta(days=1)).date()
        cand = datetime.datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
    return cand.astimezone(UTC)


class JobsMixin(WebhookMixin):
    """WebhookMixin plus jobs and schedules."""

    def create_job(self, token, body, status=201, headers=None):
        r = self.call("POST", JOBS, body, token=token, headers=headers)
        self.assertEqual(r.status, status, r.body)
        if status == 201:
            self.assertEqual(r.headers.get("location"), "%s/%s" % (JOBS, r.body["id"]))
            self.assertJob(r.body)
        return r.body

    def get_job(self, token, job_id):
        r = self.call("GET", "%s/%s" % (JOBS, job_id), token=token)
        self.assertEqual(r.status, 200, r.body)
        self.assertJob(r.body, detail=True)
        return r.body

    def wait_job(self, token, job_id, states, timeout=WAIT_S, interval=0.05):
        """The job once its state is one of `states` (a name or a tuple)."""
        states = (states,) if isinstance(states, str) else tuple(states)
        last = {}

        def probe():
            last["job"] = self.get_job(token, job_id)
            return last["job"] if last["job"]["state"] in states else None
        found = poll(probe, timeout, interval)
        self.assertTrue(found, "job %s not %s within %.1f s: %r"
                        % (job_id, "/".join(states), timeout, last.get("job")))
        return found

    def list_jobs(self, token, query=""):
        r = self.call("GET", JOBS + query, token=token)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(set(r.body), {"data", "next_cursor"})
        for job in r.body["data"]:
            self.assertJob(job)
        return r.body

    def all_jobs(self, token, query=""):
        """Every job of the tenant (matching `query`, e.g. "type=test.noop"), newest first."""
        out, cursor = [], None
        while True:
            q = "?limit=200" + ("&" + query if query else "")
            if cursor:
                q += "&cursor=" + urllib.parse.quote(cursor, safe="")
            page = self.list_jobs(token, q)
            out += page["data"]
            cursor = page["next_cursor"]
            if not cursor:
                return out

    def job_action(self, token, job_id, action):
        return self.call("POST", "%s/%s/%s" % (JOBS, job_id, action), token=token)

    def put_schedule(self, token, name, body, status=200):
        r = self.call("PUT", "%s/%s" % (SCHEDULES, urllib.parse.quote(name, safe="")), body,
                      token=token)
        self.assertEqual(r.status, status, r.body)
        if status == 200:
            self.assertSchedule(r.body)
        return r.body

    def delete_schedule_later(self, token, name):
        """Schedules outlive the server in the run's database: remove them after the test."""
        def drop():
            try:
                self.call("DELETE", "%s/%s" % (SCHEDULES, name), token=token)
            except OSError:
                pass
        self.addCleanup(drop)

    def schedules(self, token, query="?limit=200"):
        r = self.call("GET", SCHEDULES + query, token=token)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(set(r.body), {"data", "next_cursor"})
        for s in r.body["data"]:
            self.assertSchedule(s)
        return r.body

    def assertJob(self, job, detail=False):
        self.assertEqual(set(job), JOB_KEYS | ({"attempts"} if detail else set()), job)
        self.assertRegex(job["id"], UUID7_RE)
        self.assertIn(job["state"], STATES)
        self.assertRegex(job["run_at"], TS_RE)
        self.assertRegex(job["created_at"], TS_RE)
        if job["finished_at"] is not None:
            self.assertRegex(job["finished_at"], TS_RE)
        self.assertEqual(job["finished_at"] is not None, job["state"] in FINISHED, job)
        self.assertIsInstance(job["payload"], dict)
        self.assertIsInstance(job["cancel_requested"], bool)
        if detail:
            self.assertIsInstance(job["attempts"], list)
            for a in job["attempts"]:
                self.assertEqual(set(a), ATTEMPT_KEYS, a)
                for key in ("started_at", "finished_at"):
                    if a[key] is not None:
                        self.assertRegex(a[key], TS_RE)

    def assertSchedule(self, s):
        self.assertEqual(set(s), SCHEDULE_KEYS, s)
        for key in ("created_at", "updated_at"):
            self.assertRegex(s[key], TS_RE)
        for key in ("next_run_at", "last_run_at"):
            if s[key] is not None:
                self.assertRegex(s[key], TS_RE)
        self.assertIsInstance(s["enabled"], bool)
        if not s["enabled"]:
            self.assertIsNone(s["next_run_at"], s)


class JobsTest(JobsMixin, ServerTestCase):
    server_args = BASE_ARGS + JOB_ARGS

    # -- enqueueing ----------------------------------------------------------------------------

    def test_a_job_is_enqueued_runs_and_keeps_its_attempt(self):
        tenant, owner = self.tenant_and_owner()
        before = now()
        job = self.create_job(owner, {"type": "test.noop"})
        after = now()
        self.assertEqual({k: v for k, v in job.items() if k not in ("id", "run_at", "created_at")},
                         {"type": "test.noop", "state": "available", "payload": {},
                          "priority": 5, "attempt": 0, "max_attempts": 5, "timeout_s": 300,
                          "finished_at": None, "result": None, "last_error": None,
                          "unique_key": None, "schedule": None, "cancel_requested": False})
        slack = datetime.timedelta(seconds=1)
        self.assertTrue(before - slack <= ts(job["created_at"]) <= after + slack, job)
        self.assertLess(abs(seconds(job["created_at"], job["run_at"])), 1.0, job)
        done = self.wait_job(owner, job["id"], "succeeded", timeout=5)
        self.assertEqual((done["attempt"], done["last_error"], done["cancel_requested"]),
                         (1, None, False))
        self.assertEqual({k: done[k] for k in ("id", "type", "payload", "priority", "max_attempts",
                                               "timeout_s", "created_at")},
                         {k: job[k] for k in ("id", "type", "payload", "priority", "max_attempts",
                                              "timeout_s", "created_at")})
        self.assertEqual(len(done["attempts"]), 1, done)
        attempt = done["attempts"][0]
        self.assertEqual((attempt["n"], attempt["error"]), (1, None))
        self.assertIsNotNone(attempt["started_at"])
        self.assertIsNotNone(attempt["finished_at"])
        self.assertGreaterEqual(seconds(job["created_at"], attempt["started_at"]), -0.002, done)
        self.assertLess(seconds(job["created_at"], attempt["started_at"]), 2.0,
                        "a job due now did not start promptly: %r" % done)
        self.assertGreaterEqual(seconds(attempt["started_at"], attempt["finished_at"]), 0)
        self.assertGreaterEqual(seconds(attempt["finished_at"], done["finished_at"]), -0.002)
        listed = self.list_jobs(owner)
        self.assertEqual([j["id"] for j in listed["data"]], [job["id"]])
        self.assertIsNone(listed["next_cursor"])
        self.assertEqual(listed["data"][0]["state"], "succeeded")
        entries = self.wait_for_audit(tenant, "?action=job.created")
        self.assertEqual(len(entries), 1, entries)
        self.assertEqual(entries[0]["resource"], {"type": "job", "id": job["id"]})
        self.assertEqual(entries[0]["outcome"], "success")
        self.assertEqual(entries[0]["actor"]["id"], tenant["owner"]["id"])

    def test_job_bodies_are_validated(self):
        _, owner = self.tenant_and_owner()
        year = iso(now() + datetime.timedelta(days=400))
        cases = (({}, "/type"),
                 ({"type": "no.such.type"}, "/type"),
                 ({"type": "Not A Type"}, "/type"),
                 ({"type": 5}, "/type"),
                 ({"type": "test.noop", "payload": []}, "/payload"),
                 ({"type": "test.noop", "payload": "x"}, "/payload"),
                 ({"type": "test.noop", "payload": {"colour": "red"}}, "/payload/colour"),
                 ({"type": "test.noop", "payload": {"once": "yes"}}, "/payload/once"),
                 ({"type": "test.sleep", "payload": {}}, "/payload/ms"),
                 ({"type": "test.sleep", "payload": {"ms": "10"}}, "/payload/ms"),
                 ({"type": "http.request", "payload": {}}, "/payload/url"),
                 ({"type": "http.request", "payload": {"url": "ftp://example.com/x"}},
                  "/payload/url"),
                 ({"type": "http.request", "payload": {"url": "https://example.com",
                                                       "method": "BREW"}}, "/payload/method"),
                 ({"type": "http.request", "payload": {"url": "https://example.com",
                                                       "headers": {"X-N": 1}}},
                  "/payload/headers/X-N"),
                 ({"type": "test.noop", "run_at": "tomorrow"}, "/run_at"),
                 ({"type": "test.noop", "run_at": 1767225600}, "/run_at"),
                 ({"type": "test.noop", "run_at": year}, "/run_at"),
                 ({"type": "test.noop", "run_at": iso(now()), "delay_s": 5}, "/delay_s"),
                 ({"type": "test.noop", "delay_s": -1}, "/delay_s"),
                 ({"type": "test.noop", "delay_s": 31622401}, "/delay_s"),
                 ({"type": "test.noop", "delay_s": "5"}, "/delay_s"),
                 ({"type": "test.noop", "priority": 10}, "/priority"),
                 ({"type": "test.noop", "priority": -1}, "/priority"),
                 ({"type": "test.noop", "priority": "1"}, "/priority"),
                 ({"type": "test.noop", "priority": 1.5}, "/priority"),
                 ({"type": "test.noop", "max_attempts": 0}, "/max_attempts"),
                 ({"type": "test.noop", "max_attempts": 101}, "/max_attempts"),
                 ({"type": "test.noop", "timeout_s": 0}, "/timeout_s"),
                 ({"type": "test.noop", "timeout_s": 86401}, "/timeout_s"),
                 ({"type": "test.noop", "unique_key": ""}, "/unique_key"),
                 ({"type": "test.noop", "unique_key": "k" * 256}, "/unique_key"),
                 ({"type": "test.noop", "unique_key": 7}, "/unique_key"))
        for body, pointer in cases:
            with self.subTest(body=body):
                self.assertPointer(self.call("POST", JOBS, body, token=owner), pointer)
        self.assertProblem(self.call("POST", JOBS, {"type": "test.noop", "colour": "red"},
                                     token=owner), 400, "validation-failed")
        r = self.call("POST", JOBS, raw=b"[]", token=owner)
        self.assertEqual(r.status, 400, r.body)
        self.assertProblem(self.call("POST", JOBS, raw=b'{"type":', token=owner), 400,
                           "bad-request")
        self.assertEqual(self.list_jobs(owner)["data"], [], "a refused body created a job")
        # The bounds themselves are accepted.
        accepted = ({"priority": 0}, {"priority": 9}, {"max_attempts": 1},
                    {"max_attempts": 100}, {"timeout_s": 1}, {"timeout_s": 86400},
                    {"unique_key": "k" * 255}, {"delay_s": 0}, {"payload": {"once": False}})
        for extra in accepted:
            with self.subTest(extra=extra):
                job = self.create_job(owner, dict(extra, type="test.noop"))
                for key, value in extra.items():
                    if key != "delay_s":
                        self.assertEqual(job[key], value)
        far = self.create_job(owner, {"type": "test.noop", "delay_s": 31622400})
        self.assertEqual(far["state"], "scheduled")
        self.assertAlmostEqual(seconds(far["created_at"], far["run_at"]), 31622400, delta=5)
        self.assertEqual(self.job_action(owner, far["id"], "cancel").status, 200)

    def test_a_batch_enqueues_every_job_or_none(self):
        tenant, owner = self.tenant_and_owner()
        key = "batch-" + os.urandom(4).hex()
        held = self.create_job(owner, {"type": "test.noop", "delay_s": 60, "unique_key": key})
        r = self.call("POST", JOBS + "/batch", {"jobs": [
            {"type": "test.noop"},
            {"type": "test.sleep", "payload": {"ms": 1}, "priority": 1, "delay_s": 60},
            {"type": "test.noop", "unique_key": key}]}, token=owner)
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(set(r.body), {"data"})
        data = r.body["data"]
        self.assertEqual(len(data), 3, data)
        for job in data[:2]:
            self.assertJob(job)
        self.assertEqual((data[0]["type"], data[0]["state"], data[0]["priority"]),
                         ("test.noop", "available", 5))
        self.assertEqual((data[1]["type"], data[1]["state"], data[1]["priority"],
                          data[1]["payload"]), ("test.sleep", "scheduled", 1, {"ms": 1}))
        self.assertEqual(data[2], dict(held, duplicate=True))
        self.wait_job(owner, data[0]["id"], "succeeded", timeout=5)
        # Two jobs of one batch with one key: the second is the first's duplicate.
        twin = "twin-" + os.urandom(4).hex()
        r = self.call("POST", JOBS + "/batch", {"jobs": [
            {"type": "test.noop", "delay_s": 60, "unique_key": twin},
            {"type": "test.noop", "delay_s": 60, "unique_key": twin}]}, token=owner)
        self.assertEqual(r.status, 201, r.body)
        first, second = r.body["data"]
        self.assertNotIn("duplicate", first)
        self.assertEqual((second.get("duplicate"), second["id"]), (True, first["id"]))
        count = len(self.all_jobs(owner))
        self.assertEqual(count, 4)
        # One bad job refuses the whole batch.
        too_many = {"jobs": [{"type": "test.noop"}] * 1001}
        cases = (({}, "/jobs"), ({"jobs": []}, "/jobs"), ({"jobs": "x"}, "/jobs"),
                 (too_many, "/jobs"),
                 ({"jobs": [{"type": "test.noop"}, 5]}, "/jobs/1"),
                 ({"jobs": [{"type": "test.noop"}, {"type": "no.such.type"}]}, "/jobs/1/type"),
                 ({"jobs": [{"type": "http.request", "payload": {}}]}, "/jobs/0/payload/url"),
                 ({"jobs": [{"type": "test.noop", "priority": 10}]}, "/jobs/0/priority"),
                 ({"jobs": [{"type": "test.noop", "delay_s": 1, "run_at": iso(now())}]},
                  "/jobs/0/delay_s"))
        for body, pointer in cases:
            with self.subTest(pointer=pointer, body=str(body)[:80]):
                self.assertPointer(self.call("POST", JOBS + "/batch", body, token=owner), pointer)
        for body in ({"jobs": [{"type": "test.noop", "colour": "red"}]},
                     {"jobs": [{"type": "test.noop"}], "colour": "red"}):
            self.assertProblem(self.call("POST", JOBS + "/batch", body, token=owner), 400,
                               "validation-failed")
        self.assertEqual(len(self.all_jobs(owner)), count, "a refused batch enqueued jobs")
        # A thousand at once.
        r = self.call("POST", JOBS + "/batch", {"jobs": [{"type": "test.noop"}] * 1000},
                      token=owner)
        self.assertEqual(r.status, 201, r.body)
        self.assertEqual(len({j["id"] for j in r.body["data"]}), 1000)
        self.assertForbidden(self.call("POST", JOBS + "/batch", {"jobs": [{"type": "test.noop"}]},
                                       token=self.new_member(tenant)["token"]), "jobs:write")
        for job in (data[1], first):
            self.assertEqual(self.job_action(owner, job["id"], "cancel").status, 200)
        done = poll(lambda: len(self.all_jobs(owner, "state=succeeded")) >= 1001, timeout=20,
                    interval=0.5)
        self.assertTrue(done, "the thousand jobs of the batch did not all run")

    def test_delay_and_run_at_hold_a_job_until_its_time(self):
        _, owner = self.tenant_and_owner()
        t0 = now()
        delayed = self.create_job(owner, {"type": "test.noop", "delay_s": 2})
        self.assertEqual(delayed["state"], "scheduled")
        self.assertAlmostEqual((ts(delayed["run_at"]) - t0).total_seconds(), 2.0, delta=0.5)
        at = iso(now() + datetime.timedelta(seconds=1.5))
        timed = self.create_job(owner, {"type": "test.noop", "run_at": at})
        self.assertEqual((timed["state"], timed["run_at"]), ("scheduled", at))
        # An offset is read and the answer is UTC.
        later = (now() + datetime.timedelta(hours=1)).replace(microsecond=250000)
        berlin = later.astimezone(datetime.timezone(datetime.timedelta(hours=2)))
        text = berlin.strftime("%Y-%m-%dT%H:%M:%S.250+02:00")
        offset = self.create_job(owner, {"type": "test.noop", "run_at": text})
        self.assertEqual(offset["run_at"], iso(later))
        scheduled = {j["id"] for j in self.list_jobs(owner, "?state=scheduled")["data"]}
        self.assertEqual(scheduled, {delayed["id"], timed["id"], offset["id"]})
        self.assertEqual(self.list_jobs(owner, "?state=available")["data"], [])
        for job in (timed, delayed):
            done = self.wait_job(owner, job["id"], "succeeded", timeout=8)
            started = done["attempts"][0]["started_at"]
            self.assertGreaterEqual(seconds(job["run_at"], started), -0.002,
                                    "started before its run_at: %r" % done)
            self.assertLess(seconds(job["run_at"], started), 1.5,
                            "started late after its run_at: %r" % done)
        self.assertEqual(self.get_job(owner, offset["id"])["state"], "scheduled")
        self.assertEqual(self.job_action(owner, offset["id"], "cancel").status, 200)
        # A run_at in the past is due at once.
        past = self.create_job(owner, {"type": "test.noop",
                                       "run_at": iso(now() - datetime.timedelta(hours=1))})
        self.assertEqual(past["state"], "available")
        self.wait_job(owner, past["id"], "succeeded", timeout=5)

    def test_a_unique_key_is_held_by_one_unfinished_job(self):
        tenant, owner = self.tenant_and_owner()
        key = "report-" + os.urandom(4).hex()
        first = self.create_job(owner, {"type": "test.noop", "delay_s": 60, "unique_key": key})
        self.assertEqual((first["unique_key"], first["state"]), (key, "scheduled"))
        r = self.call("POST", JOBS, {"type": "test.noop", "unique_key": key,
                                     "payload": {"once": False}}, token=owner)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(set(r.body), JOB_KEYS | {"duplicate"})
        self.assertIs(r.body["duplicate"], True)
        self.assertEqual({k: v for k, v in r.body.items() if k != "duplicate"}, first)
        other = self.create_job(owner, {"type": "test.noop", "delay_s": 60,
                                        "unique_key": key + "-other"})
        self.assertNotEqual(other["id"], first["id"])
        self.assertEqual(len(self.list_jobs(owner)["data"]), 2)
        # A finished job frees its key.
        self.assertEqual(self.job_action(owner, first["id"], "cancel").status, 200)
        third = self.create_job(owner, {"type": "test.noop", "unique_key": key})
        self.assertNotIn(third["id"], (first["id"], other["id"]))
        self.wait_job(owner, third["id"], "succeeded", timeout=5)
        fourth = self.create_job(owner, {"type": "test.noop", "unique_key": key})
        self.assertNotIn(fourth["id"], (first["id"], third["id"]))
        self.assertEqual(self.job_action(owner, other["id"], "cancel").status, 200)
        self.assertEqual(len(self.list_jobs(owner)["data"]), 4)
        entries = self.wait_for_audit(tenant, "?action=job.created",
                                      lambda e: len(e) >= 4)
        self.assertEqual({e["resource"]["id"] for e in entries},
                         {first["id"], other["id"], third["id"], fourth["id"]})

    def test_jobs_are_listed_newest_first_filtered_and_paged(self):
        _, owner = self.tenant_and_owner()
        created = []
        for n in range(5):
            created.append(self.create_job(owner, {"type": "test.noop", "delay_s": 60}))
        for n in range(2):
            created.append(self.create_job(owner, {"type": "test.sleep", "delay_s": 60,
                                                   "payload": {"ms": n}}))
        newest_first = [j["id"] for j in reversed(created)]
        self.assertEqual([j["id"] for j in self.list_jobs(owner)["data"]], newest_first)
        self.assertEqual([j["id"] for j in self.list_jobs(owner, "?type=test.sleep")["data"]],
                         newest_first[:2])
        self.assertEqual([j["id"] for j in self.list_jobs(owner, "?type=test.noop")["data"]],
                         newest_first[2:])
        self.assertEqual(len(self.list_jobs(owner, "?state=scheduled")["data"]), 7)
        self.assertEqual(self.list_jobs(owner, "?state=succeeded")["data"], [])
        self.assertEqual([j["id"] for j in self.list_jobs(
            owner, "?state=scheduled&type=test.sleep")["data"]], newest_first[:2])
        self.assertEqual(self.list_jobs(owner, "?type=http.request")["data"], [])
        seen, cursor, sizes = [], None, []
        while True:
            q = "?limit=3" + ("&cursor=" + urllib.parse.quote(cursor, safe="") if cursor else "")
            page = self.list_jobs(owner, q)
            sizes.append(len(page["data"]))
            seen += [j["id"] for j in page["data"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
            self.assertIsInstance(cursor, str)
            self.assertLess(len(sizes), 10, "paging does not end")
        self.assertEqual(seen, newest_first)
        self.assertEqual(sizes, [3, 3, 1])
        for query in ("?state=bogus", "?type=Not%20A%20Type", "?limit=0", "?limit=201",
                      "?limit=x", "?cursor=not-a-cursor", "?colour=red"):
            with self.subTest(query=query):
                r = self.call("GET", JOBS + query, token=owner)
                self.assertEqual(r.status, 400, r.body)
                self.assertIn(r.body["code"], ("validation-failed", "bad-request"), r.body)
        self.assertPointer(self.call("GET", JOBS + "?state=bogus", token=owner), "/query/state")
        for path in ("%s/%s" % (JOBS, UNKNOWN_ID), JOBS + "/not-a-uuid"):
            self.assertProblem(self.call("GET", path, token=owner), 404, "not-found")
            for action in ("cancel", "retry"):
                self.assertProblem(self.call("POST", "%s/%s" % (path, action), token=owner),
                                   404, "not-found")
        for job in created:
            self.assertEqual(self.job_action(owner, job["id"], "cancel").status, 200)

    # -- retries, discarding, cancel, retry by hand --------------------------------------------

    def test_a_failing_job_backs_off_exponentially_up_to_the_cap(self):
        _, owner = self.tenant_and_owner()
        job = self.create_job(owner, {"type": "test.fail", "payload": {"times": 4}})
        seen = []

        def probe():
            j = self.get_job(owner, job["id"])
            if not seen or seen[-1] != j["state"]:
                seen.append(j["state"])
            return j if j["state"] in FINISHED else None
        done = poll(probe, timeout=15, interval=0.01)
        self.assertTrue(done, "still %r" % seen)
        self.assertEqual(done["state"], "succeeded", done)
        self.assertIn("retrying", seen)
        self.assertEqual((done["attempt"], done["result"]), (5, {"attempts": 5}))
        attempts = done["attempts"]
        self.assertEqual([a["n"] for a in attempts], [1, 2, 3, 4, 5])
        for a in attempts[:4]:
            self.assertTrue(a["error"], attempts)
            self.assertIsNotNone(a["started_at"])
        self.assertIsNone(attempts[4]["error"])
        gaps = [seconds(a["finished_at"], b["started_at"]) for a, b in zip(attempts, attempts[1:])]
        # base 200 ms doubling, ±10 %, capped at 1000 ms: 200, 400, 800, 1000.
        for gap, (low, high) in zip(gaps, ((0.17, 0.6), (0.35, 0.8), (0.7, 1.3), (0.88, 1.45))):
            self.assertTrue(low <= gap < high, "retry gaps %r, expected ≈ 0.2, 0.4, 0.8, 1.0 s"
                            % gaps)
        print("jobs: retry gaps %s s" % ", ".join("%.3f" % g for g in gaps))

    def test_a_job_out_of_attempts_is_discarded_announced_and_retried_by_hand(self):
        tenant, owner = self.tenant_and_owner()
        rcv = self.new_receiver()
        rcv.script("/flaky", Reply(500, {"Content-Type": "text/plain"}, 0, "boom"),
                   Reply(500, {"Content-Type": "text/plain"}, 0, "boom"))
        rcv.set_default("/flaky", Reply(200, {"Content-Type": "text/plain"}, 0, "fine"))
        watcher = self.create_endpoint(owner, rcv.url("/discarded"), events=["job.discarded"])
        job = self.create_job(owner, {"type": "http.request", "max_attempts": 2,
                                      "payload": {"url": rcv.url("/flaky")}})
        done = self.wait_job(owner, job["id"], FINISHED, timeout=10)
        self.assertEqual(done["state"], "discarded", done)
        self.assertEqual((done["attempt"], done["max_attempts"]), (2, 2))
        self.assertIsNotNone(done["finished_at"])
        self.assertTrue(done["last_error"].startswith("HTTP 500"), done)
        self.assertIn("boom", done["last_error"])
        self.assertEqual([a["n"] for a in done["attempts"]], [1, 2])
        for a in done["attempts"]:
            self.assertTrue((a["error"] or "").startswith("HTTP 500"), a)
        self.assertEqual([r.method for r in rcv.requests("/flaky")], ["GET", "GET"])
        # job.discarded, signed, with the job.
        note = rcv.wait_count(1, timeout=15, path="/discarded")[0]
        self.assertSigned(note, watcher["secret"])
        body = note.json()
        self.assertEqual((body["type"], body["tenant_id"]), ("job.discarded", tenant["id"]))
        self.assertEqual(set(body["payload"]), {"job"})
        announced = body["payload"]["job"]
        self.assertTrue(JOB_KEYS <= set(announced), announced)
        self.assertEqual((announced["id"], announced["state"], announced["attempt"]),
                         (job["id"], "discarded", 2))
        # By hand: available again with one more attempt, and now the receiver says 200.
        r = self.job_action(owner, job["id"], "retry")
        self.assertEqual(r.status, 200, r.body)
        self.assertJob(r.body)
        self.assertEqual((r.body["id"], r.body["state"], r.body["max_attempts"]),
                         (job["id"], "available", 3))
        again = self.wait_job(owner, job["id"], FINISHED, timeout=10)
        self.assertEqual(again["state"], "succeeded", again)
        self.assertEqual(again["attempt"], 3)
        self.assertEqual(again["result"]["status"], 200)
        self.assertEqual(again["result"]["body"], "fine")
        self.assertEqual([a["n"] for a in again["attempts"]], [1, 2, 3])
        self.assertEqual(len(rcv.requests("/flaky")), 3)
        # A finished job cannot be cancelled; a succeeded one cannot be retried.
        self.assertProblem(self.job_action(owner, job["id"], "retry"), 409, "conflict")
        self.assertProblem(self.job_action(owner, job["id"], "cancel"), 409, "conflict")
        entries = self.wait_for_audit(tenant, "?action=job.retried&outcome=success")
        self.assertEqual([e["resource"] for e in entries], [{"type": "job", "id": job["id"]}])
        time.sleep(0.5)
        self.assertEqual(len(rcv.requests("/discarded")), 1, "job.discarded announced twice")

    def test_cancel_stops_waiting_and_running_jobs(self):
        tenant, owner = self.tenant_and_owner()
        waiting = self.create_job(owner, {"type": "test.noop", "delay_s": 60})
        r = self.job_action(owner, waiting["id"], "cancel")
        self.assertEqual(r.status, 200, r.body)
        self.assertJob(r.body)
        self.assertEqual((r.body["id"], r.body["state"]), (waiting["id"], "cancelled"))
        self.assertIsNotNone(r.body["finished_at"])
        self.assertProblem(self.job_action(owner, waiting["id"], "cancel"), 409, "conflict")
        self.assertEqual(self.get_job(owner, waiting["id"])["state"], "cancelled")
        # Retried, a cancelled job that was waiting for its time runs now.
        r = self.job_action(owner, waiting["id"], "retry")
        self.assertEqual((r.status, r.body["state"]), (200, "available"), r.body)
        self.wait_job(owner, waiting["id"], "succeeded", timeout=5)
        # A running job is told to stop and stops soon.
        running = self.create_job(owner, {"type": "test.sleep", "payload": {"ms": 30000}})
        self.wait_job(owner, running["id"], "running", timeout=5, interval=0.02)
        time.sleep(0.3)  # its handler has started
        self.assertProblem(self.job_action(owner, running["id"], "retry"), 409, "conflict")
        t0 = time.monotonic()
        r = self.job_action(owner, running["id"], "cancel")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual((r.body["state"], r.body["cancel_requested"]), ("running", True))
        stopped = self.wait_job(owner, running["id"], FINISHED, timeout=8, interval=0.02)
        took = time.monotonic() - t0
        self.assertEqual(stopped["state"], "cancelled", stopped)
        self.assertLess(took, 1.0, "a cancelled test.sleep took %.2f s to stop" % took)
        self.assertEqual(stopped["attempt"], 1)
        self.assertIsNotNone(stopped["finished_at"])
        self.assertLess(seconds(stopped["attempts"][0]["started_at"],
                                stopped["attempts"][0]["finished_at"]), 5.0, stopped)
        self.assertProblem(self.job_action(owner, running["id"], "cancel"), 409, "conflict")
        # Retried, it runs again (attempts left: max_attempts unchanged); cancel it again.
        r = self.job_action(owner, running["id"], "retry")
        self.assertEqual((r.status, r.body["state"], r.body["max_attempts"]),
                         (200, "available", 5), r.body)
        self.wait_job(owner, running["id"], "running", timeout=5, interval=0.02)
        self.assertEqual(self.job_action(owner, running["id"], "cancel").status, 200)
        again = self.wait_job(owner, running["id"], FINISHED, timeout=8)
        self.assertEqual((again["state"], again["attempt"]), ("cancelled", 2))
        print("jobs: a running test.sleep was cancelled in %.3f s" % took)
        entries = self.wait_for_audit(tenant, "?action=job.cancelled&outcome=success",
                                      lambda e: len(e) >= 3)
        self.assertEqual(sorted(e["resource"]["id"] for e in entries),
                         sorted([waiting["id"], running["id"], running["id"]]))
        for e in entries:
            self.assertEqual((e["resource"]["type"], e["outcome"]), ("job", "success"))

    def test_an_attempt_longer_than_timeout_s_fails_as_timed_out(self):
        _, owner = self.tenant_and_owner()
        job = self.create_job(owner, {"type": "test.sleep", "payload": {"ms": 10000},
                                      "timeout_s": 1, "max_attempts": 1})
        t0 = time.monotonic()
        done = self.wait_job(owner, job["id"], FINISHED, timeout=8)
        self.assertEqual(done["state"], "discarded", done)
        self.assertLess(time.monotonic() - t0, 4.0)
        self.assertIn("timed out", done["last_error"].lower(), done)
        attempt = done["attempts"][0]
        self.assertIn("timed out", (attempt["error"] or "").lower(), attempt)
        took = seconds(attempt["started_at"], attempt["finished_at"])
        self.assertTrue(0.9 <= took < 2.5, "the 1 s attempt took %.3f s" % took)

    # -- built-in job types ---------------------------------------------------------------------

    def test_http_request_jobs_send_what_they_are_told(self):
        _, owner = self.tenant_and_owner()
        rcv = self.new_receiver()
        rcv.set_default("/echo", Reply(201, {"Content-Type": "application/json"}, 0,
                                       '{"pong":true}'))
        payload = {"url": rcv.url("/echo") + "?q=1", "method": "POST",
                   "headers": {"X-Custom": "yes", "Content-Type": "application/json"},
                   "body": {"a": [1, 2], "s": "crème"}}
        posted = self.create_job(owner, {"type": "http.request", "payload": payload},
                                 headers={"traceparent": TRACEPARENT})
        self.assertEqual(posted["payload"], payload)
        req = rcv.wait_count(1, path="/echo")[0]
        self.assertEqual(req.method, "POST")
        self.assertEqual(req.headers.get("x-custom"), "yes")
        self.assertEqual(json.loads(req.body.decode("utf-8")), {"a": [1, 2], "s": "crème"})
        self.assertEqual(req.headers.get("traceparent"), TRACEPARENT)
        done = self.wait_job(owner, posted["id"], "succeeded")
        self.assertEqual(set(done["result"]), {"status", "body", "duration_ms"})
        self.assertEqual((done["result"]["status"], done["result"]["body"]), (201, '{"pong":true}'))
        self.assertIsInstance(done["result"]["duration_ms"], int)
        self.assertGreaterEqual(done["result"]["duration_ms"], 0)
        # A string body goes as it is; GET is the default method; no traceparent unless sent.
        put = self.create_job(owner, {"type": "http.request", "payload": {
            "url": rcv.url("/put"), "method": "PUT", "body": "plain text, not JSON"}})
        self.wait_job(owner, put["id"], "succeeded")
        got = self.create_job(owner, {"type": "http.request", "payload": {"url": rcv.url("/get")}})
        self.wait_job(owner, got["id"], "succeeded")
        deleted = self.create_job(owner, {"type": "http.request", "payload": {
            "url": rcv.url("/delete"), "method": "DELETE"}})
        self.wait_job(owner, deleted["id"], "succeeded")
        (put_req,) = rcv.requests("/put")
        self.assertEqual((put_req.method, put_req.body), ("PUT", b"plain text, not JSON"))
        (get_req,) = rcv.requests("/get")
        self.assertEqual((get_req.method, get_req.body), ("GET", b""))
        self.assertIsNone(get_req.headers.get("traceparent"))
        self.assertEqual([r.method for r in rcv.requests("/delete")], ["DELETE"])

    def test_tenant_export_holds_the_tenant_without_secrets(self):
        tenant, owner = self.tenant_and_owner()
        member = self.signup(tenant, display_name="Exported Member")
        role = "exported-role-" + os.urandom(3).hex()
        self.make_role(owner, role, ["jobs:read"])
        r = self.call("POST", "/v1/api-keys", {"name": "export-key",
                                               "permissions": ["jobs:read"]}, token=owner)
        self.assertEqual(r.status, 201, r.body)
        key = r.body
        ep = self.create_endpoint(owner, "https://hooks.example.com/export")
        event_type = "exported_%s.happened" % os.urandom(3).hex()
        self.assertEqual(self.call("POST", "/v1/webhooks/event-types", {"name": event_type},
                                   token=owner).status, 201)
        inbound_secret = "inbound-secret-" + os.urandom(8).hex()
        r = self.call("PUT", "/v1/inbound/sources/exported",
                      {"scheme": "github", "secret": inbound_secret}, token=owner)
        self.assertEqual(r.status, 200, r.body)
        self.put_schedule(owner, "exported-schedule",
                          {"cron": "0 0 1 1 *", "job": {"type": "audit.prune"}})
        self.delete_schedule_later(owner, "exported-schedule")
        job = self.create_job(owner, {"type": "tenant.export"})
        done = self.wait_job(owner, job["id"], FINISHED, timeout=15)
        self.assertEqual(done["state"], "succeeded", done)
        result = done["result"]
        self.assertTrue({"format", "exported_at", "tenant", "users", "roles", "api_keys",
                         "webhook_endpoints", "event_types", "inbound_sources", "schedules",
                         "counts", "truncated"} <= set(result), sorted(result))
        self.assertEqual(result["format"], "troupe-export-1")
        self.assertRegex(result["exported_at"], TS_RE)
        self.assertEqual(result["tenant"], {"id": tenant["id"], "slug": tenant["slug"],
                                            "name": tenant["name"]})
        users = {u["email"]: u for u in result["users"]}
        self.assertEqual(set(users), {tenant["owner"]["email"], member["email"]})
        self.assertEqual(users[member["email"]]["display_name"], "Exported Member")
        for u in result["users"]:
            self.assertFalse({"password", "password_hash"} & set(u), u)
        self.assertIn(role, [r["name"] for r in result["roles"]])
        self.assertIn(key["id"], [k["id"] for k in result["api_keys"]])
        self.assertEqual([e["id"] for e in result["webhook_endpoints"]], [ep["id"]])
        self.assertFalse(any("secret" in e for e in result["webhook_endpoints"]))
        self.assertIn(event_type, [t["name"] for t in result["event_types"]])
        self.assertEqual([s["name"] for s in result["inbound_sources"]], ["exported"])
        self.assertEqual([s["name"] for s in result["schedules"]], ["exported-schedule"])
        self.assertEqual(set(result["counts"]), {"events", "jobs", "audit_entries"})
        self.assertGreaterEqual(result["counts"]["jobs"], 1)
        self.assertGreaterEqual(result["counts"]["audit_entries"], 5)
        self.assertIs(result["truncated"], False)
        text = json.dumps(done)
        for secret in (PASSWORD, key["key"], key["key"][len(key["prefix"]):] or key["key"],
                       ep["secret"], ep["secret"][len("whsec_"):], inbound_secret, "$argon2"):
            self.assertNotIn(secret, text)
        stored = psql(self.srv, "SELECT password_hash FROM users WHERE tenant_id = '%s'"
                      % tenant["id"])
        for h in stored:
            if h:
                self.assertNotIn(h, text)

    def test_audit_prune_with_retention_zero_prunes_nothing(self):
        _, owner = self.tenant_and_owner()
        job = self.create_job(owner, {"type": "audit.prune", "payload": {}})
        done = self.wait_job(owner, job["id"], FINISHED, timeout=10)
        self.assertEqual(done["state"], "succeeded", done)
        self.assertEqual((done["result"]["pruned"], done["result"]["retention_days"]), (0, 0))
        self.assertPointer(self.call("POST", JOBS, {"type": "audit.prune",
                                                    "payload": {"days": 1}}, token=owner),
                           "/payload/days")

    # -- permissions, idempotency, metrics -----------------------------------------------------

    def test_jobs_and_schedules_need_their_permissions(self):
        tenant, owner = self.tenant_and_owner()
        member = self.new_member(tenant)  # jobs:read, no jobs:write
        viewer = self.new_member(tenant)
        self.grant(owner, viewer["id"], ["viewer"])
        job = self.create_job(owner, {"type": "test.noop", "delay_s": 60})
        self.put_schedule(owner, "perm-check", {"cron": "0 0 1 1 *",
                                                "job": {"type": "test.noop"}})
        self.delete_schedule_later(owner, "perm-check")
        for who in (member, viewer):
            token = who["token"]
            self.assertEqual(self.call("GET", JOBS, token=token).status, 200)
            self.assertEqual(self.call("GET", "%s/%s" % (JOBS, job["id"]), token=token).status,
                             200)
            self.assertEqual(self.call("GET", SCHEDULES, token=token).status, 200)
            for method, path, body in (
                    ("POST", JOBS, {"type": "test.noop"}),
                    ("POST", "%s/%s/cancel" % (JOBS, job["id"]), None),
                    ("POST", "%s/%s/retry" % (JOBS, job["id"]), None),
                    ("PUT", SCHEDULES + "/perm-check", {"cron": "* * * * *",
                                                        "job": {"type": "test.noop"}}),
                    ("DELETE", SCHEDULES + "/perm-check", None)):
                with self.subTest(method=method, path=path):
                    self.assertForbidden(self.call(method, path, body, token=token), "jobs:write")
        r = self.call("POST", "/v1/api-keys", {"name": "reader", "permissions": ["jobs:read"]},
                      token=owner)
        self.assertEqual(r.status, 201, r.body)
        reader = r.body["key"]
        self.assertEqual(self.call("GET", JOBS, token=reader).status, 200)
        self.assertForbidden(self.call("POST", JOBS, {"type": "test.noop"}, token=reader),
                             "jobs:write")
        r = self.call("POST", "/v1/api-keys", {"name": "writer", "permissions": ["jobs:write"]},
                      token=owner)
        writer = r.body["key"]
        self.create_job(writer, {"type": "test.noop"})
        self.assertForbidden(self.call("GET", JOBS, token=writer), "jobs:read")
        # tenant.export and audit.prune also need tenant:admin, to enqueue or to schedule, and
        # a refused job is not created.
        before = len(self.list_jobs(owner, "?limit=200")["data"])
        for kind in ("tenant.export", "audit.prune"):
            with self.subTest(kind=kind):
                self.assertForbidden(self.call("POST", JOBS, {"type": kind}, token=writer),
                                     "tenant:admin")
                self.assertForbidden(
                    self.call("POST", JOBS + "/batch", {"jobs": [{"type": "test.noop"},
                                                                 {"type": kind}]}, token=writer),
                    "tenant:admin")
                self.assertForbidden(
                    self.call("PUT", SCHEDULES + "/export-check",
                              {"cron": "0 0 1 1 *", "job": {"type": kind}}, token=writer),
                    "tenant:admin")
        self.assertEqual(len(self.list_jobs(owner, "?limit=200")["data"]), before)
        self.create_job(owner, {"type": "tenant.export"})
        self.assertUnauthenticated(self.call("GET", JOBS, tenant=tenant["slug"]), token_sent=False)
        by_admin = self.call("POST", JOBS, {"type": "test.noop"}, token=self.srv.admin_token,
                             tenant=tenant["slug"])
        self.assertEqual(by_admin.status, 201, by_admin.body)
        self.assertEqual(self.get_job(owner, job["id"])["state"], "scheduled")
        self.assertEqual([s["name"] for s in self.schedules(owner)["data"]], ["perm-check"])
        entries = self.wait_for_audit(tenant, "?action=job.created", lambda e: len(e) >= 3)
        admin_entries = [e for e in entries if e["resource"]["id"] == by_admin.body["id"]]
        self.assertEqual([e["actor"]["type"] for e in admin_entries], ["admin"])
        self.assertEqual(self.job_action(owner, job["id"], "cancel").status, 200)

    def test_an_idempotency_key_enqueues_once(self):
        _, owner = self.tenant_and_owner()
        headers = {"Idempotency-Key": "enqueue-" + os.urandom(6).hex()}
        body = {"type": "test.noop", "delay_s": 60}
        first = self.call("POST", JOBS, body, token=owner, headers=headers)
        self.assertEqual(first.status, 201, first.body)
        second = self.call("POST", JOBS, body, token=owner, headers=headers)
        self.assertEqual((second.status, second.body), (201, first.body))
        self.assertEqual(second.headers.get("idempotent-replayed"), "true")
        self.assertEqual(second.headers.get("location"), first.headers.get("location"))
        self.assertEqual([j["id"] for j in self.list_jobs(owner)["data"]], [first.body["id"]])
        self.assertEqual(self.job_action(owner, first.body["id"], "cancel").status, 200)

    def test_job_outcomes_are_counted_in_metrics(self):
        _, owner = self.tenant_and_owner()

        def value(state):
            return metric_value(parse_metrics(scrape(self.srv)), "troupe_jobs_total",
                                state=state) or 0
        before = {s: value(s) for s in ("succeeded", "retrying", "discarded")}
        ok = self.create_job(owner, {"type": "test.noop"})
        bad = self.create_job(owner, {"type": "test.fail", "payload": {"times": 5},
                                      "max_attempts": 2})
        self.wait_job(owner, ok["id"], "succeeded")
        self.wait_job(owner, bad["id"], "discarded")
        def grown():
            values = {s: value(s) for s in before}
            return values if values["discarded"] >= before["discarded"] + 1 else None
        after = poll(grown, timeout=3)
        self.assertTrue(after, "troupe_jobs_total{state=\"discarded\"} did not grow")
        self.assertGreaterEqual(after["succeeded"], before["succeeded"] + 1)
        self.assertGreaterEqual(after["retrying"], before["retrying"] + 1)
        self.assertGreaterEqual(after["discarded"], before["discarded"] + 1)


class PriorityTest(JobsMixin, ServerTestCase):
    """One job at a time, so that the start order shows the claim order."""

    server_args = BASE_ARGS + JOB_ARGS + ("--jobs.concurrency=1",)

    def test_priority_0_runs_first_among_jobs_due_together(self):
        _, owner = self.tenant_and_owner()
        at = iso(now() + datetime.timedelta(seconds=1.5))
        jobs = {}
        for name, priority in (("low", 9), ("mid", 5), ("high", 0)):
            jobs[name] = self.create_job(owner, {"type": "test.sleep", "payload": {"ms": 100},
                                                 "priority": priority, "run_at": at})
            self.assertEqual(jobs[name]["priority"], priority)
        started = {}
        for name, job in jobs.items():
            done = self.wait_job(owner, job["id"], "succeeded", timeout=10)
            started[name] = done["attempts"][0]["started_at"]
        order = sorted(started, key=lambda n: started[n])
        self.assertEqual(order, ["high", "mid", "low"], started)
        # One at a time: each started after the one before had slept its 100 ms.
        self.assertGreaterEqual(seconds(started[order[0]], started[order[1]]), 0.09, started)
        self.assertGreaterEqual(seconds(started[order[1]], started[order[2]]), 0.09, started)

    def test_a_later_job_of_priority_0_overtakes_waiting_jobs_of_lower_priority(self):
        _, owner = self.tenant_and_owner()
        blocker = self.create_job(owner, {"type": "test.sleep", "payload": {"ms": 1500}})
        self.wait_job(owner, blocker["id"], "running", timeout=5, interval=0.02)
        jobs = {}
        for name, priority in (("low", 9), ("mid", 5), ("high", 0)):
            jobs[name] = self.create_job(owner, {"type": "test.sleep", "payload": {"ms": 100},
                                                 "priority": priority})
        self.assertEqual(self.get_job(owner, blocker["id"])["state"], "running",
                         "the blocker ended before the others were enqueued")
        started = {}
        for name, job in jobs.items():
            done = self.wait_job(owner, job["id"], "succeeded", timeout=10)
            started[name] = done["attempts"][0]["started_at"]
        self.assertEqual(sorted(started, key=lambda n: started[n]), ["high", "mid", "low"],
                         "jobs waiting for the one slot did not start by priority: %r" % started)


    def test_a_node_without_a_free_slot_leaves_new_jobs_to_another_node_at_once(self):
        """A busy node does not hoard slow work, and the other node hears of new jobs through
        LISTEN/NOTIFY instead of its 250 ms poll."""
        if not os.environ.get("TROUPE_TEST_PG"):
            self.skipTest("two servers need one shared database (TROUPE_TEST_PG)")
        _, owner = self.tenant_and_owner()
        blocker = self.create_job(owner, {"type": "test.sleep", "payload": {"ms": 4000}})
        self.wait_job(owner, blocker["id"], "running", timeout=5, interval=0.02)
        # Started after the blocker runs here, so the blocker cannot be the other node's.
        other = Server("--admin.token=" + self.srv.admin_token, *self.server_args)
        other.start()
        self.addCleanup(other.__exit__, None, None, None)
        time.sleep(0.3)  # its listener connects
        waits = []
        for _ in range(10):
            job = self.create_job(owner, {"type": "test.noop"})
            done = self.wait_job(owner, job["id"], "succeeded", timeout=5, interval=0.01)
            waits.append(seconds(done["created_at"], done["attempts"][0]["started_at"]))
        # Every one ran while this node's only slot was still busy: on the other node.
        self.assertEqual(self.get_job(owner, blocker["id"])["state"], "running",
                         "the blocker ended before the test: the jobs may have run here")
        waits.sort()
        # A poll every 250 ms would give a median around 125 ms.
        self.assertLess(waits[len(waits) // 2], 0.06, waits)


class NoTestHandlersTest(JobsMixin, ServerTestCase):
    """jobs.test-handlers and webhooks.allow-private-targets at their defaults (false)."""

    server_args = BASE_ARGS

    def test_test_types_are_unknown_and_private_targets_are_refused(self):
        _, owner = self.tenant_and_owner()
        for job_type in ("test.noop", "test.sleep", "test.fail"):
            with self.subTest(job_type=job_type):
                self.assertPointer(self.call("POST", JOBS, {"type": job_type, "payload": {}},
                                             token=owner), "/type")
        self.assertPointer(self.call("PUT", SCHEDULES + "/no-test", {
            "cron": "* * * * *", "job": {"type": "test.noop"}}, token=owner), "/job/type")
        r = self.call("GET", "/v1/functions", token=owner)
        self.assertEqual(r.status, 200, r.body)
        job_types = [t["name"] for t in r.body["job_types"]]
        self.assertTrue({"http.request", "tenant.export", "audit.prune"} <= set(job_types),
                        job_types)
        self.assertFalse([t for t in job_types if t.startswith("test.")], job_types)
        # The private-address guard covers http.request: refused when created, or when sent.
        rcv = self.new_receiver()
        r = self.call("POST", JOBS, {"type": "http.request", "max_attempts": 1,
                                     "payload": {"url": rcv.url("/private")}}, token=owner)
        if r.status == 400:
            self.assertPointer(r, "/payload/url")
        else:
            self.assertEqual(r.status, 201, r.body)
            done = self.wait_job(owner, r.body["id"], FINISHED, timeout=10)
            self.assertEqual(done["state"], "discarded", done)
            self.assertIn("refused", (done["last_error"] or "").lower(), done)
        time.sleep(0.3)
        self.assertEqual(rcv.requests(), [])


class ScheduleTest(JobsMixin, ServerTestCase):
    server_args = BASE_ARGS + JOB_ARGS

    def test_a_schedule_is_created_replaced_listed_and_deleted(self):
        tenant, owner = self.tenant_and_owner()
        for name in ("nightly", "b.second", "a_first", "c-3"):
            self.delete_schedule_later(owner, name)
        before = now()
        s = self.put_schedule(owner, "nightly", {"cron": "0 3 * * *",
                                                 "job": {"type": "tenant.export"}})
        after = now()
        self.assertEqual((s["name"], s["cron"], s["timezone"], s["enabled"], s["last_run_at"]),
                         ("nightly", "0 3 * * *", "UTC", True, None))
        self.assertEqual(s["job"]["type"], "tenant.export")
        self.assertIn(s["job"].get("payload", {}), ({},))
        self.assertIn(s["next_run_at"], (iso(local_daily(3, 0, "UTC", before)),
                                         iso(local_daily(3, 0, "UTC", after))))
        # Replaced: same name, new definition; created_at kept.
        job = {"type": "test.sleep", "payload": {"ms": 5}, "priority": 2, "max_attempts": 3,
               "timeout_s": 60, "unique_key": "nightly-run"}
        t = now()
        r = self.put_schedule(owner, "nightly", {"cron": "30 4 * * *", "timezone": "UTC",
                                                 "job": job, "enabled": True})
        self.assertEqual((r["cron"], r["created_at"]), ("30 4 * * *", s["created_at"]))
        self.assertEqual({k: r["job"].get(k) for k in job}, job)
        self.assertGreaterEqual(r["updated_at"], s["updated_at"])
        self.assertIn(r["next_run_at"], (iso(local_daily(4, 30, "UTC", t)),
                                         iso(local_daily(4, 30, "UTC", now()))))
        for name in ("b.second", "a_first", "c-3"):
            self.put_schedule(owner, name, {"cron": "@daily", "job": {"type": "test.noop"}})
        names = ["a_first", "b.second", "c-3", "nightly"]
        listed = self.schedules(owner)
        self.assertIsNone(listed["next_cursor"])
        self.assertEqual(sorted(s["name"] for s in listed["data"]), sorted(names))
        self.assertEqual([s["name"] for s in listed["data"]], sorted(names))  # by name
        self.assertEqual([x for x in listed["data"] if x["name"] == "nightly"], [r])
        seen, cursor = [], None
        for _ in range(10):
            q = "?limit=1" + ("&cursor=" + urllib.parse.quote(cursor, safe="") if cursor else "")
            page = self.schedules(owner, q)
            seen += [x["name"] for x in page["data"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        self.assertEqual(seen, sorted(names))
        for query in ("?limit=0", "?limit=201", "?colour=red"):
            self.assertEqual(self.call("GET", SCHEDULES + query, token=owner).status, 400, query)
        # Deleted: 204, then gone.
        r = self.call("DELETE", SCHEDULES + "/nightly", token=owner)
        self.assertEqual(r.status, 204, r.body)
        self.assertIsNone(r.body)
        self.assertProblem(self.call("DELETE", SCHEDULES + "/nightly", token=owner), 404,
                           "not-found")
        self.assertProblem(self.call("DELETE", SCHEDULES + "/-bad-name", token=owner), 404,
                           "not-found")
        self.assertEqual([x["name"] for x in self.schedules(owner)["data"]],
                         ["a_first", "b.second", "c-3"])
        updated = self.wait_for_audit(tenant, "?action=schedule.updated&outcome=success",
                                      lambda e: len(e) >= 5)
        self.assertEqual(sorted(e["resource"]["id"] for e in updated),
                         sorted(["nightly", "nightly", "b.second", "a_first", "c-3"]))
        for e in updated:
            self.assertEqual((e["resource"]["type"], e["outcome"]), ("schedule", "success"))
        deleted = self.wait_for_audit(tenant, "?action=schedule.deleted&outcome=success")
        self.assertEqual([e["resource"] for e in deleted], [{"type": "schedule", "id": "nightly"}])

    def test_schedule_bodies_and_names_are_validated(self):
        _, owner = self.tenant_and_owner()
        job = {"type": "test.noop"}
        cases = (({"job": job}, "/cron"),
                 ({"cron": "* * * *", "job": job}, "/cron"),
                 ({"cron": "* * * * * * *", "job": job}, "/cron"),
                 ({"cron": "61 * * * *", "job": job}, "/cron"),
                 ({"cron": "* 24 * * *", "job": job}, "/cron"),
                 ({"cron": "* * 0 * *", "job": job}, "/cron"),
                 ({"cron": "* * * 13 *", "job": job}, "/cron"),
                 ({"cron": "* * * * 8", "job": job}, "/cron"),
                 ({"cron": "*/0 * * * *", "job": job}, "/cron"),
                 ({"cron": "5-1 * * * *", "job": job}, "/cron"),
                 ({"cron": "@every 5m", "job": job}, "/cron"),
                 ({"cron": "* * * FOO *", "job": job}, "/cron"),
                 ({"cron": "", "job": job}, "/cron"),
                 ({"cron": 5, "job": job}, "/cron"),
                 ({"cron": "* * * * *", "timezone": "Mars/Olympus_Mons", "job": job},
                  "/timezone"),
                 ({"cron": "* * * * *", "timezone": "../../etc/passwd", "job": job},
                  "/timezone"),
                 ({"cron": "* * * * *", "timezone": "", "job": job}, "/timezone"),
                 ({"cron": "* * * * *"}, "/job"),
                 ({"cron": "* * * * *", "job": "test.noop"}, "/job"),
                 ({"cron": "* * * * *", "job": {}}, "/job/type"),
                 ({"cron": "* * * * *", "job": {"type": "no.such.type"}}, "/job/type"),
                 ({"cron": "* * * * *", "job": {"type": "test.sleep", "payload": {}}},
                  "/job/payload/ms"),
                 ({"cron": "* * * * *", "job": {"type": "test.noop", "priority": 10}},
                  "/job/priority"),
                 ({"cron": "* * * * *", "job": {"type": "test.noop", "max_attempts": 0}},
                  "/job/max_attempts"),
                 ({"cron": "* * * * *", "job": {"type": "test.noop", "timeout_s": 0}},
                  "/job/timeout_s"),
                 ({"cron": "* * * * *", "job": {"type": "test.noop", "unique_key": ""}},
                  "/job/unique_key"),
                 ({"cron": "* * * * *", "job": job, "enabled": "yes"}, "/enabled"))
        for body, pointer in cases:
            with self.subTest(body=body):
                self.assertPointer(self.call("PUT", SCHEDULES + "/checked", body, token=owner),
                                   pointer)
        for body in ({"cron": "* * * * *", "job": job, "colour": "red"},
                     {"cron": "* * * * *", "job": {"type": "test.noop", "delay_s": 5}},
                     {"cron": "* * * * *", "job": {"type": "test.noop", "run_at": iso(now())}}):
            with self.subTest(body=body):
                self.assertProblem(self.call("PUT", SCHEDULES + "/checked", body, token=owner),
                                   400, "validation-failed")
        valid = {"cron": "0 0 1 1 *", "job": job}
        for name in ("-starts-with-dash", ".dot", "has space", "x" * 101, "ünïcode"):
            with self.subTest(name=name):
                r = self.call("PUT", SCHEDULES + "/" + urllib.parse.quote(name, safe=""), valid,
                              token=owner)
                self.assertPointer(r, "/name")
        self.assertEqual(self.schedules(owner)["data"], [], "a refused schedule was stored")
        longest = "x" * 100
        self.delete_schedule_later(owner, longest)
        self.assertEqual(self.put_schedule(owner, longest, valid)["name"], longest)

    def test_cron_forms_and_time_zones_give_next_run_at(self):
        _, owner = self.tenant_and_owner()
        ny = zoneinfo.ZoneInfo("America/New_York")
        weekday_quarter = lambda t: (t.weekday() < 5 and 9 <= t.hour <= 17  # noqa: E731
                                     and t.minute % 15 == 0)
        cases = (
            ("hourly", "@hourly", "UTC", lambda t: t.minute == 0, MINUTE),
            ("quarters", "*/15 9-17 * * MON-FRI", "UTC", weekday_quarter, MINUTE),
            ("list", "0,30 * * * *", "UTC", lambda t: t.minute in (0, 30), MINUTE),
            ("seconds", "30 * * * * *", "UTC", lambda t: t.second == 30, SECOND),
            ("new-year", "0 0 1 JAN *", "UTC", None, None),
            ("ny-nine", "0 9 * * *", "America/New_York",
             lambda t: (lambda l: (l.hour, l.minute) == (9, 0))(t.astimezone(ny)), MINUTE),
            ("berlin-weekly", "@weekly", "Europe/Berlin",
             lambda t: (lambda l: (l.weekday(), l.hour, l.minute) == (6, 0, 0))(
                 t.astimezone(zoneinfo.ZoneInfo("Europe/Berlin"))), MINUTE),
        )
        for name, cron, zone, matches, step in cases:
            with self.subTest(cron=cron, zone=zone):
                self.delete_schedule_later(owner, name)
                before = now()
                s = self.put_schedule(owner, name, {"cron": cron, "timezone": zone,
                                                    "job": {"type": "test.noop"}})
                after = now()
                self.assertEqual((s["cron"], s["timezone"]), (cron, zone))
                if matches is None:  # new year: too far for the brute force
                    expected = {iso(datetime.datetime(t.year + 1, 1, 1, tzinfo=UTC))
                                for t in (before, after)}
                else:
                    expected = {iso(next_match(before, matches, step)),
                                iso(next_match(after, matches, step))}
                self.assertIn(s["next_run_at"], expected, "%s in %s" % (cron, zone))
        # 09:00 in New York is 13:00Z in summer (EDT) and 14:00Z in winter (EST).
        s = self.schedules(owner)["data"]
        nine = [x for x in s if x["name"] == "ny-nine"][0]
        self.assertIn(nine["next_run_at"][11:], ("13:00:00.000Z", "14:00:00.000Z"))
        self.assertEqual(nine["next_run_at"], iso(local_daily(9, 0, "America/New_York",
                                                              ts(nine["updated_at"]))))
        for name, _, _, _, _ in cases:
            self.assertEqual(self.call("DELETE", SCHEDULES + "/" + name, token=owner).status, 204)

    def test_a_disabled_schedule_fires_nothing_until_enabled(self):
        _, owner = self.tenant_and_owner()
        self.delete_schedule_later(owner, "paused")
        s = self.put_schedule(owner, "paused", {"cron": "* * * * * *", "enabled": False,
                                                "job": {"type": "test.noop"}})
        self.assertEqual((s["enabled"], s["next_run_at"], s["last_run_at"]), (False, None, None))
        time.sleep(2.5)
        self.assertEqual(self.all_jobs(owner), [], "a disabled schedule fired")
        s = self.put_schedule(owner, "paused", {"cron": "* * * * * *",
                                                "job": {"type": "test.noop"}})
        self.assertIs(s["enabled"], True)
        self.assertIsNotNone(s["next_run_at"])
        self.assertLessEqual(seconds(iso(now()), s["next_run_at"]), 1.5)
        fired = poll(lambda: self.all_jobs(owner), timeout=5)
        self.assertTrue(fired, "the enabled every-second schedule did not fire")
        self.assertEqual({j["schedule"] for j in fired}, {"paused"})
        s = self.put_schedule(owner, "paused", {"cron": "* * * * * *", "enabled": False,
                                                "job": {"type": "test.noop"}})
        self.assertIsNone(s["next_run_at"])
        self.assertIsNotNone(s["last_run_at"])
        time.sleep(0.5)  # a firing in flight when it was disabled
        count = len(self.all_jobs(owner))
        time.sleep(2.0)
        self.assertEqual(len(self.all_jobs(owner)), count, "fired after it was disabled")

    def test_an_every_second_schedule_fires_once_per_due_second_across_two_servers(self):
        tenant, owner = self.tenant_and_owner()
        name = "tick"
        self.delete_schedule_later(owner, name)
        two = bool(os.environ.get("TROUPE_TEST_PG"))  # one database both servers share
        second = None
        if two:
            second = Server("--admin.token=" + self.srv.admin_token, *self.server_args)
            second.start()
            self.addCleanup(second.__exit__, None, None, None)
        start = now()
        self.put_schedule(owner, name, {"cron": "* * * * * *", "job": {"type": "test.noop"}})
        time.sleep(4.6)
        s = self.put_schedule(owner, name, {"cron": "* * * * * *", "enabled": False,
                                            "job": {"type": "test.noop"}})
        time.sleep(0.5)  # a firing in flight
        if second is not None:
            self.assertTrue(second.running(), "the second server died:\n" + second.logs())
            self.assertEqual(second.stop(signal.SIGTERM), 0)
        jobs = [j for j in self.all_jobs(owner, "type=test.noop") if j["schedule"] == name]
        firings = psql(self.srv, "SELECT to_char(due_at AT TIME ZONE 'UTC', "
                                 "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), job_id FROM "
                                 "schedule_firings WHERE tenant_id = '%s' AND schedule_name = "
                                 "'%s' ORDER BY due_at" % (tenant["id"], name))
        firings = [line.split("|") for line in firings]
        doubles = psql(self.srv, "SELECT due_at, count(*) FROM schedule_firings WHERE tenant_id "
                                 "= '%s' GROUP BY 1 HAVING count(*) > 1" % tenant["id"])
        print("schedules: %d firings and %d jobs in ~4.6 s with %d server(s)"
              % (len(firings), len(jobs), 2 if two else 1))
        self.assertEqual(doubles, [])
        self.assertTrue(3 <= len(firings) <= 6, firings)
        self.assertEqual(len(jobs), len(firings), (jobs, firings))
        self.assertEqual({j["id"] for j in jobs}, {f[1] for f in firings})
        due = [ts(f[0]) for f in firings]
        for d in due:
            self.assertEqual(d.microsecond, 0, due)
            self.assertGreaterEqual(d, start.replace(microsecond=0), due)
        # Once per due second, none skipped between the first and the last.
        self.assertEqual([(b - a).total_seconds() for a, b in zip(due, due[1:])],
                         [1.0] * (len(due) - 1), due)
        self.assertEqual(len({j["run_at"][:19] for j in jobs}), len(jobs), jobs)
        self.assertEqual(self.schedules(owner)["data"][0]["last_run_at"], iso(due[-1]))
        for j in jobs:
            self.wait_job(owner, j["id"], "succeeded", timeout=5)


class JobCrashTest(JobsMixin, unittest.TestCase):
    """Exactly-once effects across a crash: 10,000 queued test.noop jobs recording their effect
    through the idempotent helper; kill -9 while they run; a server started on the same
    database (the killed one's leases run out after 30 s) finishes them all, and job_effects
    has one row per job."""

    server_args = BASE_ARGS + ("--jobs.test-handlers=true", "--jobs.concurrency=16")
    TOTAL = 10000
    KILL_AFTER = 1000

    def count(self, server, tenant_id, where=""):
        return int(psql(server, "SELECT count(*) FROM jobs WHERE tenant_id = '%s'%s"
                        % (tenant_id, where))[0])

    def test_every_job_has_its_effect_exactly_once_after_a_kill_9(self):
        workdir = tempfile.TemporaryDirectory(prefix="troupe-e2e-jobcrash-")
        self.addCleanup(workdir.cleanup)
        os.chmod(workdir.name, 0o755)  # an embedded PostgreSQL runs as the postgres user
        with Server(*self.server_args, cwd=workdir.name) as first:
            self.srv = first
            tenant = self.new_tenant()
            tid = tenant["id"]
            t0 = time.monotonic()
            insert = ("INSERT INTO jobs (tenant_id, id, type, state, payload, run_at, next_at) "
                      "SELECT '{tid}', {uuid}, 'test.noop', 'available', '{{\"once\": true}}', "
                      "now(), now() FROM generate_series(1, {total}); "
                      "INSERT INTO job_queue (tenant_id, due_at) VALUES ('{tid}', now()) "
                      "ON CONFLICT (tenant_id) DO UPDATE SET due_at = now()")
            psql(first, insert.format(tid=tid, uuid=UUID7_SQL, total=self.TOTAL))
            inserted = time.monotonic() - t0
            done = poll(lambda: self.count(first, tid, " AND state = 'succeeded'")
                        >= self.KILL_AFTER, timeout=60, interval=0.02)
            self.assertTrue(done, "fewer than %d jobs succeeded within 60 s:\n%s"
                            % (self.KILL_AFTER, first.logs()[-3000:]))
            first.kill()  # SIGKILL
            at_kill = self.count(first, tid, " AND state = 'succeeded'")
            running = self.count(first, tid, " AND state = 'running'")
            effects_at_kill = int(psql(first, "SELECT count(*) FROM job_effects WHERE tenant_id "
                                              "= '%s'" % tid)[0])
        self.assertLess(at_kill, self.TOTAL, "every job had finished before the kill: the "
                                             "crash tested nothing (raise TOTAL)")
        t1 = time.monotonic()
        again = Server("--admin.token=" + first.admin_token, *self.server_args, cwd=workdir.name)
        again.admin_token = first.admin_token
        with again:
            self.srv = again
            finished = poll(lambda: self.count(again, tid, " AND state = 'succeeded'")
                            >= self.TOTAL, timeout=90, interval=0.5)
            took = time.monotonic() - t1
            states = psql(again, "SELECT state, count(*) FROM jobs WHERE tenant_id = '%s' "
                                 "GROUP BY 1 ORDER BY 1" % tid)
            self.assertTrue(finished, "not all %d jobs succeeded within 90 s of the restart: %s"
                            % (self.TOTAL, states))
            self.assertEqual(states, ["succeeded|%d" % self.TOTAL])
            effects = int(psql(again, "SELECT count(*) FROM job_effects WHERE tenant_id = '%s'"
                                      % tid)[0])
            rerun = self.count(again, tid, " AND attempt > 1")
            print("job crash: %d jobs inserted in %.2f s; kill -9 with %d succeeded, %d running "
                  "and %d effects recorded; after the restart all succeeded in %.1f s; "
                  "job_effects %d; %d jobs ran more than one attempt"
                  % (self.TOTAL, inserted, at_kill, running, effects_at_kill, took, effects,
                     rerun))
            self.assertEqual(effects, self.TOTAL)
            self.assertEqual(int(psql(again, "SELECT count(DISTINCT job_id) FROM job_effects "
                                             "WHERE tenant_id = '%s'" % tid)[0]), self.TOTAL)
            # A job held by the killed server shows the lost attempt (started_at null).
            if rerun:
                job_id = psql(again, "SELECT id FROM jobs WHERE tenant_id = '%s' AND attempt > 1 "
                                     "LIMIT 1" % tid)[0]
                r = self.admin("GET", "%s/%s" % (JOBS, job_id), tenant=tenant["slug"])
                self.assertEqual(r.status, 200, r.body)
                attempts = r.body["attempts"]
                self.assertEqual(len(attempts), r.body["attempt"], r.body)
                self.assertEqual([a["n"] for a in attempts], list(range(1, len(attempts) + 1)))
                self.assertIsNone(attempts[-1]["error"], r.body)
                self.assertIsNotNone(attempts[-1]["started_at"], r.body)
                lost = [a for a in attempts[:-1] if a["started_at"] is None]
                self.assertTrue(lost, "no lost attempt recorded: %r" % attempts)
                for a in lost:
                    self.assertTrue(a["error"], a)
            self.assertEqual(again.stop(signal.SIGTERM), 0)


if __name__ == "__main__":
    unittest.main()
