#include "storage/jobs.hpp"

#include "protocol/cron.hpp"
#include "protocol/error.hpp"
#include "protocol/request_id.hpp"
#include "protocol/zoneinfo.hpp"
#include "storage/rows.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <map>

namespace troupe::storage {

namespace {

using json = nlohmann::json;

#define TROUPE_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define TROUPE_MS(param) "to_timestamp(" param "::bigint / 1000.0)"
#define TROUPE_JOB_STATE                                                                           \
  "CASE WHEN state = 'scheduled' AND run_at <= now() THEN 'available' ELSE state END"
#define TROUPE_UNFINISHED "state IN ('scheduled', 'available', 'running', 'retrying')"
#define TROUPE_JOB_COLUMNS                                                                         \
  "id::text, type, " TROUPE_JOB_STATE ", payload::text, priority, attempt, max_attempts, "         \
  "timeout_s, " TROUPE_TS("run_at") ", " TROUPE_TS("created_at") ", " TROUPE_TS(                   \
    "finished_at") ", result::text, last_error, unique_key, schedule_name, cancel_requested, "     \
                   "attempts::text"

constexpr pg_statement insert_job_sql{
  "job_insert",
  "INSERT INTO jobs (tenant_id, id, type, state, payload, priority, max_attempts, timeout_s, "
  "run_at, next_at, unique_key, traceparent, schedule_name) SELECT troupe_current_tenant(), "
  "$1::uuid, $2, CASE WHEN r.at > now() THEN 'scheduled' ELSE 'available' END, $3::jsonb, "
  "$4::smallint, $5::int, $6::int, r.at, r.at, $8, nullif($9, ''), nullif($10, '') FROM (SELECT "
  "coalesce(" TROUPE_MS("$7") ", now()) AS at) r ON CONFLICT (tenant_id, unique_key) WHERE "
                              "unique_key IS NOT NULL AND " TROUPE_UNFINISHED
                              " DO NOTHING RETURNING " TROUPE_JOB_COLUMNS};
constexpr pg_statement insert_jobs_sql{
  "job_insert_many",
  "INSERT INTO jobs (tenant_id, id, type, state, payload, priority, max_attempts, timeout_s, "
  "run_at, next_at, traceparent) SELECT troupe_current_tenant(), r.id, r.type, CASE WHEN r.at > "
  "now() THEN 'scheduled' ELSE 'available' END, r.payload, r.priority, r.max_attempts, "
  "r.timeout_s, r.at, r.at, nullif($2, '') FROM (SELECT j.id, j.type, j.payload, j.priority, "
  "j.max_attempts, j.timeout_s, coalesce(" TROUPE_MS(
    "j.run_at_ms") ", now()) AS at, j.n FROM "
                   "jsonb_to_recordset($1::jsonb) AS j(id uuid, type text, payload jsonb, priority "
                   "smallint, "
                   "max_attempts int, timeout_s int, run_at_ms bigint, n int)) r ORDER BY r.n "
                   "RETURNING " TROUPE_JOB_COLUMNS};
constexpr pg_statement notify_sql{
  "job_notify", "SELECT pg_notify('troupe_jobs', $1 || ' ' || troupe_current_tenant()::text)"};
constexpr pg_statement unfinished_by_key_sql{
  "job_by_key",
  "SELECT " TROUPE_JOB_COLUMNS " FROM jobs WHERE unique_key = $1 AND " TROUPE_UNFINISHED};
constexpr pg_statement job_sql{"job_get",
                               "SELECT " TROUPE_JOB_COLUMNS " FROM jobs WHERE id = $1::uuid"};
constexpr pg_statement job_lock_sql{"job_get_lock", "SELECT " TROUPE_JOB_COLUMNS
                                                    " FROM jobs WHERE id = $1::uuid FOR UPDATE"};
constexpr pg_statement jobs_sql{
  "job_list",
  "SELECT " TROUPE_JOB_COLUMNS " FROM jobs WHERE ($1 = '' OR " TROUPE_JOB_STATE " = $1) AND ($2 = "
  "'' OR type = $2) AND id < coalesce(nullif($3, '')::uuid, "
  "'ffffffff-ffff-ffff-ffff-ffffffffffff') ORDER BY id DESC LIMIT $4::int"};
constexpr pg_statement cancel_waiting_sql{
  "job_cancel_waiting",
  "UPDATE jobs SET state = 'cancelled', finished_at = now(), next_at = NULL, last_error = "
  "coalesce(last_error, 'cancelled') WHERE id = $1::uuid AND state IN ('scheduled', "
  "'available', 'retrying') RETURNING " TROUPE_JOB_COLUMNS};
constexpr pg_statement cancel_running_sql{
  "job_cancel_running", "UPDATE jobs SET cancel_requested = true WHERE id = $1::uuid AND state = "
                        "'running' RETURNING " TROUPE_JOB_COLUMNS};
constexpr pg_statement retry_sql{
  "job_retry",
  "UPDATE jobs SET state = 'available', run_at = now(), next_at = now(), finished_at = NULL, "
  "cancel_requested = false, max_attempts = GREATEST(max_attempts, least(attempt + 1, 100)) "
  "WHERE id = $1::uuid AND state IN ('discarded', 'cancelled') RETURNING " TROUPE_JOB_COLUMNS};

// -- the queue of due tenants
constexpr pg_statement queue_peek_sql{
  "job_queue_peek",
  "SELECT (extract(epoch FROM due_at) * 1000)::bigint FROM job_queue WHERE tenant_id = "
  "troupe_current_tenant() FOR KEY SHARE"};
constexpr pg_statement queue_at_sql{
  "job_queue_at", "INSERT INTO job_queue (tenant_id, due_at) VALUES (troupe_current_tenant(), "
                  "" TROUPE_MS("$1") ") ON CONFLICT (tenant_id) DO UPDATE SET due_at = "
                                     "LEAST(job_queue.due_at, EXCLUDED.due_at)"};
constexpr pg_statement queue_lock_sql{
  "job_queue_lock", "SELECT 1 FROM job_queue WHERE tenant_id = troupe_current_tenant() FOR UPDATE"};
// The earliest next_at per priority (ten probes of jobs_due), and the earliest firing.
constexpr pg_statement next_due_sql{
  "job_next_due",
  "SELECT (extract(epoch FROM LEAST((SELECT min(m) FROM (SELECT (SELECT next_at FROM jobs WHERE "
  "tenant_id = troupe_current_tenant() AND priority = p AND next_at IS NOT NULL ORDER BY next_at "
  "LIMIT 1) AS m FROM generate_series(0, 9) AS p) x), (SELECT min(next_run_at) FROM schedules "
  "WHERE next_run_at IS NOT NULL))) * 1000)::bigint"};
constexpr pg_statement queue_set_sql{
  "job_queue_set", "UPDATE job_queue SET due_at = " TROUPE_MS("$1") " WHERE tenant_id = "
                                                                    "troupe_current_tenant()"};
constexpr pg_statement unqueue_sql{
  "job_queue_delete", "DELETE FROM job_queue WHERE tenant_id = troupe_current_tenant()"};
constexpr pg_statement due_tenants_sql{
  "job_due_tenants",
  "SELECT tenant_id::text, (extract(epoch FROM due_at) * 1000)::bigint, due_at <= now() FROM "
  "job_queue ORDER BY due_at LIMIT $1::int"};

// -- claims, heartbeats, outcomes
// A claim moves next_at to the lease's end: a running job needs a look only if its heartbeats
// stop. A job claimed again after its lease ran out gets that lost attempt in its history.
constexpr pg_statement claim_sql{
  "job_claim",
  "WITH due AS (SELECT id, next_at AS due_at FROM jobs WHERE tenant_id = troupe_current_tenant() "
  "AND next_at <= now() ORDER BY priority, next_at, id LIMIT $1::int FOR UPDATE SKIP LOCKED), "
  "claimed AS (UPDATE jobs j SET state = 'running', attempt = j.attempt + 1, next_at = now() + "
  "make_interval(secs => $2::bigint), leased_by = $3, attempts = CASE WHEN j.state = 'running' "
  "THEN j.attempts || jsonb_build_array(jsonb_build_object('n', j.attempt, 'started_at', NULL, "
  "'finished_at', " TROUPE_TS(
    "now()") ", 'error', 'lease expired: the node running it "
             "stopped')) ELSE j.attempts END, last_error = CASE WHEN j.state = 'running' THEN "
             "'lease "
             "expired: the node running it stopped' ELSE j.last_error END FROM due WHERE "
             "j.tenant_id = "
             "troupe_current_tenant() AND j.id = due.id RETURNING j.id, j.type, j.payload, "
             "j.attempt, "
             "j.max_attempts, j.timeout_s, j.traceparent, j.cancel_requested, j.priority, "
             "due.due_at) "
             "SELECT id::text, type, payload::text, attempt, max_attempts, timeout_s, "
             "coalesce(traceparent, "
             "''), cancel_requested, priority FROM claimed ORDER BY priority, due_at, id"};
constexpr pg_statement heartbeat_sql{
  "job_heartbeat",
  "UPDATE jobs SET next_at = now() + make_interval(secs => $2::bigint) WHERE tenant_id = "
  "troupe_current_tenant() AND id = ANY($1::uuid[]) AND leased_by = $3 AND state = 'running' "
  "RETURNING id::text, cancel_requested"};
#define TROUPE_FINAL                                                                               \
  "(CASE WHEN j.cancel_requested AND r.state <> 'succeeded' THEN 'cancelled' ELSE r.state END)"
constexpr pg_statement record_sql{
  "job_record",
  "UPDATE jobs j SET state = " TROUPE_FINAL ", result = CASE WHEN r.state = 'succeeded' THEN "
  "r.result END, last_error = CASE WHEN r.state = 'succeeded' THEN j.last_error ELSE r.error END, "
  "finished_at = CASE WHEN " TROUPE_FINAL " = 'retrying' THEN NULL ELSE now() END, run_at = CASE "
  "WHEN " TROUPE_FINAL " = 'retrying' THEN " TROUPE_MS(
    "r.retry_ms") " ELSE j.run_at END, "
                  "next_at = CASE WHEN " TROUPE_FINAL " = 'retrying' THEN " TROUPE_MS(
                    "r.retry_ms") " END, "
                                  "leased_by = NULL, attempts = j.attempts || "
                                  "jsonb_build_array(jsonb_build_object('n', r.n, "
                                  "'started_at', " TROUPE_TS(
                                    TROUPE_MS("r.s")) ", "
                                                      "'finished_at',"
                                                      " " TROUPE_TS(TROUPE_MS("r.f")) ", "
                                                                                      "'error'"
                                                                                      ", "
                                                                                      "r."
                                                                                      "error))"
                                                                                      " FROM "
                                                                                      "jsonb_"
                                                                                      "to_"
                                                                                      "records"
                                                                                      "et($1::"
                                                                                      "jsonb) "
                                                                                      "AS "
                                                                                      "r(id "
                                                                                      "uuid, "
                                                                                      "n int, "
                                                                                      "state "
                                                                                      "text, "
                                                                                      "result "
                                                                                      "jsonb, "
                                                                                      "error "
                                                                                      "text, "
                                                                                      "s "
                                                                                      "bigint,"
                                                                                      " f "
                                                                                      "bigint,"
                                                                                      " retry_"
                                                                                      "ms "
                                                                                      "bigint)"
                                                                                      " WHERE "
                                                                                      "j."
                                                                                      "tenant_"
                                                                                      "id = "
                                                                                      "troupe_"
                                                                                      "current"
                                                                                      "_tenant"
                                                                                      "() AND "
                                                                                      "j.id = "
                                                                                      "r.id "
                                                                                      "AND "
                                                                                      "j."
                                                                                      "leased_"
                                                                                      "by = "
                                                                                      "$2 AND "
                                                                                      "j."
                                                                                      "state "
                                                                                      "= "
                                                                                      "'runnin"
                                                                                      "g' AND "
                                                                                      "j."
                                                                                      "attempt"
                                                                                      " = r.n "
                                                                                      "RETURNI"
                                                                                      "NG "
                                                                                      "j.id::"
                                                                                      "text, "
                                                                                      "j."
                                                                                      "state"};
constexpr pg_statement release_sql{
  "job_release",
  "UPDATE jobs SET state = 'available', attempt = attempt - 1, next_at = now(), leased_by = NULL "
  "WHERE tenant_id = troupe_current_tenant() AND id = ANY($1::uuid[]) AND leased_by = $2 AND "
  "state = 'running'"};

// -- schedules
#define TROUPE_SCHEDULE_COLUMNS                                                                    \
  "name, cron, timezone, job::text, enabled, " TROUPE_TS("next_run_at") ", " TROUPE_TS(            \
    "last_run_at") ", " TROUPE_TS("created_at") ", " TROUPE_TS("updated_at")
constexpr pg_statement schedules_sql{"job_schedules",
                                     "SELECT " TROUPE_SCHEDULE_COLUMNS
                                     " FROM schedules WHERE name > $1 ORDER BY name LIMIT $2::int"};
constexpr pg_statement schedule_sql{"job_schedule", "SELECT " TROUPE_SCHEDULE_COLUMNS
                                                    " FROM schedules WHERE name = $1 FOR UPDATE"};
constexpr pg_statement put_schedule_sql{
  "job_schedule_put",
  "INSERT INTO schedules (tenant_id, name, cron, timezone, job, enabled, next_run_at) VALUES "
  "(troupe_current_tenant(), $1, $2, $3, $4::jsonb, $5::boolean, " TROUPE_MS(
    "$6") ") ON CONFLICT (tenant_id, name) DO UPDATE SET cron = EXCLUDED.cron, timezone = "
          "EXCLUDED.timezone, job = EXCLUDED.job, enabled = EXCLUDED.enabled, next_run_at = "
          "EXCLUDED.next_run_at, updated_at = now() RETURNING " TROUPE_SCHEDULE_COLUMNS};
constexpr pg_statement delete_schedule_sql{
  "job_schedule_delete",
  "DELETE FROM schedules WHERE name = $1 RETURNING " TROUPE_SCHEDULE_COLUMNS};
constexpr pg_statement due_schedules_sql{
  "job_due_schedules",
  "SELECT name, cron, timezone, job::text, (extract(epoch FROM next_run_at) * 1000)::bigint "
  "FROM schedules WHERE tenant_id = troupe_current_tenant() AND next_run_at <= now() AND enabled "
  "ORDER BY next_run_at LIMIT 100 FOR UPDATE SKIP LOCKED"};
constexpr pg_statement firing_sql{
  "job_firing",
  "INSERT INTO schedule_firings (tenant_id, schedule_name, due_at, job_id) VALUES "
  "(troupe_current_tenant(), $1, " TROUPE_MS("$2") ", $3::uuid) ON CONFLICT DO NOTHING RETURNING "
                                                   "" TROUPE_TS("due_at")};
constexpr pg_statement fired_sql{"job_fired",
                                 "UPDATE schedules SET next_run_at = " TROUPE_MS(
                                   "$2") ", last_run_at = " TROUPE_MS("$3") " WHERE name = $1"};
constexpr pg_statement forget_firings_sql{
  "job_forget_firings",
  "DELETE FROM schedule_firings WHERE schedule_name = $1 AND due_at < now() - interval '30 days'"};

// -- effects
constexpr pg_statement effect_claim_sql{
  "job_effect_claim",
  "INSERT INTO job_effects (tenant_id, job_id, key) VALUES (troupe_current_tenant(), $1::uuid, "
  "$2) ON CONFLICT DO NOTHING RETURNING 1"};
constexpr pg_statement effect_result_sql{
  "job_effect_result", "SELECT coalesce(result::text, 'null') FROM job_effects WHERE job_id = "
                       "$1::uuid AND key = $2"};
constexpr pg_statement effect_done_sql{
  "job_effect_done",
  "UPDATE job_effects SET result = $3::jsonb WHERE job_id = $1::uuid AND key = $2"};

#undef TROUPE_FINAL
#undef TROUPE_SCHEDULE_COLUMNS
#undef TROUPE_JOB_COLUMNS
#undef TROUPE_UNFINISHED
#undef TROUPE_JOB_STATE
#undef TROUPE_MS
#undef TROUPE_TS

std::int32_t int_cell(const pg_rows& rows, int r, int c) {
  return rows.is_null(r, c) ? 0 : std::stoi(std::string{rows.get(r, c)});
}

std::int64_t long_cell(const pg_rows& rows, int r, int c) {
  return rows.is_null(r, c) ? 0 : std::stoll(std::string{rows.get(r, c)});
}

job_row to_job(const pg_rows& rows, int r) {
  job_row j;
  j.id = rows.get(r, 0);
  j.type = rows.get(r, 1);
  j.state = rows.get(r, 2);
  j.payload = rows.get(r, 3);
  j.priority = int_cell(rows, r, 4);
  j.attempt = int_cell(rows, r, 5);
  j.max_attempts = int_cell(rows, r, 6);
  j.timeout_s = int_cell(rows, r, 7);
  j.run_at = rows.get(r, 8);
  j.created_at = rows.get(r, 9);
  j.finished_at = rows.optional(r, 10);
  j.result = rows.optional(r, 11);
  j.last_error = rows.optional(r, 12);
  j.unique_key = rows.optional(r, 13);
  j.schedule_name = rows.optional(r, 14);
  j.cancel_requested = rows.get(r, 15) == "t";
  j.attempts = rows.get(r, 16);
  return j;
}

schedule_row to_schedule(const pg_rows& rows, int r) {
  schedule_row s;
  s.name = rows.get(r, 0);
  s.cron = rows.get(r, 1);
  s.timezone = rows.get(r, 2);
  s.job = rows.get(r, 3);
  s.enabled = rows.get(r, 4) == "t";
  s.next_run_at = rows.optional(r, 5);
  s.last_run_at = rows.optional(r, 6);
  s.created_at = rows.get(r, 7);
  s.updated_at = rows.get(r, 8);
  return s;
}

std::string uuid_list(const std::vector<std::string>& ids) {
  std::string out = "{";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    out += ids[i];
  }
  return out + "}";
}

pg_params job_params(const new_job& job, const std::string& id) {
  return {id,
          job.type,
          job.payload,
          std::to_string(job.priority),
          std::to_string(job.max_attempts),
          std::to_string(job.timeout_s),
          job.run_at_ms ? std::optional<std::string>{std::to_string(*job.run_at_ms)} : std::nullopt,
          job.unique_key,
          job.traceparent,
          job.schedule_name};
}

// A schedule's job template (validated when the schedule was stored) as a job to enqueue.
new_job job_of_schedule(const std::string& name, const std::string& template_json) {
  new_job job;
  auto t = json::parse(template_json, nullptr, false);
  if (t.is_object()) {
    job.type = t.value("type", std::string{});
    job.payload = t.value("payload", json::object()).dump();
    job.priority = t.value("priority", 5);
    job.max_attempts = t.value("max_attempts", 5);
    job.timeout_s = t.value("timeout_s", 300);
    if (auto key = t.find("unique_key"); key != t.end() && key->is_string()) {
      job.unique_key = key->get<std::string>();
    }
  }
  job.schedule_name = name;
  return job;
}

} // namespace

