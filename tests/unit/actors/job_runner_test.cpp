#define CAF_SUITE actors.job_runner

#include "actors/features/features.hpp"
#include "actors/jobs/dispatcher.hpp"
#include "storage/jobs.hpp"

#include "tests/support/actor_fixture.hpp"

#include <caf/event_based_actor.hpp>

using namespace troupe;
using namespace std::chrono_literals;

namespace {

using features::invocation;
using features::outcome;

// What a runner reported to its dispatcher.
struct report {
  bool arrived = false;
  std::string tenant;
  storage::job_outcome outcome;
};

// Answers after `delay` unless it sees the stop flag first (checked every 10 ms).
caf::behavior slow_handler(caf::event_based_actor* self, caf::timespan delay,
                           std::shared_ptr<bool> saw_stop) {
  struct pending {
    caf::typed_response_promise<outcome> rp;
    std::shared_ptr<std::atomic<bool>> stop;
    caf::timespan left{};
  };
  auto st = std::make_shared<pending>();
  return {
    [self, st, delay](invocation& in) -> caf::result<outcome> {
      st->rp = self->make_response_promise<outcome>();
      st->stop = in.stop;
      st->left = delay;
      self->delayed_send(self, 10ms, protocol::tick_atom_v);
      return st->rp;
    },
    [self, st, saw_stop](protocol::tick_atom) {
      if (st->stop->load()) {
        *saw_stop = true;
        st->rp.deliver(outcome::failure("stopped"));
        return;
      }
      st->left -= 10ms;
      if (st->left <= caf::timespan{0}) {
        st->rp.deliver(outcome::success(nlohmann::json{{"done", true}}));
        return;
      }
      self->delayed_send(self, 10ms, protocol::tick_atom_v);
    },
  };
}

struct fixture : tests::actor_fixture {
  std::shared_ptr<features::catalog> catalog = std::make_shared<features::catalog>();
  std::shared_ptr<report> got = std::make_shared<report>();
  std::shared_ptr<bool> saw_stop = std::make_shared<bool>(false);
  caf::actor reporter;

  fixture() {
    auto flag = saw_stop;
    catalog->add({"t.slow", features::kind::job, "", nullptr, "answers after 5 s",
                  [flag](caf::event_based_actor* a) {
                    return slow_handler(a, 5s, flag);
                  }});
    catalog->add({"t.fail", features::kind::job, "", nullptr, "always fails",
                  [](caf::event_based_actor*) -> caf::behavior {
                    return {[](invocation&) -> caf::result<outcome> {
                      return outcome::failure("nope");
                    }};
                  }});
    auto sink = got;
    // The sink is the spawn's argument: CAF 0.17 mishandles argument-less function actors.
    reporter = sys.spawn(
      [](caf::event_based_actor*, std::shared_ptr<report> into) -> caf::behavior {
        return {
          [into](protocol::attempted_atom, const std::string& tenant, storage::job_outcome& o) {
            into->arrived = true;
            into->tenant = tenant;
            into->outcome = std::move(o);
          },
        };
      },
      sink);
  }

  caf::actor runner(const std::string& type, std::int32_t attempt = 1,
                    std::int32_t timeout_s = 300) {
    actors::job_dispatcher_options options;
    options.catalog = catalog;
    options.retry_base_ms = 1000;
    options.retry_max_ms = 3600000;
    options.cancel_grace = 5s;
    storage::claimed_job job;
    job.tenant_id = "tenant-1";
    job.id = "job-1";
    job.type = type;
    job.payload = "{}";
    job.attempt = attempt;
    job.max_attempts = 3;
    job.timeout_s = timeout_s;
    return actors::spawn_job_runner(sys, options, reporter, job);
  }

  // Moves the clock in steps of 10 ms, running what becomes due.
  void elapse(caf::timespan d) {
    for (auto t = caf::timespan{0}; t < d; t += 10ms) {
      advance_time(10ms);
      sched.run();
    }
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(job_runner_tests, fixture)

CAF_TEST(a handler that answers in time ends the job succeeded with its result) {
  runner("t.slow");
  sched.run();
  elapse(4900ms);
  CAF_CHECK(!got->arrived);
  elapse(200ms);
  CAF_REQUIRE(got->arrived);
  CAF_CHECK_EQUAL(got->tenant, "tenant-1");
  CAF_CHECK_EQUAL(got->outcome.state, "succeeded");
  CAF_CHECK_EQUAL(got->outcome.result, R"({"done":true})");
  CAF_CHECK_EQUAL(got->outcome.n, 1);
}

CAF_TEST(an attempt that outlives timeout_s fails as timed out and the handler is told to stop) {
  runner("t.slow", 1, 2);
  sched.run();
  elapse(1900ms);
  CAF_CHECK(!got->arrived);
  elapse(200ms);
  CAF_REQUIRE(got->arrived);
  CAF_CHECK_EQUAL(got->outcome.state, "retrying");
  CAF_CHECK_EQUAL(got->outcome.error, "timed out after 2 s (timeout_s)");
  // Retry after attempt 1: 1000 ms ± 10 %.
  const auto delay = got->outcome.retry_at_ms - got->outcome.finished_ms;
  CAF_CHECK_GREATER_OR_EQUAL(delay, 900);
  CAF_CHECK_LESS_OR_EQUAL(delay, 1100);
}

CAF_TEST(a cancelled job stops its handler and ends cancelled) {
  auto r = runner("t.slow");
  sched.run();
  elapse(100ms);
  caf::anon_send(r, protocol::retire_atom_v);
  sched.run();
  elapse(30ms);
  CAF_CHECK(*saw_stop);
  CAF_REQUIRE(got->arrived);
  CAF_CHECK_EQUAL(got->outcome.state, "cancelled");
}

CAF_TEST(the last failed attempt discards the job) {
  runner("t.fail", 3);
  sched.run();
  CAF_REQUIRE(got->arrived);
  CAF_CHECK_EQUAL(got->outcome.state, "discarded");
  CAF_CHECK_EQUAL(got->outcome.error, "nope");
  CAF_CHECK_EQUAL(got->outcome.n, 3);
}

CAF_TEST(a type without a handler on this node fails the attempt) {
  runner("t.missing", 1);
  sched.run();
  CAF_REQUIRE(got->arrived);
  CAF_CHECK_EQUAL(got->outcome.state, "retrying");
  CAF_CHECK_EQUAL(got->outcome.error, "no handler for job type t.missing on this node");
}

CAF_TEST_FIXTURE_SCOPE_END()
