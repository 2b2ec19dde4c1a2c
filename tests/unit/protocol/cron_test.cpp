#define CAF_SUITE protocol.cron

#include "protocol/cron.hpp"

#include "protocol/zoneinfo.hpp"

#include <caf/test/unit_test.hpp>

#include <ctime>
#include <initializer_list>
#include <string>
#include <vector>

using namespace troupe::protocol;

// Every expected instant below was computed independently, never with the code under test:
// the UTC instants of local times and the transition instants with Python's zoneinfo module
// (reading the same /usr/share/zoneinfo), weekdays with Python's datetime. They are written as
// UTC civil times and converted with glibc's timegm.

namespace {

std::int64_t utc(int y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return static_cast<std::int64_t>(timegm(&tm));
}

cron::expression parsed(std::string_view text) {
  std::string error;
  auto e = cron::parse(text, &error);
  if (!e) {
    CAF_FAIL("cannot parse '" << text << "': " << error);
  }
  return *e;
}

std::string error_of(std::string_view text) {
  std::string error;
  if (cron::parse(text, &error)) {
    return "parsed";
  }
  return error;
}

// The values set in a bit set, as "1,2,3".
template <std::size_t N>
std::string values(const std::bitset<N>& bits) {
  std::string out;
  for (std::size_t i = 0; i < N; ++i) {
    if (bits[i]) {
      out += (out.empty() ? "" : ",") + std::to_string(i);
    }
  }
  return out;
}

std::string range(int low, int high) {
  std::string out;
  for (int i = low; i <= high; ++i) {
    out += (out.empty() ? "" : ",") + std::to_string(i);
  }
  return out;
}

const zoneinfo::zone& zone(const char* name) {
  std::string error;
  auto z = zoneinfo::cached(name, &error);
  if (!z) {
    CAF_FAIL("cannot load " << name << ": " << error);
  }
  return *z; // the cache keeps it alive
}

// The next `count` firings of `text` in `zone_name` after `after`.
std::vector<std::int64_t> firings(std::string_view text, const char* zone_name, std::int64_t after,
                                  int count) {
  const auto e = parsed(text);
  const auto& z = zone(zone_name);
  std::vector<std::int64_t> out;
  for (int i = 0; i < count; ++i) {
    auto at = cron::next(e, z, after);
    if (!at) {
      break;
    }
    out.push_back(*at);
    after = *at;
  }
  return out;
}

using instants = std::vector<std::int64_t>;

std::optional<std::int64_t> next_utc(std::string_view text, std::int64_t after) {
  return cron::next(parsed(text), zone("UTC"), after);
}

} // namespace

CAF_TEST(five fields set minutes hours days months and weekdays) {
  auto e = parsed("*/15 9-17 * * MON-FRI");
  CAF_CHECK_EQUAL(values(e.seconds), "0");
  CAF_CHECK_EQUAL(values(e.minutes), "0,15,30,45");
  CAF_CHECK_EQUAL(values(e.hours), range(9, 17));
  CAF_CHECK_EQUAL(values(e.days_of_month), range(1, 31));
  CAF_CHECK_EQUAL(values(e.months), range(1, 12));
  CAF_CHECK_EQUAL(values(e.days_of_week), "1,2,3,4,5");
  CAF_CHECK(!e.has_seconds);
  CAF_CHECK(!e.dom_restricted);
  CAF_CHECK(e.dow_restricted);
}

