#define CAF_SUITE actors.supervisor

#include "actors/supervisor/supervisor.hpp"

#include "actors/metrics/metrics_registry.hpp"
#include "protocol/type_ids.hpp"

#include "tests/support/actor_fixture.hpp"

#include <caf/all.hpp>

#include <memory>

using namespace troupe;
using namespace std::chrono_literals;

namespace {

// A child that dies with an error when it receives crash_atom and otherwise echoes ints.
caf::behavior worker(caf::event_based_actor* self, std::shared_ptr<int> starts) {
  ++*starts;
  return {
    [self](protocol::crash_atom) { self->quit(caf::make_error(caf::sec::runtime_error)); },
    [](int32_t x) { return x; },
  };
}

struct fixture : tests::actor_fixture {
  std::shared_ptr<int> first_starts = std::make_shared<int>(0);
  std::shared_ptr<int> second_starts = std::make_shared<int>(0);
  std::shared_ptr<actors::metrics_registry> metrics = std::make_shared<actors::metrics_registry>();
  caf::actor sup;

  actors::supervisor_options options() {
    actors::supervisor_options opts;
    opts.min_backoff = 100ms;
    opts.max_backoff = 800ms;
    opts.stable_after = 10s;
    opts.max_restarts = 3;
    opts.restart_window = 60s;
    opts.metrics = metrics;
    return opts;
  }

  void start(actors::supervisor_options opts) {
    std::vector<actors::child_spec> children;
    auto first = first_starts;
    auto second = second_starts;
    children.push_back({"first", [first](caf::local_actor* s) {
                          return s->spawn(worker, first);
                        }});
    children.push_back({"second", [second](caf::local_actor* s) {
                          return s->spawn(worker, second);
                        }});
    sup = actors::spawn_supervisor(sys, "sup", std::move(children), std::move(opts));
    sched.run();
  }

  caf::actor child(const std::string& name) {
    self->send(sup, caf::get_atom_v, name);
    sched.run();
    caf::actor result;
    self->receive([&](caf::actor& a) { result = std::move(a); });
    return result;
  }

  protocol::readiness readiness() {
    self->send(sup, protocol::ready_atom_v);
    sched.run();
    protocol::readiness result;
    self->receive([&](protocol::readiness& r) { result = std::move(r); });
    return result;
  }

  void crash(const std::string& name) {
    auto c = child(name);
    CAF_REQUIRE(c);
    self->send(c, protocol::crash_atom_v);
    sched.run();
  }

