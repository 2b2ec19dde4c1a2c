#define CAF_SUITE protocol.jobs

#include "protocol/jobs.hpp"

#include <caf/test/unit_test.hpp>

using namespace troupe::protocol;

CAF_TEST(the retry delay doubles per attempt up to the maximum with ten percent jitter) {
  // unit 0.5 is the middle of the jitter: exactly base * 2^(n-1).
  CAF_CHECK_EQUAL(jobs::retry_delay_ms(1000, 3600000, 1, 0.5), 1000);
  CAF_CHECK_EQUAL(jobs::retry_delay_ms(1000, 3600000, 2, 0.5), 2000);
  CAF_CHECK_EQUAL(jobs::retry_delay_ms(1000, 3600000, 5, 0.5), 16000);
  CAF_CHECK_EQUAL(jobs::retry_delay_ms(1000, 3600000, 13, 0.5), 3600000); // 4096 s > 1 h
  CAF_CHECK_EQUAL(jobs::retry_delay_ms(1000, 3600000, 200, 0.5), 3600000);
  // The jitter's ends: -10 % and +10 %.
  CAF_CHECK_EQUAL(jobs::retry_delay_ms(1000, 3600000, 1, 0.0), 900);
  CAF_CHECK_EQUAL(jobs::retry_delay_ms(1000, 3600000, 1, 1.0), 1100);
  CAF_CHECK_EQUAL(jobs::retry_delay_ms(1000, 3600000, 3, 0.25), 3800);
  // n = 0 is treated as the first attempt.
  CAF_CHECK_EQUAL(jobs::retry_delay_ms(200, 1000, 0, 0.5), 200);
}

CAF_TEST(job types are dotted lower case names) {
  for (const auto* ok : {"test.noop", "http.request", "a", "dashboard.save_layout", "x1.y_2"}) {
    CAF_MESSAGE(ok);
    CAF_CHECK(jobs::valid_type(ok));
  }
  for (const auto* bad : {"", ".a", "a.", "a..b", "A.b", "1a", "a.1b", "a-b", "a b", "_a"}) {
    CAF_MESSAGE(bad);
    CAF_CHECK(!jobs::valid_type(bad));
  }
  CAF_CHECK(jobs::valid_type(std::string(100, 'a')));
  CAF_CHECK(!jobs::valid_type(std::string(101, 'a')));
}

CAF_TEST(schedule names start with a letter or digit) {
  for (const auto* ok : {"nightly", "Report-1", "a.b_c-d", "9am"}) {
    CAF_MESSAGE(ok);
    CAF_CHECK(jobs::valid_schedule_name(ok));
  }
  for (const auto* bad : {"", "-x", ".x", "_x", "a b", "a/b", "ä"}) {
    CAF_MESSAGE(bad);
    CAF_CHECK(!jobs::valid_schedule_name(bad));
  }
  CAF_CHECK(jobs::valid_schedule_name(std::string(100, 'a')));
  CAF_CHECK(!jobs::valid_schedule_name(std::string(101, 'a')));
}