CAF_TEST(every field form is understood) {
  auto e = parsed("5/20 10-20/5 1,15,31 */4 3");
  CAF_CHECK_EQUAL(values(e.minutes), "5,25,45");       // a/s: a to the maximum
  CAF_CHECK_EQUAL(values(e.hours), "10,15,20");        // a-b/s
  CAF_CHECK_EQUAL(values(e.days_of_month), "1,15,31"); // list
  CAF_CHECK_EQUAL(values(e.months), "1,5,9");          // */s starts at the minimum
  CAF_CHECK_EQUAL(values(e.days_of_week), "3");        // n
  CAF_CHECK(e.dom_restricted);
  CAF_CHECK(e.dow_restricted);
  e = parsed("1,5-7,*/20 0-23/1 */10 12 *");
  CAF_CHECK_EQUAL(values(e.minutes), "0,1,5,6,7,20,40");
  CAF_CHECK_EQUAL(values(e.hours), range(0, 23));
  CAF_CHECK_EQUAL(values(e.days_of_month), "1,11,21,31");
  CAF_CHECK_EQUAL(values(e.months), "12");
  e = parsed("59 23 31 12 6");
  CAF_CHECK_EQUAL(values(e.minutes), "59");
  CAF_CHECK_EQUAL(values(e.hours), "23");
  e = parsed("0 0 1-1 1-12/12 0-6/3");
  CAF_CHECK_EQUAL(values(e.days_of_month), "1");
  CAF_CHECK_EQUAL(values(e.months), "1");
  CAF_CHECK_EQUAL(values(e.days_of_week), "0,3,6");
  e = parsed("*/100 0 1 1 *"); // a step past the range keeps its first value
  CAF_CHECK_EQUAL(values(e.minutes), "0");
}

CAF_TEST(month and weekday names are read in any case) {
  auto e = parsed("0 0 * JAN,mar-May,Dec SUN,Tue-thu");
  CAF_CHECK_EQUAL(values(e.months), "1,3,4,5,12");
  CAF_CHECK_EQUAL(values(e.days_of_week), "0,2,3,4");
  e = parsed("0 0 * jan-dec/3 mon-fri/2");
  CAF_CHECK_EQUAL(values(e.months), "1,4,7,10");
  CAF_CHECK_EQUAL(values(e.days_of_week), "1,3,5");
  e = parsed("0 0 * 2-MAR SAT");
  CAF_CHECK_EQUAL(values(e.months), "2,3");
  CAF_CHECK_EQUAL(values(e.days_of_week), "6");
}

CAF_TEST(seven is Sunday) {
  CAF_CHECK_EQUAL(values(parsed("0 0 * * 7").days_of_week), "0");
  CAF_CHECK_EQUAL(values(parsed("0 0 * * 5-7").days_of_week), "0,5,6");
  CAF_CHECK_EQUAL(values(parsed("0 0 * * 0-7").days_of_week), range(0, 6));
  CAF_CHECK_EQUAL(values(parsed("0 0 * * *").days_of_week), range(0, 6));
}

CAF_TEST(a question mark means any day) {
  auto e = parsed("0 0 ? * MON");
  CAF_CHECK_EQUAL(values(e.days_of_month), range(1, 31));
  CAF_CHECK(!e.dom_restricted);
  CAF_CHECK(e.dow_restricted);
  e = parsed("0 0 1 * ?");
  CAF_CHECK_EQUAL(values(e.days_of_week), range(0, 6));
  CAF_CHECK(e.dom_restricted);
  CAF_CHECK(!e.dow_restricted);
  CAF_CHECK(
    !parsed("0 0 */2 * *").dom_restricted); // Vixie: a field starting with * does not restrict
  CAF_CHECK(parsed("0 0 1-31/2 * *").dom_restricted);
}

CAF_TEST(six fields put seconds first) {
  auto e = parsed("*/20 0 12 * * *");
  CAF_CHECK(e.has_seconds);
  CAF_CHECK_EQUAL(values(e.seconds), "0,20,40");
  CAF_CHECK_EQUAL(values(e.minutes), "0");
  CAF_CHECK_EQUAL(values(e.hours), "12");
  CAF_CHECK_EQUAL(values(parsed("0-59 * * * * *").seconds), range(0, 59));
}

CAF_TEST(macros expand to their five fields) {
  auto same = [](std::string_view macro, std::string_view fields) {
    const auto a = parsed(macro);
    const auto b = parsed(fields);
    return a.seconds == b.seconds && a.minutes == b.minutes && a.hours == b.hours
           && a.days_of_month == b.days_of_month && a.months == b.months
           && a.days_of_week == b.days_of_week && a.dom_restricted == b.dom_restricted
           && a.dow_restricted == b.dow_restricted && !a.has_seconds;
  };
  CAF_CHECK(same("@yearly", "0 0 1 1 *"));
  CAF_CHECK(same("@annually", "0 0 1 1 *"));
  CAF_CHECK(same("@monthly", "0 0 1 * *"));
  CAF_CHECK(same("@weekly", "0 0 * * 0"));
  CAF_CHECK(same("@daily", "0 0 * * *"));
  CAF_CHECK(same("@midnight", "0 0 * * *"));
  CAF_CHECK(same("@hourly", "0 * * * *"));
  CAF_CHECK(same(" @Daily\t", "0 0 * * *"));
  CAF_CHECK_EQUAL(error_of("@reboot"), "unknown macro '@reboot'");
  CAF_CHECK_EQUAL(error_of("@daily 1"), "unknown macro '@daily 1'");
  CAF_CHECK_EQUAL(error_of("@"), "unknown macro '@'");
}

