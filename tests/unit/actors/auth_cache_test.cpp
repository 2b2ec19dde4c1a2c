#define CAF_SUITE actors.auth_cache

#include "actors/auth/auth_cache.hpp"

#include <caf/test/unit_test.hpp>

using namespace troupe::actors;
using namespace std::chrono_literals;

namespace {

const auto t0 = login_throttle::clock::time_point{} + 1000h;

} // namespace

CAF_TEST(a login throttle refuses after max failures until the oldest leaves the window) {
  login_throttle throttle{3};
  CAF_CHECK_EQUAL(throttle.wait_seconds("a|1.2.3.4", t0), 0u);
  throttle.failed("a|1.2.3.4", t0);
  throttle.failed("a|1.2.3.4", t0 + 10s);
  CAF_CHECK_EQUAL(throttle.wait_seconds("a|1.2.3.4", t0 + 10s), 0u);
  throttle.failed("a|1.2.3.4", t0 + 20s);
  // The first failure leaves the 15-minute window at t0 + 900 s.
  CAF_CHECK_EQUAL(throttle.wait_seconds("a|1.2.3.4", t0 + 20s), 880u);
  CAF_CHECK_EQUAL(throttle.wait_seconds("a|1.2.3.4", t0 + 899500ms), 1u);
  CAF_CHECK_EQUAL(throttle.wait_seconds("a|1.2.3.4", t0 + 900s), 0u);
  // Another account or another address is not affected.
  CAF_CHECK_EQUAL(throttle.wait_seconds("b|1.2.3.4", t0 + 20s), 0u);
  CAF_CHECK_EQUAL(throttle.wait_seconds("a|5.6.7.8", t0 + 20s), 0u);
}

CAF_TEST(a successful login clears the count) {
  login_throttle throttle{2};
  throttle.failed("a", t0);
  throttle.failed("a", t0);
  CAF_CHECK_GREATER(throttle.wait_seconds("a", t0), 0u);
  throttle.succeeded("a");
  CAF_CHECK_EQUAL(throttle.wait_seconds("a", t0), 0u);
  CAF_CHECK_EQUAL(throttle.tracked(), 0u);
}

CAF_TEST(a flood of accounts stays within the bound) {
  login_throttle throttle{3, std::chrono::minutes{15}, 100};
  for (int i = 0; i < 10000; ++i) {
    throttle.failed("account-" + std::to_string(i), t0 + std::chrono::milliseconds{i});
    CAF_REQUIRE_LESS_OR_EQUAL(throttle.tracked(), 100u);
  }
  // The newest accounts are the ones kept.
  throttle.failed("account-9999", t0 + 10s);
  throttle.failed("account-9999", t0 + 10s);
  CAF_CHECK_GREATER(throttle.wait_seconds("account-9999", t0 + 10s), 0u);
}

CAF_TEST(expired failures are dropped before live ones when the bound is reached) {
  login_throttle throttle{2, std::chrono::minutes{15}, 2};
  throttle.failed("old", t0);
  throttle.failed("live", t0 + 20min);
  throttle.failed("live", t0 + 20min);
  throttle.failed("new", t0 + 20min); // "old" left the window: it goes, "live" stays
  CAF_CHECK_GREATER(throttle.wait_seconds("live", t0 + 20min), 0u);
  CAF_CHECK_EQUAL(throttle.tracked(), 2u);
}

CAF_TEST(invalidation drops sessions users and keys) {
  auth_cache cache;
  cache.put_session("s1", {"u1", false}, cache.epoch());
  cache.put_session("s2", {"u1", false}, cache.epoch());
  cache.put_session("s3", {"u2", false}, cache.epoch());
  cache.put_user("u1", {"{}", {"*"}}, cache.epoch());
  cache.put_key("digest", {"k1", "u1", {"audit:read"}, false, 0}, cache.epoch());
  cache.invalidate("session:s1");
  CAF_CHECK(cache.session("s1") == nullptr);
  CAF_CHECK(cache.session("s2") != nullptr);
  // A user's change drops the user and every session of theirs.
  cache.invalidate("user:u1");
  CAF_CHECK(cache.user("u1") == nullptr);
  CAF_CHECK(cache.session("s2") == nullptr);
  CAF_CHECK(cache.session("s3") != nullptr);
  cache.invalidate("api_key:k1");
  CAF_CHECK(cache.key("digest") == nullptr);
}

CAF_TEST(a load that started before an invalidation stores nothing) {
  auth_cache cache;
  const auto before = cache.epoch();
  cache.invalidate("session:s1"); // the logout commits while the load is in flight
  cache.put_session("s1", {"u1", false}, before);
  CAF_CHECK(cache.session("s1") == nullptr);
  cache.put_session("s1", {"u1", true}, cache.epoch());
  CAF_REQUIRE(cache.session("s1") != nullptr);
  CAF_CHECK(cache.session("s1")->revoked);
}

CAF_TEST(a full cache starts over) {
  auth_cache cache{2};
  cache.put_token("a", {"u", "s", "t", 1});
  cache.put_token("b", {"u", "s", "t", 1});
  cache.put_token("a", {"u", "s", "t", 2}); // an existing entry is replaced, nothing dropped
  CAF_CHECK(cache.token("b") != nullptr);
  cache.put_token("c", {"u", "s", "t", 1});
  CAF_CHECK(cache.token("a") == nullptr);
  CAF_CHECK(cache.token("c") != nullptr);
}
