#pragma once

// Rate limits of one tenant (API.md "Rate limits and quotas", docs/rate-limits.md): GCRA
// buckets per principal, per anonymous client IP and for the tenant, owned by the tenant actor
// (exact without shared state). Plain class: no CAF, no I/O; time comes from the caller.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace troupe::actors {

/// `requests` per `window_s` seconds; 0 requests: no limit.
struct rate_limit {
  std::uint32_t requests = 0;
  std::uint32_t window_s = 60;
};

/// What the headers of a response say about the bucket with the fewest remaining requests
/// (or the bucket that refused).
struct rate_state {
  std::string bucket; ///< "principal", "tenant", "anonymous"; empty: no limit applies
  std::uint32_t limit = 0;
  std::uint32_t window_s = 0;
  std::uint32_t remaining = 0;
  std::uint32_t reset_s = 0; ///< seconds until the bucket is full again (refused: until one fits)
  bool allowed = true;
};

/// GCRA (the generic cell rate algorithm): a bucket of `requests` that refills one request
/// every window/requests; a request is allowed if it fits, and then spends one.
class gcra {
public:
  using clock = std::chrono::steady_clock;

  /// Would a request fit at `now` (without spending)? Fills `state` either way.
  bool check(const rate_limit& limit, clock::time_point now, rate_state& state) const;
  /// Spends one request (after a successful check of every bucket).
  void spend(const rate_limit& limit, clock::time_point now);
  /// True once the bucket is full again at `now` (it can be forgotten).
  bool idle(clock::time_point now) const {
    return tat_ <= now;
  }

private:
  clock::time_point tat_{}; // theoretical arrival time
};

/// The buckets of one tenant. Idle buckets (full again) are forgotten when there are more than
/// `max_buckets`; a flood of distinct principals or IPs that keeps them all busy forgets the
/// oldest half instead (docs/rate-limits.md "Memory").
class rate_limiter {
public:
  using clock = gcra::clock;

  explicit rate_limiter(std::size_t max_buckets = 100000) : max_buckets_(max_buckets) {}

  /// Checks the request of `who` (a principal key, or "ip:<address>" for anonymous ones,
  /// limited by `own`) and the tenant's bucket (`tenant`), and spends one of each if both
  /// allow. The answer names the refusing bucket, else the one with fewer remaining.
  rate_state acquire(const std::string& who, const char* own_name, const rate_limit& own,
                     const rate_limit& tenant, clock::time_point now);

  std::size_t buckets() const {
    return buckets_.size() + 1;
  }

private:
  void make_room(clock::time_point now);
  std::size_t max_buckets_;
  gcra tenant_;
  std::unordered_map<std::string, std::pair<gcra, clock::time_point>> buckets_; // last use
};

} // namespace troupe::actors
