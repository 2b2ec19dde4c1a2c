#define CAF_SUITE protocol.auth_callback

#include "protocol/auth.hpp"
#include "protocol/error.hpp"

#include <caf/test/unit_test.hpp>

using namespace troupe::protocol;

CAF_TEST(an auth callback answers once however often it is called) {
  int calls = 0;
  {
    auth_callback done{[&calls](caf::expected<authenticated> r) {
      ++calls;
      CAF_CHECK(r.engaged());
    }};
    auto copy = done;
    copy(authenticated{});
    done(authenticated{});
  }
  CAF_CHECK_EQUAL(calls, 1);
}

CAF_TEST(a dropped auth callback answers service unavailable) {
  int calls = 0;
  bool unavailable = false;
  {
    auth_callback done{[&](caf::expected<authenticated> r) {
      ++calls;
      unavailable = !r && r.error() == errc::service_unavailable;
    }};
    auto copy = done; // a message holding it, dropped with the last copy
  }
  CAF_CHECK_EQUAL(calls, 1);
  CAF_CHECK(unavailable);
}
