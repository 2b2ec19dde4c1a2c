#include "actors/ratelimit/rate_limiter.hpp"

#include <algorithm>
#include <vector>

namespace troupe::actors {

namespace {

using ns = std::chrono::nanoseconds;

std::uint32_t ceil_seconds(ns d) {
  if (d.count() <= 0) {
    return 0;
  }
  return static_cast<std::uint32_t>((d.count() + 999999999) / 1000000000);
}

} // namespace

bool gcra::check(const rate_limit& limit, clock::time_point now, rate_state& state) const {
  state.limit = limit.requests;
  state.window_s = limit.window_s;
  const ns window = std::chrono::seconds{limit.window_s};
  const ns interval = std::max(ns{1}, window / limit.requests);
  const auto tat = std::max(tat_, now);
  const auto next = tat + interval;
  if (next - now > window) {
    // Refused: one request fits again once the bucket drained to `window - interval`.
    state.allowed = false;
    state.remaining = 0;
    state.reset_s = std::max<std::uint32_t>(1, ceil_seconds(next - now - window));
    return false;
  }
  state.allowed = true;
  state.remaining = static_cast<std::uint32_t>(
    std::min<std::int64_t>((window - (next - now)) / interval, limit.requests));
  state.reset_s = ceil_seconds(next - now);
  return true;
}

void gcra::spend(const rate_limit& limit, clock::time_point now) {
  const ns interval = std::max(ns{1}, ns{std::chrono::seconds{limit.window_s}} / limit.requests);
  tat_ = std::max(tat_, now) + interval;
}

void rate_limiter::make_room(clock::time_point now) {
  for (auto i = buckets_.begin(); i != buckets_.end();) {
    i = i->second.first.idle(now) ? buckets_.erase(i) : std::next(i);
  }
  if (buckets_.size() < max_buckets_) {
    return;
  }
  std::vector<std::pair<clock::time_point, std::string>> by_use;
  by_use.reserve(buckets_.size());
  for (const auto& [key, entry] : buckets_) {
    by_use.emplace_back(entry.second, key);
  }
  std::nth_element(by_use.begin(), by_use.begin() + static_cast<long>(by_use.size() / 2),
                   by_use.end());
  for (std::size_t k = 0; k < by_use.size() / 2; ++k) {
    buckets_.erase(by_use[k].second);
  }
}

rate_state rate_limiter::acquire(const std::string& who, const char* own_name,
                                 const rate_limit& own, const rate_limit& tenant,
                                 clock::time_point now) {
  rate_state mine;
  rate_state theirs;
  mine.bucket = own_name;
  theirs.bucket = "tenant";
  gcra* bucket = nullptr;
  bool own_ok = true;
  if (own.requests > 0) {
    auto i = buckets_.find(who);
    if (i == buckets_.end()) {
      if (buckets_.size() >= max_buckets_) {
        make_room(now);
      }
      i = buckets_.emplace(who, std::make_pair(gcra{}, now)).first;
    }
    i->second.second = now;
    bucket = &i->second.first;
    own_ok = bucket->check(own, now, mine);
  }
  bool tenant_ok = true;
  if (tenant.requests > 0) {
    tenant_ok = tenant_.check(tenant, now, theirs);
  }
  if (!own_ok) {
    return mine;
  }
  if (!tenant_ok) {
    return theirs;
  }
  if (bucket != nullptr) {
    bucket->spend(own, now);
  }
  if (tenant.requests > 0) {
    tenant_.spend(tenant, now);
  }
  if (own.requests == 0 && tenant.requests == 0) {
    return rate_state{};
  }
  if (own.requests == 0) {
    return theirs;
  }
  if (tenant.requests == 0) {
    return mine;
  }
  // The fewest remaining; a tie goes to the narrower bucket (the principal's).
  return theirs.remaining < mine.remaining ? theirs : mine;
}

} // namespace troupe::actors