json job_json(const job_row& j, bool with_attempts) {
  auto parsed = [](const std::optional<std::string>& text) {
    if (!text) {
      return json(nullptr);
    }
    auto v = json::parse(*text, nullptr, false);
    return v.is_discarded() ? json(nullptr) : v;
  };
  json out{{"id", j.id},
           {"type", j.type},
           {"state", j.state},
           {"payload", parsed(j.payload)},
           {"priority", j.priority},
           {"attempt", j.attempt},
           {"max_attempts", j.max_attempts},
           {"timeout_s", j.timeout_s},
           {"run_at", j.run_at},
           {"created_at", j.created_at},
           {"finished_at", j.finished_at ? json(*j.finished_at) : json(nullptr)},
           {"result", parsed(j.result)},
           {"last_error", j.last_error ? json(*j.last_error) : json(nullptr)},
           {"unique_key", j.unique_key ? json(*j.unique_key) : json(nullptr)},
           {"schedule", j.schedule_name ? json(*j.schedule_name) : json(nullptr)},
           {"cancel_requested", j.cancel_requested}};
  if (with_attempts) {
    auto attempts = json::parse(j.attempts, nullptr, false);
    out["attempts"] = attempts.is_array() ? attempts : json::array();
  }
  return out;
}

std::int64_t unix_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

