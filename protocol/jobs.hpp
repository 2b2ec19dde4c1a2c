#pragma once

// The pure parts of jobs (API.md "Jobs and schedules", docs/jobs.md): the retry backoff and
// the checks of a job's fields. No I/O here.

#include <cstdint>
#include <string_view>

namespace troupe::protocol::jobs {

/// The delay before the next attempt after attempt `n` (n ≥ 1) failed, in milliseconds:
/// `min(max_ms, base_ms · 2^(n-1))` with ±10 % jitter (`unit` in [0, 1) picks it).
std::int64_t retry_delay_ms(std::uint32_t base_ms, std::uint32_t max_ms, std::uint32_t n,
                            double unit);

/// A job type or function name: `^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`, at most 100 characters.
bool valid_type(std::string_view type);

/// A schedule name: `^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$`.
bool valid_schedule_name(std::string_view name);

} // namespace troupe::protocol::jobs
