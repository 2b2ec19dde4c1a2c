#include "protocol/jobs.hpp"

#include <algorithm>
#include <cmath>

namespace troupe::protocol::jobs {

std::int64_t retry_delay_ms(std::uint32_t base_ms, std::uint32_t max_ms, std::uint32_t n,
                            double unit) {
  const auto exponent = std::min<std::uint32_t>(n == 0 ? 0 : n - 1, 62);
  const double raw
    = std::min(static_cast<double>(max_ms),
               static_cast<double>(base_ms) * std::ldexp(1.0, static_cast<int>(exponent)));
  const double jitter = 0.9 + 0.2 * std::clamp(unit, 0.0, 1.0);
  return std::max<std::int64_t>(0, std::llround(raw * jitter));
}

bool valid_type(std::string_view type) {
  if (type.empty() || type.size() > 100) {
    return false;
  }
  bool segment_start = true;
  for (char c : type) {
    if (c == '.') {
      if (segment_start) {
        return false;
      }
      segment_start = true;
      continue;
    }
    const bool lower = c >= 'a' && c <= 'z';
    const bool digit = c >= '0' && c <= '9';
    if (segment_start ? !lower : !(lower || digit || c == '_')) {
      return false;
    }
    segment_start = false;
  }
  return !segment_start;
}

bool valid_schedule_name(std::string_view name) {
  if (name.empty() || name.size() > 100) {
    return false;
  }
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-'))) {
      return false;
    }
  }
  return true;
}

} // namespace troupe::protocol::jobs