caf::error job_repository::queue_at(std::int64_t at_ms) {
  // A shared key lock: enqueuers do not wait for each other, and a claim (which locks the row
  // for update and may delete it) cannot decide the tenant is idle while this job is unseen.
  auto queued = tx_.execute(queue_peek_sql);
  if (!queued) {
    return std::move(queued.error());
  }
  if (queued->size() == 1 && long_cell(*queued, 0, 0) <= at_ms) {
    return {};
  }
  auto set = tx_.execute(queue_at_sql, {std::to_string(at_ms)});
  return set ? caf::error{} : std::move(set.error());
}

caf::expected<std::pair<job_row, bool>> job_repository::enqueue(const new_job& job) {
  const auto id = job.id.empty() ? protocol::new_uuid_v7() : job.id;
  // Twice at most: the unfinished job holding the key may finish between the two statements.
  for (int round = 0; round < 2; ++round) {
    auto inserted = tx_.execute(insert_job_sql, job_params(job, id));
    if (!inserted) {
      return std::move(inserted.error());
    }
    if (inserted->size() == 1) {
      auto row = to_job(*inserted, 0);
      if (auto err = queue_at(job.run_at_ms.value_or(unix_now_ms()))) {
        return err;
      }
      return std::make_pair(std::move(row), true);
    }
    auto existing = tx_.execute(unfinished_by_key_sql, {job.unique_key.value_or("")});
    if (!existing) {
      return std::move(existing.error());
    }
    if (existing->size() == 1) {
      return std::make_pair(to_job(*existing, 0), false);
    }
  }
  return caf::make_error(protocol::errc::conflict, "unique_key contended");
}

