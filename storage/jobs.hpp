#pragma once

// Jobs, schedules and the effects of the idempotent helper (storage/migrations/0008_jobs.sql,
// docs/jobs.md). Every method runs inside a transaction of one tenant (forced RLS), except
// `due_job_tenants`, which reads the queue of tenants with jobs or firings due.

#include "storage/db.hpp"

#include <caf/expected.hpp>
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace troupe::storage {

/// A job as the API shows it (API.md "Jobs and schedules").
struct job_row {
  std::string id;
  std::string type;
  std::string state;   ///< `scheduled` reads as `available` once run_at has passed
  std::string payload; ///< JSON text
  std::int32_t priority = 5;
  std::int32_t attempt = 0;
  std::int32_t max_attempts = 5;
  std::int32_t timeout_s = 300;
  std::string run_at;
  std::string created_at;
  std::optional<std::string> finished_at;
  std::optional<std::string> result; ///< JSON text
  std::optional<std::string> last_error;
  std::optional<std::string> unique_key;
  std::optional<std::string> schedule_name;
  bool cancel_requested = false;
  std::string attempts; ///< JSON text: [{"n","started_at","finished_at","error"}]
};

/// A job to enqueue.
struct new_job {
  std::string id; ///< empty: a new UUIDv7
  std::string type;
  std::string payload = "{}"; ///< JSON text
  std::int32_t priority = 5;
  std::int32_t max_attempts = 5;
  std::int32_t timeout_s = 300;
  std::optional<std::int64_t> run_at_ms; ///< nullopt: now
  std::optional<std::string> unique_key;
  std::string traceparent;
  std::string schedule_name;
};

/// A job claimed under a lease, with what running it needs.
struct claimed_job {
  std::string tenant_id;
  std::string id;
  std::string type;
  std::string payload;      ///< JSON text
  std::int32_t attempt = 1; ///< this attempt's number
  std::int32_t max_attempts = 5;
  std::int32_t timeout_s = 300;
  std::string traceparent;
  bool cancel_requested = false;
  std::int32_t priority = 5;
};

/// How one attempt ended, to be recorded.
struct job_outcome {
  std::string id;
  std::int32_t n = 0; ///< the attempt
  std::string state;  ///< succeeded, retrying, discarded or cancelled
  std::string result; ///< JSON text when succeeded (empty: null)
  std::string error;  ///< when it failed
  std::int64_t started_ms = 0;
  std::int64_t finished_ms = 0;
  std::int64_t retry_at_ms = 0; ///< when retrying
};

/// What recording outcomes changed: each job's final state (a cancel request turns a failure
/// into `cancelled`); outcomes of jobs no longer leased by the recorder are left out.
struct recorded_job {
  std::string id;
  std::string state;
};

struct schedule_row {
  std::string name;
  std::string cron;
  std::string timezone;
  std::string job; ///< JSON text: {"type","payload","priority","max_attempts","timeout_s",...}
  bool enabled = true;
  std::optional<std::string> next_run_at;
  std::optional<std::string> last_run_at;
  std::string created_at;
  std::string updated_at;
};

/// A schedule as it is to be stored; `next_run_ms` is its next due time (nullopt: none).
struct schedule_fields {
  std::string name;
  std::string cron;
  std::string timezone;
  std::string job; ///< JSON text
  bool enabled = true;
  std::optional<std::int64_t> next_run_ms;
};

/// What firing due schedules did.
struct fired_schedule {
  std::string name;
  std::string due_at;
  std::string job_id;
};

class job_repository {
public:
  explicit job_repository(pg_transaction& tx) : tx_(tx) {}

  /// Stores the job (state `scheduled` if run_at is in the future, else `available`) and marks
  /// the tenant due. With a unique key that an unfinished job holds: that job, and false.
  caf::expected<std::pair<job_row, bool>> enqueue(const new_job& job);

  /// `enqueue` for many jobs in one transaction (one INSERT for those without a unique key),
  /// in the order given.
  caf::expected<std::vector<std::pair<job_row, bool>>>
  enqueue_many(const std::vector<new_job>& jobs);

  caf::expected<std::optional<job_row>> job(const std::string& id, bool for_update = false);

  /// Tells the other nodes' dispatchers (LISTEN troupe_jobs) at COMMIT that this tenant has
  /// jobs due now; `token` marks this process's own notifications.
  caf::error notify_due(const std::string& token);

  /// Newest first; `state` and `type` filter when not empty; `before`: an id (cursor).
  caf::expected<std::vector<job_row>> jobs(const std::string& state, const std::string& type,
                                           const std::string& before, std::uint32_t limit);

  /// A waiting job becomes `cancelled`; a running one is marked (its runner is told); the row
  /// after, or nullopt if there is none. Conflict if it has finished.
  caf::expected<std::optional<job_row>> cancel(const std::string& id);

  /// A discarded or cancelled job becomes available now, with one more attempt allowed if it
  /// had spent them. Conflict otherwise (or if another unfinished job holds its unique key).
  caf::expected<std::optional<job_row>> retry(const std::string& id);

  /// Fires the tenant's due schedules (one job per due time, recorded in schedule_firings),
  /// then claims up to `limit` due jobs for `lease_s` seconds as `instance`, ordered by
  /// priority, then due time. A job whose lease ran out (its node stopped) is claimed again as
  /// its next attempt. Then, with `settle_queue`, moves the tenant's place in the queue to its
  /// next due time (a claim without it leaves the place as it was: too early at worst, which
  /// costs the next round a claim that finds nothing, never a job).
  caf::expected<std::pair<std::vector<claimed_job>, std::vector<fired_schedule>>>
  claim(std::uint32_t limit, std::int64_t lease_s, const std::string& instance,
        bool settle_queue = true);

  /// Extends the leases `instance` holds on `ids` by `lease_s`; the ids still held, each with
  /// whether a cancel was requested.
  caf::expected<std::vector<std::pair<std::string, bool>>>
  heartbeat(const std::vector<std::string>& ids, std::int64_t lease_s, const std::string& instance);

  /// Records outcomes of jobs `instance` still holds; retries become due.
  caf::expected<std::vector<recorded_job>> record(const std::vector<job_outcome>& outcomes,
                                                  const std::string& instance);

  /// Gives back jobs `instance` holds but has not started (shutdown): available again now,
  /// the attempt not counted.
  caf::expected<std::size_t> release(const std::vector<std::string>& ids,
                                     const std::string& instance);

  // -- schedules
  caf::expected<std::vector<schedule_row>> schedules(const std::string& after, std::uint32_t limit);
  caf::expected<std::optional<schedule_row>> schedule(const std::string& name);
  /// Creates or replaces a schedule: the row after, and the row before if there was one.
  caf::expected<std::pair<schedule_row, std::optional<schedule_row>>>
  put_schedule(const schedule_fields& f);
  /// The row deleted, or nullopt.
  caf::expected<std::optional<schedule_row>> delete_schedule(const std::string& name);

  // -- the idempotent helper (features::once)
  /// Claims (job, key) for an effect: nullopt if it is new (run the effect in this
  /// transaction), else the result stored when it first ran (JSON text, "null" if none).
  caf::expected<std::optional<std::string>> effect_claim(const std::string& job_id,
                                                         const std::string& key);
  caf::error effect_done(const std::string& job_id, const std::string& key,
                         const std::string& result_json);

private:
  /// Marks the tenant due at `at_ms` (or sooner), without contending with other writers.
  caf::error queue_at(std::int64_t at_ms);

  pg_transaction& tx_;
};

/// What the job queue holds: tenants with jobs or schedule firings due now, and the earliest
/// due time after now (0: none).
struct job_queue_view {
  std::vector<std::string> due;
  std::int64_t next_ms = 0;
};

/// The one cross-tenant read of the job dispatchers, run outside any tenant.
caf::expected<job_queue_view> due_job_tenants(pg_transaction& tx, std::uint32_t limit);

/// The API's Job object (API.md "Jobs and schedules"); with `attempts`, the history too.
nlohmann::json job_json(const job_row& j, bool with_attempts);

/// Milliseconds since the Unix epoch, now.
std::int64_t unix_now_ms();

} // namespace troupe::storage