CAF_TEST(fields may be separated by runs of spaces and tabs) {
  auto e = parsed("  0\t\t12 \t *  *   1  ");
  CAF_CHECK_EQUAL(values(e.minutes), "0");
  CAF_CHECK_EQUAL(values(e.hours), "12");
  CAF_CHECK_EQUAL(values(e.days_of_week), "1");
}

CAF_TEST(the wrong number of fields is refused) {
  CAF_CHECK_EQUAL(error_of(""), "empty expression");
  CAF_CHECK_EQUAL(error_of(" \t "), "empty expression");
  CAF_CHECK_EQUAL(error_of("* * * *"), "expected 5 or 6 fields, got 4");
  CAF_CHECK_EQUAL(error_of("* * * * * * *"), "expected 5 or 6 fields, got 7");
  CAF_CHECK_EQUAL(error_of(std::string(257, ' ')), "the expression is longer than 256 characters");
  auto padded = "0 0 * * *" + std::string(256 - 9, ' ');
  CAF_CHECK_EQUAL(error_of(padded), "parsed");
  CAF_CHECK(!cron::parse("* * *").has_value()); // no error pointer: no crash
}

CAF_TEST(values out of range are refused naming the field) {
  CAF_CHECK_EQUAL(error_of("61 * * * *"), "minute: 61 is out of range 0-59");
  CAF_CHECK_EQUAL(error_of("60 * * * * *"), "second: 60 is out of range 0-59");
  CAF_CHECK_EQUAL(error_of("* 24 * * *"), "hour: 24 is out of range 0-23");
  CAF_CHECK_EQUAL(error_of("* * 0 * *"), "day of month: 0 is out of range 1-31");
  CAF_CHECK_EQUAL(error_of("* * 32 * *"), "day of month: 32 is out of range 1-31");
  CAF_CHECK_EQUAL(error_of("* * * 0 *"), "month: 0 is out of range 1-12");
  CAF_CHECK_EQUAL(error_of("* * * 13 *"), "month: 13 is out of range 1-12");
  CAF_CHECK_EQUAL(error_of("* * * * 8"), "day of week: 8 is out of range 0-7");
  CAF_CHECK_EQUAL(error_of("1-60 * * * *"), "minute: 60 is out of range 0-59");
  CAF_CHECK_EQUAL(error_of("99999999999 * * * *"), "minute: 99999999999 is out of range 0-59");
  CAF_CHECK_EQUAL(error_of("0 0 * * 8/2"), "day of week: 8 is out of range 0-7");
}

CAF_TEST(reversed ranges empty items and bad steps are refused) {
  CAF_CHECK_EQUAL(error_of("* 5-2 * * *"), "hour: '5-2' is a reversed range");
  CAF_CHECK_EQUAL(error_of("0 0 * * FRI-MON"), "day of week: 'FRI-MON' is a reversed range");
  CAF_CHECK_EQUAL(error_of("1,,2 * * * *"), "minute: empty item");
  CAF_CHECK_EQUAL(error_of(",1 * * * *"), "minute: empty item");
  CAF_CHECK_EQUAL(error_of("* * * 1, *"), "month: empty item");
  CAF_CHECK_EQUAL(error_of("*/0 * * * *"), "minute: step 0 must be at least 1");
  CAF_CHECK_EQUAL(error_of("* */x * * *"), "hour: 'x' is not a valid step");
  CAF_CHECK_EQUAL(error_of("* */ * * *"), "hour: '' is not a valid step");
  CAF_CHECK_EQUAL(error_of("1/2/3 * * * *"), "minute: '2/3' is not a valid step");
  CAF_CHECK_EQUAL(error_of("*/-1 * * * *"), "minute: '-1' is not a valid step");
}