caf::expected<std::vector<std::pair<job_row, bool>>>
job_repository::enqueue_many(const std::vector<new_job>& jobs) {
  std::vector<std::pair<job_row, bool>> out(jobs.size());
  json plain = json::array();
  std::vector<std::size_t> plain_index;
  std::int64_t soonest = 0;
  const auto now = unix_now_ms();
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const auto& job = jobs[i];
    if (job.unique_key) {
      auto one = enqueue(job);
      if (!one) {
        return std::move(one.error());
      }
      out[i] = std::move(*one);
      continue;
    }
    const auto id = job.id.empty() ? protocol::new_uuid_v7() : job.id;
    json row{{"id", id},
             {"type", job.type},
             {"payload", json::parse(job.payload, nullptr, false)},
             {"priority", job.priority},
             {"max_attempts", job.max_attempts},
             {"timeout_s", job.timeout_s},
             {"run_at_ms", job.run_at_ms ? json(*job.run_at_ms) : json(nullptr)},
             {"n", plain_index.size()}};
    if (row["payload"].is_discarded()) {
      row["payload"] = json::object();
    }
    plain.push_back(std::move(row));
    plain_index.push_back(i);
    const auto at = job.run_at_ms.value_or(now);
    soonest = soonest == 0 ? at : std::min(soonest, at);
  }
  if (plain_index.empty()) {
    return out;
  }
  auto rows = tx_.execute(insert_jobs_sql, {plain.dump(), jobs.front().traceparent});
  if (!rows) {
    return std::move(rows.error());
  }
  // RETURNING follows the order of the rows inserted, which follow `n`.
  std::map<std::string, job_row> by_id;
  for (int r = 0; r < rows->size(); ++r) {
    auto row = to_job(*rows, r);
    by_id.emplace(row.id, std::move(row));
  }
  for (std::size_t k = 0; k < plain_index.size(); ++k) {
    auto found = by_id.find(plain[k]["id"].get<std::string>());
    if (found == by_id.end()) {
      return caf::make_error(protocol::errc::internal, "a batch job was not inserted");
    }
    out[plain_index[k]] = {std::move(found->second), true};
  }
  if (auto err = queue_at(soonest)) {
    return err;
  }
  return out;
}

