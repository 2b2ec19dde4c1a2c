#define CAF_SUITE actors.rate_limiter

#include "actors/ratelimit/rate_limiter.hpp"

#include <caf/test/unit_test.hpp>

using namespace troupe::actors;
using namespace std::chrono_literals;

namespace {

const auto t0 = rate_limiter::clock::time_point{} + 1000h;
const rate_limit none{0, 60};

} // namespace

CAF_TEST(a bucket allows exactly its requests per window at once) {
  rate_limiter limiter;
  const rate_limit twenty{20, 60};
  int allowed = 0;
  for (int i = 0; i < 60; ++i) {
    auto state = limiter.acquire("user:a", "principal", twenty, none, t0);
    allowed += state.allowed ? 1 : 0;
    if (i == 0) {
      CAF_CHECK_EQUAL(state.remaining, 19u);
      CAF_CHECK_EQUAL(state.limit, 20u);
      CAF_CHECK_EQUAL(state.window_s, 60u);
      CAF_CHECK_EQUAL(state.reset_s, 3u); // one request refills in 60/20 s
    }
    if (i == 19) {
      CAF_CHECK_EQUAL(state.remaining, 0u);
      CAF_CHECK_EQUAL(state.reset_s, 60u); // full again after the whole window
    }
    if (i == 20) {
      CAF_CHECK(!state.allowed);
      CAF_CHECK_EQUAL(state.reset_s, 3u); // Retry-After: when one fits again
    }
  }
  CAF_CHECK_EQUAL(allowed, 20);
}

CAF_TEST(a refused request may retry exactly when it was told) {
  rate_limiter limiter;
  const rate_limit two{2, 10};
  CAF_CHECK(limiter.acquire("k", "principal", two, none, t0).allowed);
  CAF_CHECK(limiter.acquire("k", "principal", two, none, t0).allowed);
  auto refused = limiter.acquire("k", "principal", two, none, t0);
  CAF_REQUIRE(!refused.allowed);
  CAF_CHECK_EQUAL(refused.reset_s, 5u);
  CAF_CHECK(!limiter.acquire("k", "principal", two, none, t0 + 4999ms).allowed);
  CAF_CHECK(limiter.acquire("k", "principal", two, none, t0 + 5s).allowed);
}

CAF_TEST(the tenant bucket counts every principal and a refusal spends nothing) {
  rate_limiter limiter;
  const rate_limit own{100, 60};
  const rate_limit tenant{3, 60};
  CAF_CHECK(limiter.acquire("a", "principal", own, tenant, t0).allowed);
  CAF_CHECK(limiter.acquire("b", "principal", own, tenant, t0).allowed);
  auto third = limiter.acquire("c", "principal", own, tenant, t0);
  CAF_CHECK(third.allowed);
  CAF_CHECK_EQUAL(third.bucket, "tenant"); // the fewest remaining: 0 of the tenant's
  auto fourth = limiter.acquire("a", "principal", own, tenant, t0);
  CAF_CHECK(!fourth.allowed);
  CAF_CHECK_EQUAL(fourth.bucket, "tenant");
  // The refused request spent nothing from a's own bucket (the one at t0 has refilled).
  auto later = limiter.acquire("a", "principal", own, tenant, t0 + 20s);
  CAF_CHECK(later.allowed);
  CAF_CHECK_EQUAL(later.bucket, "tenant");
  auto own_state = limiter.acquire("a", "principal", own, none, t0 + 20s);
  CAF_CHECK_EQUAL(own_state.remaining, 98u);
}

CAF_TEST(a tie names the narrower bucket) {
  rate_limiter limiter;
  auto state = limiter.acquire("a", "principal", rate_limit{10, 60}, rate_limit{10, 60}, t0);
  CAF_CHECK_EQUAL(state.bucket, "principal");
  CAF_CHECK_EQUAL(state.remaining, 9u);
}

CAF_TEST(no limit means no bucket and no headers) {
  rate_limiter limiter;
  auto state = limiter.acquire("a", "principal", none, none, t0);
  CAF_CHECK(state.allowed);
  CAF_CHECK(state.bucket.empty());
}

CAF_TEST(a flood of distinct clients stays within the bound) {
  rate_limiter limiter{100};
  const rate_limit one{1, 60};
  for (int i = 0; i < 10000; ++i) {
    limiter.acquire("ip:" + std::to_string(i), "anonymous", one, none,
                    t0 + std::chrono::milliseconds{i});
    CAF_REQUIRE_LESS_OR_EQUAL(limiter.buckets(), 101u);
  }
  // Idle buckets (full again) go before busy ones.
  rate_limiter idle{2};
  idle.acquire("old", "anonymous", one, none, t0);
  idle.acquire("busy", "anonymous", one, none, t0 + 61s);
  idle.acquire("new", "anonymous", one, none, t0 + 62s);
  CAF_CHECK(!idle.acquire("busy", "anonymous", one, none, t0 + 62s).allowed);
}

CAF_TEST(the largest limits neither divide by zero nor overflow) {
  rate_limiter limiter;
  const rate_limit huge{4294967295u, 1};
  auto state = limiter.acquire("a", "principal", huge, huge, t0);
  CAF_CHECK(state.allowed);
  CAF_CHECK_LESS_OR_EQUAL(state.remaining, 4294967295u);
  const rate_limit long_window{4294967295u, 4294967295u};
  CAF_CHECK(limiter.acquire("b", "principal", long_window, huge, t0).allowed);
}