  // Advances the clock by `d` and delivers whatever became due, without firing other timers.
  void wait(caf::timespan d) {
    advance_time(d);
    sched.run();
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(supervisor_tests, fixture)

CAF_TEST(children start in order and the supervisor reports ready) {
  start(options());
  CAF_CHECK_EQUAL(*first_starts, 1);
  CAF_CHECK_EQUAL(*second_starts, 1);
  auto r = readiness();
  CAF_CHECK(r.ready);
  CAF_CHECK_EQUAL(r.checks.at("first"), "ok");
  CAF_CHECK_EQUAL(r.checks.at("second"), "ok");
}

CAF_TEST(a crashed child is restarted only after its backoff) {
  start(options());
  crash("first");
  CAF_CHECK(!child("first"));
  auto down = readiness();
  CAF_CHECK(!down.ready);
  CAF_CHECK_EQUAL(down.checks.at("first"), "restarting");
  wait(99ms);
  CAF_CHECK_EQUAL(*first_starts, 1);
  wait(1ms);
  CAF_CHECK_EQUAL(*first_starts, 2);
  CAF_CHECK(child("first"));
  CAF_CHECK(readiness().ready);
  CAF_CHECK_EQUAL(*second_starts, 1); // the sibling was left alone
}

CAF_TEST(the backoff doubles on each crash up to its maximum) {
  auto opts = options();
  opts.max_restarts = 10;
  start(opts);
  const caf::timespan expected[] = {100ms, 200ms, 400ms, 800ms, 800ms};
  int starts = 1;
  for (const auto delay : expected) {
    crash("first");
    wait(delay - 1ms);
    CAF_CHECK_EQUAL(*first_starts, starts);
    wait(1ms);
    CAF_CHECK_EQUAL(*first_starts, ++starts);
  }
}

CAF_TEST(a child that stays up resets its backoff) {
  start(options());
  crash("first");
  wait(100ms);
  crash("first");
  wait(200ms);
  CAF_REQUIRE_EQUAL(*first_starts, 3);
  wait(10s); // stable_after: the next crash starts from min_backoff again
  crash("first");
  wait(100ms);
  CAF_CHECK_EQUAL(*first_starts, 4);
}

CAF_TEST(a child that keeps crashing escalates and stops its siblings) {
  start(options());
  self->monitor(sup);
  auto second = child("second");
  self->monitor(second);
  caf::timespan delay = 100ms;
  for (int i = 0; i < 3; ++i) {
    crash("first");
    wait(delay);
    delay *= 2;
  }
  CAF_REQUIRE_EQUAL(*first_starts, 4); // three restarts allowed
  crash("first");                      // the fourth crash within the window escalates
  sched.run();
  int downs = 0;
  caf::error sup_reason;
  for (int i = 0; i < 2; ++i) {
    self->receive([&](caf::down_msg& msg) {
      ++downs;
      if (msg.source == sup.address()) {
        sup_reason = msg.reason;
      }
    });
  }
  CAF_CHECK_EQUAL(downs, 2);
  CAF_CHECK_EQUAL(sup_reason, caf::sec::runtime_error);
  CAF_CHECK_EQUAL(*first_starts, 4);
}

CAF_TEST(crashes spread over more than the window do not escalate) {
  start(options());
  for (int i = 0; i < 6; ++i) {
    crash("first");
    wait(30s); // crashes 30 s apart: never more than three in a 60 s window
  }
  CAF_CHECK_EQUAL(*first_starts, 7);
  CAF_CHECK(readiness().ready);
}

CAF_TEST(an exit request stops children in reverse order then the supervisor) {
  start(options());
  auto first = child("first");
  auto second = child("second");
  self->monitor(first);
  self->monitor(second);
  self->monitor(sup);
  anon_send_exit(sup, caf::exit_reason::user_shutdown);
  sched.run();
  std::vector<caf::actor_addr> order;
  for (int i = 0; i < 3; ++i) {
    self->receive([&](caf::down_msg& msg) {
      order.push_back(msg.source);
      CAF_CHECK_EQUAL(msg.reason, caf::exit_reason::user_shutdown);
    });
  }
  CAF_REQUIRE_EQUAL(order.size(), 3u);
  CAF_CHECK(order[0] == second.address());
  CAF_CHECK(order[1] == first.address());
  CAF_CHECK(order[2] == sup.address());
}

CAF_TEST(no child is restarted while the supervisor stops) {
  start(options());
  self->monitor(sup);
  crash("first");
  anon_send_exit(sup, caf::exit_reason::user_shutdown);
  sched.run();
  wait(1s);
  self->receive([&](caf::down_msg& msg) { CAF_CHECK(msg.source == sup.address()); });
  CAF_CHECK_EQUAL(*first_starts, 1);
}

CAF_TEST(the actors gauge follows the children) {
  start(options());
  auto text = metrics->render();
  CAF_CHECK(text.find("troupe_actors{kind=\"first\"} 1") != std::string::npos);
  CAF_CHECK(text.find("troupe_actors{kind=\"sup\"} 1") != std::string::npos);
  crash("first");
  text = metrics->render();
  CAF_CHECK(text.find("troupe_actors{kind=\"first\"} 0") != std::string::npos);
  wait(100ms);
  text = metrics->render();
  CAF_CHECK(text.find("troupe_actors{kind=\"first\"} 1") != std::string::npos);
}

CAF_TEST_FIXTURE_SCOPE_END()