caf::error job_repository::notify_due(const std::string& token) {
  auto sent = tx_.execute(notify_sql, {token});
  return sent ? caf::error{} : std::move(sent.error());
}

caf::expected<std::optional<job_row>> job_repository::job(const std::string& id, bool for_update) {
  return first_row<job_row>(tx_.execute(for_update ? job_lock_sql : job_sql, {id}), to_job);
}

caf::expected<std::vector<job_row>> job_repository::jobs(const std::string& state,
                                                         const std::string& type,
                                                         const std::string& before,
                                                         std::uint32_t limit) {
  return all_rows<job_row>(tx_.execute(jobs_sql, {state, type, before, std::to_string(limit)}),
                           to_job);
}

caf::expected<std::optional<job_row>> job_repository::cancel(const std::string& id) {
  auto current = job(id, true);
  if (!current || !*current) {
    return current;
  }
  const auto& state = (*current)->state;
  if (state == "succeeded" || state == "discarded" || state == "cancelled") {
    return caf::make_error(protocol::errc::conflict, "the job has finished (" + state + ")");
  }
  return first_row<job_row>(
    tx_.execute(state == "running" ? cancel_running_sql : cancel_waiting_sql, {id}), to_job);
}

caf::expected<std::optional<job_row>> job_repository::retry(const std::string& id) {
  auto current = job(id, true);
  if (!current || !*current) {
    return current;
  }
  const auto& state = (*current)->state;
  if (state != "discarded" && state != "cancelled") {
    return caf::make_error(protocol::errc::conflict,
                           "only a discarded or cancelled job can be retried (this one is " + state
                             + ")");
  }
  auto row = first_row<job_row>(tx_.execute(retry_sql, {id}), to_job);
  if (row && *row) {
    if (auto err = queue_at(unix_now_ms())) {
      return err;
    }
  }
  return row;
}

