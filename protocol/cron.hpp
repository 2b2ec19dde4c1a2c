#pragma once

// Cron expressions: parsing and the next firing instant in a time zone. No I/O here beyond
// what the zone was loaded with.

#include "protocol/zoneinfo.hpp"

#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace troupe::protocol::cron {

/// A parsed cron expression: the values each field allows, as bit sets indexed by value.
struct expression {
  std::bitset<60> seconds;       ///< 0-59; {0} for a five-field expression
  std::bitset<60> minutes;       ///< 0-59
  std::bitset<24> hours;         ///< 0-23
  std::bitset<32> days_of_month; ///< 1-31 (bit 0 unused)
  std::bitset<13> months;        ///< 1-12 (bit 0 unused)
  std::bitset<7> days_of_week;   ///< 0-6, Sunday = 0 (7 is read as Sunday)
  bool dom_restricted = false;   ///< the day-of-month field was not `*` or `?`
  bool dow_restricted = false;   ///< the day-of-week field was not `*` or `?`
  bool has_seconds = false;      ///< written with six fields, seconds first
};

/// The longest expression `parse` accepts, in characters.
inline constexpr std::size_t max_length = 256;

/// Parses `min hour dom month dow`, or `sec min hour dom month dow`, fields separated by spaces
/// or tabs. A field is a comma list of `*`, `n`, `a-b`, `*/s`, `a-b/s` and `a/s` (`a` to the
/// maximum), with step s ≥ 1; `?` means `*` in the day fields; months may be `JAN`-`DEC` and
/// days of week `SUN`-`SAT` (any case, also in ranges). Also `@yearly` (`@annually`),
/// `@monthly`, `@weekly`, `@daily` (`@midnight`) and `@hourly`. A day-of-month or day-of-week
/// field is restricted unless it is exactly `*` or `?` (so `*/2` is restricted). nullopt +
/// `error` (naming the field: `minute: 61 is out of range 0-59`) if it is not an expression.
[[nodiscard]] std::optional<expression> parse(std::string_view text, std::string* error = nullptr);

/// The first instant strictly after `after_utc_s` (Unix seconds) at which `e` fires in `z`, or
/// nullopt if it fires in none of the next 30 years (`0 0 31 2 *`) or `after_utc_s` is beyond
/// ±2^50 seconds.
///
/// The fields match local civil time in `z`, the days as in Vixie cron: a day matches if its
/// month does and, when both day fields are restricted, either of them; otherwise both.
/// Daylight saving time: each matching local time fires once. A local time that happens twice
/// (the clocks fall back) fires at its first occurrence only. A local time that does not happen
/// (the clocks spring forward) fires at the instant of the transition that skipped it, so
/// several skipped times collapse into one firing: `30 2 * * *` in New York fires at 03:00 EDT
/// on the day the clocks go from 02:00 to 03:00.
[[nodiscard]] std::optional<std::int64_t> next(const expression& e, const zoneinfo::zone& z,
                                               std::int64_t after_utc_s);

} // namespace troupe::protocol::cron