CAF_TEST(garbage and misplaced names are refused) {
  CAF_CHECK_EQUAL(error_of("abc * * * *"), "minute: 'abc' is not a valid value");
  CAF_CHECK_EQUAL(error_of("* * * * * x"), "day of week: 'x' is not a valid value");
  CAF_CHECK_EQUAL(error_of("-1 * * * *"), "minute: '' is not a valid value");
  CAF_CHECK_EQUAL(error_of("1- * * * *"), "minute: '' is not a valid value");
  CAF_CHECK_EQUAL(error_of("1-2-3 * * * *"), "minute: '2-3' is not a valid value");
  CAF_CHECK_EQUAL(error_of("MON * * * *"), "minute: 'MON' is not a valid value");
  CAF_CHECK_EQUAL(error_of("* * * MON *"), "month: 'MON' is not a valid value");
  CAF_CHECK_EQUAL(error_of("* * * * JAN"), "day of week: 'JAN' is not a valid value");
  CAF_CHECK_EQUAL(error_of("* * * * MONDAY"), "day of week: 'MONDAY' is not a valid value");
  CAF_CHECK_EQUAL(error_of("? * * * *"), "minute: '?' is only allowed in the day fields");
  CAF_CHECK_EQUAL(error_of("* * ?/2 * *"), "day of month: '?' cannot take a step");
  CAF_CHECK_EQUAL(error_of("* * * * 1\n"), "day of week: '1\n' is not a valid value");
  CAF_CHECK_EQUAL(error_of("+1 * * * *"), "minute: '+1' is not a valid value");
  CAF_CHECK_EQUAL(error_of("* * L * *"), "day of month: 'L' is not a valid value");
}

CAF_TEST(next fires strictly after the given instant) {
  CAF_CHECK_EQUAL(next_utc("*/15 * * * *", utc(2026, 1, 1, 0, 7, 30)), utc(2026, 1, 1, 0, 15));
  CAF_CHECK_EQUAL(next_utc("*/15 * * * *", utc(2026, 1, 1, 0, 15)), utc(2026, 1, 1, 0, 30));
  CAF_CHECK_EQUAL(next_utc("*/15 * * * *", utc(2026, 1, 1, 23, 45)), utc(2026, 1, 2));
  CAF_CHECK_EQUAL(next_utc("* * * * *", utc(2026, 12, 31, 23, 59, 1)), utc(2027, 1, 1));
  CAF_CHECK_EQUAL(next_utc("@yearly", utc(2026, 1, 1)), utc(2027, 1, 1));
  CAF_CHECK_EQUAL(next_utc("@monthly", utc(2026, 1, 31, 12)), utc(2026, 2, 1));
  CAF_CHECK_EQUAL(next_utc("@weekly", utc(2026, 1, 1)), utc(2026, 1, 4)); // a Sunday
  CAF_CHECK_EQUAL(next_utc("@hourly", utc(2026, 1, 1, 5, 0, 1)), utc(2026, 1, 1, 6));
}

CAF_TEST(next walks steps ranges and lists) {
  CAF_CHECK_EQUAL(
    firings("0 9-17/4 * * *", "UTC", utc(2026, 1, 1), 4),
    (instants{utc(2026, 1, 1, 9), utc(2026, 1, 1, 13), utc(2026, 1, 1, 17), utc(2026, 1, 2, 9)}));
  CAF_CHECK_EQUAL(firings("0,45 6,18 * * *", "UTC", utc(2026, 1, 1, 6, 30), 4),
                  (instants{utc(2026, 1, 1, 6, 45), utc(2026, 1, 1, 18), utc(2026, 1, 1, 18, 45),
                            utc(2026, 1, 2, 6)}));
  CAF_CHECK_EQUAL(firings("*/20 * * * * *", "UTC", utc(2026, 1, 1, 12, 0, 5), 4),
                  (instants{utc(2026, 1, 1, 12, 0, 20), utc(2026, 1, 1, 12, 0, 40),
                            utc(2026, 1, 1, 12, 1), utc(2026, 1, 1, 12, 1, 20)}));
  CAF_CHECK_EQUAL(firings("0 0 1 JAN,JUL *", "UTC", utc(2026, 3, 1), 3),
                  (instants{utc(2026, 7, 1), utc(2027, 1, 1), utc(2027, 7, 1)}));
  // Weekdays at 08:30; 2026-01-02 is a Friday.
  CAF_CHECK_EQUAL(firings("30 8 * * MON-FRI", "UTC", utc(2026, 1, 2, 9), 2),
                  (instants{utc(2026, 1, 5, 8, 30), utc(2026, 1, 6, 8, 30)}));
}