caf::expected<std::pair<std::vector<claimed_job>, std::vector<fired_schedule>>>
job_repository::claim(std::uint32_t limit, std::int64_t lease_s, const std::string& instance,
                      bool settle_queue) {
  std::vector<fired_schedule> fired;
  auto due = tx_.execute(due_schedules_sql);
  if (!due) {
    return std::move(due.error());
  }
  const auto now_ms = unix_now_ms();
  for (int r = 0; r < due->size(); ++r) {
    const std::string name{due->get(r, 0)};
    const auto due_ms = long_cell(*due, r, 4);
    // At most one firing per schedule per round: after downtime the missed due times collapse
    // into this one (docs/jobs.md "Catch-up").
    std::optional<std::int64_t> next_s;
    std::string error;
    auto expr = protocol::cron::parse(due->get(r, 1), &error);
    auto zone = protocol::zoneinfo::cached(due->get(r, 2), &error);
    if (expr && zone) {
      next_s = protocol::cron::next(*expr, *zone, std::max(now_ms, due_ms) / 1000);
    }
    auto job = job_of_schedule(name, std::string{due->get(r, 3)});
    const auto job_id = protocol::new_uuid_v7();
    auto firing = tx_.execute(firing_sql, {name, std::to_string(due_ms), job_id});
    if (!firing) {
      return std::move(firing.error());
    }
    if (firing->size() == 1 && !job.type.empty()) {
      job.id = job_id;
      auto enqueued = enqueue(job);
      if (!enqueued) {
        return std::move(enqueued.error());
      }
      fired.push_back({name, std::string{firing->get(0, 0)}, enqueued->first.id});
    }
    auto moved = tx_.execute(
      fired_sql,
      {name, next_s ? std::optional<std::string>{std::to_string(*next_s * 1000)} : std::nullopt,
       std::to_string(due_ms)});
    if (!moved) {
      return std::move(moved.error());
    }
    if (auto forgot = tx_.execute(forget_firings_sql, {name}); !forgot) {
      return std::move(forgot.error());
    }
  }
  std::vector<claimed_job> out;
  if (limit > 0) {
    auto rows = tx_.execute(claim_sql, {std::to_string(limit), std::to_string(lease_s), instance});
    if (!rows) {
      return std::move(rows.error());
    }
    out.reserve(static_cast<std::size_t>(rows->size()));
    for (int r = 0; r < rows->size(); ++r) {
      claimed_job c;
      c.tenant_id = tx_.tenant().value_or("");
      c.id = rows->get(r, 0);
      c.type = rows->get(r, 1);
      c.payload = rows->get(r, 2);
      c.attempt = int_cell(*rows, r, 3);
      c.max_attempts = int_cell(*rows, r, 4);
      c.timeout_s = int_cell(*rows, r, 5);
      c.traceparent = rows->get(r, 6);
      c.cancel_requested = rows->get(r, 7) == "t";
      c.priority = int_cell(*rows, r, 8);
      out.push_back(std::move(c));
    }
  }
  // Only a claim that emptied the tenant's due work touches its queue row, and it locks the
  // row before it looks for the next due time: an enqueue that holds the row's key-share lock
  // commits first and is seen; a later one finds the row gone or moved and writes it again.
  // Busy claims never touch the row, so they never make enqueuers wait.
  if (settle_queue && (out.size() < limit || limit == 0)) {
    if (auto locked = tx_.execute(queue_lock_sql); !locked) {
      return std::move(locked.error());
    }
    auto next = tx_.execute(next_due_sql);
    if (!next) {
      return std::move(next.error());
    }
    auto queued = next->is_null(0, 0) ? tx_.execute(unqueue_sql)
                                      : tx_.execute(queue_set_sql, {std::string{next->get(0, 0)}});
    if (!queued) {
      return std::move(queued.error());
    }
  }
  return std::make_pair(std::move(out), std::move(fired));
}

