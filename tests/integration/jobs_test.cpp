#define CAF_SUITE storage.jobs

#include "storage/jobs.hpp"

#include "protocol/request_id.hpp"

#include "tests/support/tenancy_fixture.hpp"

#include <caf/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <thread>

using namespace troupe;

namespace {

using tests::alpha_id;
using tests::beta_id;

struct fixture : tests::tenancy_fixture {
  template <class T>
  caf::expected<T> jobs(const std::string& tenant,
                        std::function<caf::expected<T>(storage::job_repository&)> body) {
    return on_pool<T>(tenant, [body](storage::pg_transaction& tx) {
      storage::job_repository repo{tx};
      return body(repo);
    });
  }

  storage::job_row enqueue(const std::string& tenant, storage::new_job job, bool fresh = true) {
    auto row = jobs<std::pair<storage::job_row, bool>>(
      tenant, [&](storage::job_repository& repo) { return repo.enqueue(job); });
    CAF_REQUIRE(row);
    CAF_CHECK_EQUAL(row->second, fresh);
    return row->first;
  }

  storage::job_row noop(const std::string& tenant, std::int32_t priority = 5) {
    storage::new_job job;
    job.type = "test.noop";
    job.priority = priority;
    return enqueue(tenant, job);
  }

  using claimed
    = std::pair<std::vector<storage::claimed_job>, std::vector<storage::fired_schedule>>;

  claimed claim(const std::string& tenant, const std::string& instance, std::int64_t lease_s = 30,
                std::uint32_t limit = 100) {
    auto got = jobs<claimed>(tenant, [&](storage::job_repository& repo) {
      return repo.claim(limit, lease_s, instance, true);
    });
    CAF_REQUIRE(got);
    return *got;
  }

  std::vector<storage::recorded_job> record(const std::string& tenant,
                                            std::vector<storage::job_outcome> outcomes,
                                            const std::string& instance) {
    auto got = jobs<std::vector<storage::recorded_job>>(
      tenant, [&](storage::job_repository& repo) { return repo.record(outcomes, instance); });
    CAF_REQUIRE(got);
    return *got;
  }

  storage::job_row get(const std::string& tenant, const std::string& id) {
    auto row = jobs<std::optional<storage::job_row>>(
      tenant, [&](storage::job_repository& repo) { return repo.job(id); });
    CAF_REQUIRE(row && *row);
    return **row;
  }

  std::vector<std::string> due() {
    auto view = on_pool<storage::job_queue_view>(
      std::nullopt, [](storage::pg_transaction& tx) { return storage::due_job_tenants(tx, 10); });
    CAF_REQUIRE(view);
    return view->due;
  }

  static storage::job_outcome outcome(const storage::claimed_job& c, std::string state,
                                      std::int64_t retry_in_ms = 0) {
    storage::job_outcome o;
    o.id = c.id;
    o.n = c.attempt;
    o.state = std::move(state);
    o.started_ms = storage::unix_now_ms();
    o.finished_ms = o.started_ms + 1;
    o.error = o.state == "succeeded" ? "" : "boom";
    o.result = o.state == "succeeded" ? R"({"ok":true})" : "";
    o.retry_at_ms = o.finished_ms + retry_in_ms;
    return o;
  }