CAF_TEST(a day matches either day field when both are restricted) {
  // 2026-03-01 and 2026-03-15 are Sundays: Mondays plus the 15th.
  CAF_CHECK_EQUAL(firings("0 0 15 * MON", "UTC", utc(2026, 3, 1), 4),
                  (instants{utc(2026, 3, 2), utc(2026, 3, 9), utc(2026, 3, 15), utc(2026, 3, 16)}));
  // Only one restricted: it alone decides.
  CAF_CHECK_EQUAL(firings("0 0 15 * *", "UTC", utc(2026, 3, 1), 2),
                  (instants{utc(2026, 3, 15), utc(2026, 4, 15)}));
  CAF_CHECK_EQUAL(firings("0 0 ? * MON", "UTC", utc(2026, 3, 1), 3),
                  (instants{utc(2026, 3, 2), utc(2026, 3, 9), utc(2026, 3, 16)}));
  CAF_CHECK_EQUAL(firings("0 0 15 * ?", "UTC", utc(2026, 3, 1), 2),
                  (instants{utc(2026, 3, 15), utc(2026, 4, 15)}));
}

CAF_TEST(February 29 fires in leap years only) {
  CAF_CHECK_EQUAL(firings("0 0 29 2 *", "UTC", utc(2026, 1, 1), 2),
                  (instants{utc(2028, 2, 29), utc(2032, 2, 29)}));
  CAF_CHECK_EQUAL(next_utc("0 0 29 2 *", utc(2097, 1, 1)), utc(2104, 2, 29)); // 2100 is not
  // With a weekday too, every Monday of February also fires (2026-02-02 is a Monday).
  CAF_CHECK_EQUAL(firings("0 0 29 2 MON", "UTC", utc(2026, 1, 1), 5),
                  (instants{utc(2026, 2, 2), utc(2026, 2, 9), utc(2026, 2, 16), utc(2026, 2, 23),
                            utc(2027, 2, 1)}));
}

CAF_TEST(impossible dates never fire) {
  CAF_CHECK(!next_utc("0 0 31 2 *", utc(2026, 1, 1)).has_value());
  CAF_CHECK(!next_utc("0 0 30 2 *", utc(2026, 1, 1)).has_value());
  CAF_CHECK(!next_utc("0 0 31 4,6,9,11 *", utc(2026, 1, 1)).has_value());
  CAF_CHECK(!next_utc("0 0 31 2 *", std::int64_t{1} << 51).has_value()); // out of range
  CAF_CHECK(!cron::next(cron::expression{}, zone("UTC"), utc(2026, 1, 1)).has_value());
}

CAF_TEST(a skipped local time fires at the spring forward transition) {
  // New York 2026-03-08: 02:00 EST becomes 03:00 EDT at 07:00Z.
  CAF_CHECK_EQUAL(firings("30 2 * * *", "America/New_York", utc(2026, 3, 6, 12), 3),
                  (instants{utc(2026, 3, 7, 7, 30), utc(2026, 3, 8, 7), utc(2026, 3, 9, 6, 30)}));
  // 01:00 EST, then 02:00 (skipped) and 03:00 EDT are both 07:00Z: one firing.
  CAF_CHECK_EQUAL(firings("0 * * * *", "America/New_York", utc(2026, 3, 8, 5, 30), 3),
                  (instants{utc(2026, 3, 8, 6), utc(2026, 3, 8, 7), utc(2026, 3, 8, 8)}));
  // Four skipped times collapse into one firing.
  CAF_CHECK_EQUAL(firings("*/15 2 * * *", "America/New_York", utc(2026, 3, 8), 2),
                  (instants{utc(2026, 3, 8, 7), utc(2026, 3, 9, 6)}));
  CAF_CHECK_EQUAL(firings("*/20 30 2 * * *", "America/New_York", utc(2026, 3, 8), 2),
                  (instants{utc(2026, 3, 8, 7), utc(2026, 3, 9, 6, 30)}));
  CAF_CHECK_EQUAL(cron::next(parsed("30 2 * * *"), zone("America/New_York"), utc(2026, 3, 8, 7)),
                  utc(2026, 3, 9, 6, 30));
}