caf::expected<std::vector<std::pair<std::string, bool>>>
job_repository::heartbeat(const std::vector<std::string>& ids, std::int64_t lease_s,
                          const std::string& instance) {
  return all_rows<std::pair<std::string, bool>>(
    tx_.execute(heartbeat_sql, {uuid_list(ids), std::to_string(lease_s), instance}),
    [](const pg_rows& rows, int r) {
      return std::make_pair(std::string{rows.get(r, 0)}, rows.get(r, 1) == "t");
    });
}

caf::expected<std::vector<recorded_job>>
job_repository::record(const std::vector<job_outcome>& outcomes, const std::string& instance) {
  json batch = json::array();
  std::int64_t earliest_retry = 0;
  for (const auto& o : outcomes) {
    json row{{"id", o.id},        {"n", o.n},           {"state", o.state},
             {"s", o.started_ms}, {"f", o.finished_ms}, {"retry_ms", o.retry_at_ms},
             {"error", nullptr},  {"result", nullptr}};
    if (!o.error.empty()) {
      row["error"] = o.error;
    }
    if (o.state == "succeeded" && !o.result.empty()) {
      row["result"] = json::parse(o.result, nullptr, false);
      if (row["result"].is_discarded()) {
        row["result"] = nullptr;
      }
    }
    if (o.state == "retrying" && (earliest_retry == 0 || o.retry_at_ms < earliest_retry)) {
      earliest_retry = o.retry_at_ms;
    }
    batch.push_back(std::move(row));
  }
  auto rows = all_rows<recorded_job>(
    tx_.execute(record_sql, {batch.dump(-1, ' ', false, json::error_handler_t::replace), instance}),
    [](const pg_rows& r, int i) {
      return recorded_job{std::string{r.get(i, 0)}, std::string{r.get(i, 1)}};
    });
  if (rows && earliest_retry > 0) {
    if (auto err = queue_at(earliest_retry)) {
      return err;
    }
  }
  return rows;
}