  std::string owner_query(const std::string& sql) {
    auto owner = tests::connect(db.owner_conninfo());
    return tests::query(*owner, sql);
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(jobs_tests, fixture)

CAF_TEST(claims follow priority then due time and stay inside the tenant) {
  const auto low = noop(alpha_id, 9);
  const auto first = noop(alpha_id, 5);
  const auto second = noop(alpha_id, 5);
  const auto urgent = noop(alpha_id, 0);
  storage::new_job later;
  later.type = "test.noop";
  later.run_at_ms = storage::unix_now_ms() + 60000;
  const auto scheduled = enqueue(alpha_id, later);
  CAF_CHECK_EQUAL(scheduled.state, "scheduled");
  const auto theirs = noop(beta_id);
  CAF_CHECK_EQUAL(due().size(), 2u);
  auto got = claim(alpha_id, "node-1/a").first;
  CAF_REQUIRE_EQUAL(got.size(), 4u);
  CAF_CHECK_EQUAL(got[0].id, urgent.id);
  CAF_CHECK_EQUAL(got[1].id, first.id);
  CAF_CHECK_EQUAL(got[2].id, second.id);
  CAF_CHECK_EQUAL(got[3].id, low.id);
  for (const auto& c : got) {
    CAF_CHECK_EQUAL(c.attempt, 1);
    CAF_CHECK_EQUAL(c.tenant_id, alpha_id);
  }
  CAF_CHECK_EQUAL(get(alpha_id, first.id).state, "running");
  // Alpha cannot see beta's job; beta's claim gets only its own.
  auto seen = jobs<std::optional<storage::job_row>>(
    alpha_id, [&](storage::job_repository& repo) { return repo.job(theirs.id); });
  CAF_REQUIRE(seen);
  CAF_CHECK(!*seen);
  auto beta = claim(beta_id, "node-1/a").first;
  CAF_REQUIRE_EQUAL(beta.size(), 1u);
  CAF_CHECK_EQUAL(beta[0].id, theirs.id);
  // Alpha's queue row now waits for the scheduled job (or a lease's end): not due now.
  CAF_CHECK(due().empty());
}

CAF_TEST(a unique key admits one unfinished job and is free again once it finished) {
  storage::new_job job;
  job.type = "test.noop";
  job.unique_key = "nightly";
  const auto original = enqueue(alpha_id, job);
  const auto again = enqueue(alpha_id, job, false);
  CAF_CHECK_EQUAL(again.id, original.id);
  // Another tenant's key is its own.
  enqueue(beta_id, job, true);
  auto got = claim(alpha_id, "node-1/a").first;
  CAF_REQUIRE_EQUAL(got.size(), 1u);
  CAF_CHECK_EQUAL(enqueue(alpha_id, job, false).id, original.id); // running still holds it
  record(alpha_id, {outcome(got[0], "succeeded")}, "node-1/a");
  const auto next = enqueue(alpha_id, job, true);
  CAF_CHECK_NOT_EQUAL(next.id, original.id);
}

CAF_TEST(a lease that runs out makes the job run again and a late outcome is ignored) {
  const auto job = noop(alpha_id);
  auto first = claim(alpha_id, "node-1/a", 1).first;
  CAF_REQUIRE_EQUAL(first.size(), 1u);
  CAF_CHECK(claim(alpha_id, "node-2/b").first.empty());
  std::this_thread::sleep_for(std::chrono::milliseconds{1100});
  auto second = claim(alpha_id, "node-2/b").first;
  CAF_REQUIRE_EQUAL(second.size(), 1u);
  CAF_CHECK_EQUAL(second[0].id, job.id);
  CAF_CHECK_EQUAL(second[0].attempt, 2);
  // The first holder's outcome comes too late: not recorded.
  CAF_CHECK(record(alpha_id, {outcome(first[0], "succeeded")}, "node-1/a").empty());
  auto row = get(alpha_id, job.id);
  CAF_CHECK_EQUAL(row.state, "running");
  auto attempts = nlohmann::json::parse(row.attempts);
  CAF_REQUIRE_EQUAL(attempts.size(), 1u);
  CAF_CHECK_EQUAL(attempts[0]["n"], 1);
  CAF_CHECK(attempts[0]["started_at"].is_null());
  CAF_CHECK_EQUAL(attempts[0]["error"], "lease expired: the node running it stopped");
  auto recorded = record(alpha_id, {outcome(second[0], "succeeded")}, "node-2/b");
  CAF_REQUIRE_EQUAL(recorded.size(), 1u);
  row = get(alpha_id, job.id);
  CAF_CHECK_EQUAL(row.state, "succeeded");
  const auto result = nlohmann::json::parse(*row.result);
  CAF_CHECK_EQUAL(result.at("ok"), true);
  CAF_CHECK_EQUAL(nlohmann::json::parse(row.attempts).size(), 2u);
}

CAF_TEST(heartbeats keep a lease and report cancels) {
  const auto job = noop(alpha_id);
  auto got = claim(alpha_id, "node-1/a", 1).first;
  CAF_REQUIRE_EQUAL(got.size(), 1u);
  auto cancelled = jobs<std::optional<storage::job_row>>(
    alpha_id, [&](storage::job_repository& repo) { return repo.cancel(job.id); });
  CAF_REQUIRE(cancelled && *cancelled);
  CAF_CHECK((*cancelled)->cancel_requested);
  CAF_CHECK_EQUAL((*cancelled)->state, "running");
  std::this_thread::sleep_for(std::chrono::milliseconds{600});
  auto held
    = jobs<std::vector<std::pair<std::string, bool>>>(alpha_id, [&](storage::job_repository& repo) {
        return repo.heartbeat({job.id}, 30, "node-1/a");
      });
  CAF_REQUIRE(held);
  CAF_REQUIRE_EQUAL(held->size(), 1u);
  CAF_CHECK((*held)[0].second);
  std::this_thread::sleep_for(std::chrono::milliseconds{600});
  // Renewed: past the first lease's end, nobody else can claim it.
  CAF_CHECK(claim(alpha_id, "node-2/b").first.empty());
  // Another instance's heartbeat holds nothing.
  auto foreign
    = jobs<std::vector<std::pair<std::string, bool>>>(alpha_id, [&](storage::job_repository& repo) {
        return repo.heartbeat({job.id}, 30, "node-2/b");
      });
  CAF_REQUIRE(foreign);
  CAF_CHECK(foreign->empty());
  // A failure after a cancel ends the job cancelled, not retrying.
  auto recorded = record(alpha_id, {outcome(got[0], "retrying", 1000)}, "node-1/a");
  CAF_REQUIRE_EQUAL(recorded.size(), 1u);
  CAF_CHECK_EQUAL(recorded[0].state, "cancelled");
}

CAF_TEST(failed attempts retry at their time and are discarded after the last) {
  const auto job = noop(alpha_id);
  auto got = claim(alpha_id, "node-1/a").first;
  CAF_REQUIRE_EQUAL(got.size(), 1u);
  auto recorded = record(alpha_id, {outcome(got[0], "retrying", 800)}, "node-1/a");
  CAF_REQUIRE_EQUAL(recorded.size(), 1u);
  CAF_CHECK_EQUAL(recorded[0].state, "retrying");
  CAF_CHECK_EQUAL(get(alpha_id, job.id).state, "retrying");
  CAF_CHECK(claim(alpha_id, "node-1/a").first.empty());
  std::this_thread::sleep_for(std::chrono::milliseconds{900});
  got = claim(alpha_id, "node-1/a").first;
  CAF_REQUIRE_EQUAL(got.size(), 1u);
  CAF_CHECK_EQUAL(got[0].attempt, 2);
  recorded = record(alpha_id, {outcome(got[0], "discarded")}, "node-1/a");
  CAF_REQUIRE_EQUAL(recorded.size(), 1u);
  auto row = get(alpha_id, job.id);
  CAF_CHECK_EQUAL(row.state, "discarded");
  CAF_CHECK(row.finished_at.has_value());
  CAF_CHECK_EQUAL(row.last_error.value_or(""), "boom");
  // A retry makes it available again, with one more attempt allowed if they were spent.
  auto retried = jobs<std::optional<storage::job_row>>(
    alpha_id, [&](storage::job_repository& repo) { return repo.retry(job.id); });
  CAF_REQUIRE(retried && *retried);
  CAF_CHECK_EQUAL((*retried)->state, "available");
  CAF_CHECK_EQUAL(claim(alpha_id, "node-1/a").first.size(), 1u);
  // Only discarded or cancelled jobs can be retried.
  auto refused = jobs<std::optional<storage::job_row>>(
    alpha_id, [&](storage::job_repository& repo) { return repo.retry(job.id); });
  CAF_CHECK(!refused);
}

CAF_TEST(a due schedule fires once per due time and catches up once) {
  storage::schedule_fields f;
  f.name = "every-minute";
  f.cron = "* * * * *";
  f.timezone = "UTC";
  f.job = R"({"type":"test.noop","payload":{"n":1}})";
  // Due a day ago: after the downtime it fires once, not 1440 times.
  const auto due_ms = (storage::unix_now_ms() / 60000 - 1440) * 60000;
  f.next_run_ms = due_ms;
  auto put = jobs<std::pair<storage::schedule_row, std::optional<storage::schedule_row>>>(
    alpha_id, [&](storage::job_repository& repo) { return repo.put_schedule(f); });
  CAF_REQUIRE(put);
  CAF_CHECK(!put->second);
  auto got = claim(alpha_id, "node-1/a");
  CAF_REQUIRE_EQUAL(got.second.size(), 1u);
  CAF_CHECK_EQUAL(got.second[0].name, "every-minute");
  CAF_REQUIRE_EQUAL(got.first.size(), 1u);
  CAF_CHECK_EQUAL(got.first[0].id, got.second[0].job_id);
  const auto payload = nlohmann::json::parse(got.first[0].payload);
  CAF_CHECK_EQUAL(payload.at("n"), 1);
  CAF_CHECK_EQUAL(get(alpha_id, got.first[0].id).schedule_name.value_or(""), "every-minute");
  auto row = jobs<std::optional<storage::schedule_row>>(
    alpha_id, [&](storage::job_repository& repo) { return repo.schedule("every-minute"); });
  CAF_REQUIRE(row && *row);
  CAF_CHECK((*row)->last_run_at.has_value());
  CAF_REQUIRE((*row)->next_run_at.has_value());
  CAF_CHECK_GREATER(*(*row)->next_run_at, *(*row)->last_run_at);
  // A second node claiming now fires nothing: next_run_at moved on.
  CAF_CHECK(claim(alpha_id, "node-2/b").second.empty());
  // Even if it saw the same due time again (a stale read), the firing row refuses a second
  // firing.
  owner_query("UPDATE schedules SET next_run_at = to_timestamp(" + std::to_string(due_ms)
              + " / 1000.0)");
  auto stale = claim(alpha_id, "node-2/b");
  CAF_CHECK(stale.second.empty());
  CAF_CHECK(stale.first.empty());
  CAF_CHECK_EQUAL(owner_query("SELECT count(*) FROM schedule_firings"), "1");
  CAF_CHECK_EQUAL(owner_query("SELECT count(*) FROM jobs WHERE schedule_name = 'every-minute'"),
                  "1");
}

CAF_TEST(the idempotent helper records an effect once per job and key) {
  const auto job = noop(alpha_id);
  auto first = jobs<std::optional<std::string>>(
    alpha_id, [&](storage::job_repository& repo) -> caf::expected<std::optional<std::string>> {
      auto effect = repo.effect_claim(job.id, "charge");
      if (!effect || *effect) {
        return effect;
      }
      if (auto err = repo.effect_done(job.id, "charge", R"({"charged":42})")) {
        return err;
      }
      return effect;
    });
  CAF_REQUIRE(first);
  CAF_CHECK(!*first); // new: the effect ran
  auto second = jobs<std::optional<std::string>>(
    alpha_id, [&](storage::job_repository& repo) { return repo.effect_claim(job.id, "charge"); });
  CAF_REQUIRE(second && *second);
  const auto stored = nlohmann::json::parse(**second);
  CAF_CHECK_EQUAL(stored.at("charged"), 42);
  // Another key of the same job is another effect.
  auto other = jobs<std::optional<std::string>>(
    alpha_id, [&](storage::job_repository& repo) { return repo.effect_claim(job.id, "email"); });
  CAF_REQUIRE(other);
  CAF_CHECK(!*other);
}

CAF_TEST(an enqueue after a claim emptied the queue makes the tenant due again) {
  noop(alpha_id);
  CAF_CHECK_EQUAL(claim(alpha_id, "node-1/a").first.size(), 1u);
  // The lease's end is the only thing left: not due now.
  CAF_CHECK(due().empty());
  noop(alpha_id);
  CAF_CHECK_EQUAL(due(), std::vector<std::string>{alpha_id});
  storage::new_job batch_job;
  batch_job.type = "test.noop";
  auto many = jobs<std::vector<std::pair<storage::job_row, bool>>>(
    beta_id, [&](storage::job_repository& repo) {
      return repo.enqueue_many({batch_job, batch_job, batch_job});
    });
  CAF_REQUIRE(many);
  CAF_CHECK_EQUAL(many->size(), 3u);
  CAF_CHECK_EQUAL(due().size(), 2u);
  CAF_CHECK_EQUAL(claim(beta_id, "node-1/a").first.size(), 3u);
}

CAF_TEST_FIXTURE_SCOPE_END()