CAF_TEST(a repeated local time fires at its first occurrence only) {
  // New York 2026-11-01: 02:00 EDT becomes 01:00 EST at 06:00Z.
  CAF_CHECK_EQUAL(firings("30 1 * * *", "America/New_York", utc(2026, 10, 31, 12), 2),
                  (instants{utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)}));
  // From inside the repeated hour (01:10 EST) the next 01:30 is the next day's.
  CAF_CHECK_EQUAL(firings("30 1 * * *", "America/New_York", utc(2026, 11, 1, 6, 10), 1),
                  (instants{utc(2026, 11, 2, 6, 30)}));
  // From inside the first 01:xx hour, 01:55 EDT is still to come.
  CAF_CHECK_EQUAL(firings("55 1 * * *", "America/New_York", utc(2026, 11, 1, 5, 50), 1),
                  (instants{utc(2026, 11, 1, 5, 55)}));
  // 01:00 and 01:30 EST are repeats: skipped.
  CAF_CHECK_EQUAL(firings("*/30 * * * *", "America/New_York", utc(2026, 11, 1, 4, 45), 5),
                  (instants{utc(2026, 11, 1, 5), utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 7),
                            utc(2026, 11, 1, 7, 30), utc(2026, 11, 1, 8)}));
}

CAF_TEST(Berlin fires across both 2026 transitions) {
  // 2026-03-29: 02:00 CET becomes 03:00 CEST at 01:00Z.
  CAF_CHECK_EQUAL(
    firings("30 2 * * *", "Europe/Berlin", utc(2026, 3, 28), 3),
    (instants{utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1), utc(2026, 3, 30, 0, 30)}));
  // 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00Z.
  CAF_CHECK_EQUAL(firings("30 2 * * *", "Europe/Berlin", utc(2026, 10, 24, 12), 2),
                  (instants{utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)}));
}

CAF_TEST(Sydney changes the other way round) {
  // 2026-04-05: 03:00 AEDT becomes 02:00 AEST at 2026-04-04T16:00Z.
  CAF_CHECK_EQUAL(firings("30 2 * * *", "Australia/Sydney", utc(2026, 4, 4), 2),
                  (instants{utc(2026, 4, 4, 15, 30), utc(2026, 4, 5, 16, 30)}));
  // 2026-10-04: 02:00 AEST becomes 03:00 AEDT at 2026-10-03T16:00Z.
  CAF_CHECK_EQUAL(firings("30 2 * * *", "Australia/Sydney", utc(2026, 10, 3), 2),
                  (instants{utc(2026, 10, 3, 16), utc(2026, 10, 4, 15, 30)}));
}

CAF_TEST(years past the transitions in the file follow its footer) {
  // 2040-03-11: New York's clocks go forward at 07:00Z; the file lists transitions to 2037.
  CAF_CHECK_EQUAL(firings("30 2 * * *", "America/New_York", utc(2040, 3, 10, 12), 2),
                  (instants{utc(2040, 3, 11, 7), utc(2040, 3, 12, 6, 30)}));
  CAF_CHECK_EQUAL(next_utc("0 12 * * *", utc(2040, 7, 4)), utc(2040, 7, 4, 12));
  CAF_CHECK_EQUAL(cron::next(parsed("0 12 * * *"), zone("America/New_York"), utc(2040, 7, 4)),
                  utc(2040, 7, 4, 16));
  CAF_CHECK_EQUAL(cron::next(parsed("0 12 * * *"), zone("America/New_York"), utc(2040, 1, 15)),
                  utc(2040, 1, 15, 17));
}

CAF_TEST(Kolkata fires five and a half hours before UTC) {
  CAF_CHECK_EQUAL(cron::next(parsed("0 9 * * *"), zone("Asia/Kolkata"), utc(2026, 6, 1)),
                  utc(2026, 6, 1, 3, 30));
}