caf::expected<std::size_t> job_repository::release(const std::vector<std::string>& ids,
                                                   const std::string& instance) {
  auto released = tx_.execute(release_sql, {uuid_list(ids), instance});
  if (!released) {
    return std::move(released.error());
  }
  if (auto err = queue_at(unix_now_ms())) {
    return err;
  }
  return released->affected();
}

caf::expected<std::vector<schedule_row>> job_repository::schedules(const std::string& after,
                                                                   std::uint32_t limit) {
  return all_rows<schedule_row>(tx_.execute(schedules_sql, {after, std::to_string(limit)}),
                                to_schedule);
}

caf::expected<std::optional<schedule_row>> job_repository::schedule(const std::string& name) {
  return first_row<schedule_row>(tx_.execute(schedule_sql, {name}), to_schedule);
}

caf::expected<std::pair<schedule_row, std::optional<schedule_row>>>
job_repository::put_schedule(const schedule_fields& f) {
  auto before = schedule(f.name);
  if (!before) {
    return std::move(before.error());
  }
  auto after = tx_.execute(
    put_schedule_sql,
    {f.name, f.cron, f.timezone, f.job, std::string{f.enabled ? "true" : "false"},
     f.next_run_ms ? std::optional<std::string>{std::to_string(*f.next_run_ms)} : std::nullopt});
  if (!after) {
    return std::move(after.error());
  }
  if (f.enabled && f.next_run_ms) {
    if (auto err = queue_at(*f.next_run_ms)) {
      return err;
    }
  }
  return std::make_pair(to_schedule(*after, 0), std::move(*before));
}

caf::expected<std::optional<schedule_row>>
job_repository::delete_schedule(const std::string& name) {
  return first_row<schedule_row>(tx_.execute(delete_schedule_sql, {name}), to_schedule);
}

caf::expected<std::optional<std::string>> job_repository::effect_claim(const std::string& job_id,
                                                                       const std::string& key) {
  auto claimed = tx_.execute(effect_claim_sql, {job_id, key});
  if (!claimed) {
    return std::move(claimed.error());
  }
  if (claimed->size() == 1) {
    return std::optional<std::string>{};
  }
  auto stored = tx_.execute(effect_result_sql, {job_id, key});
  if (!stored) {
    return std::move(stored.error());
  }
  return std::optional<std::string>{stored->size() == 1 ? std::string{stored->get(0, 0)}
                                                        : std::string{"null"}};
}

caf::error job_repository::effect_done(const std::string& job_id, const std::string& key,
                                       const std::string& result_json) {
  auto done = tx_.execute(effect_done_sql, {job_id, key, result_json});
  return done ? caf::error{} : std::move(done.error());
}

caf::expected<job_queue_view> due_job_tenants(pg_transaction& tx, std::uint32_t limit) {
  auto rows = tx.execute(due_tenants_sql, {std::to_string(limit)});
  if (!rows) {
    return std::move(rows.error());
  }
  job_queue_view view;
  for (int r = 0; r < rows->size(); ++r) {
    if (rows->get(r, 2) == "t") {
      view.due.emplace_back(rows->get(r, 0));
    } else if (view.next_ms == 0) {
      view.next_ms = long_cell(*rows, r, 1);
    }
  }
  return view;
}

} // namespace troupe::storage
