#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::actors {

/// Lock-free request counters and latency histograms, written by HTTP io threads and read by
/// the `metrics` actor when `/metrics` is scraped.
///
/// Routes are registered once, before serving (`add_route`); afterwards every write is a few
/// relaxed atomic increments. Thread-safe.
class metrics_registry {
public:
  /// HTTP methods that get their own label value; anything else counts as "OTHER".
  static constexpr std::array<std::string_view, 8> methods{"GET",   "HEAD",   "POST",    "PUT",
                                                           "PATCH", "DELETE", "OPTIONS", "OTHER"};

  /// Upper bounds of the latency histogram's buckets, in seconds (`+Inf` is implied).
  static constexpr std::array<double, 14> buckets{
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5};

  metrics_registry();
  ~metrics_registry();
  metrics_registry(const metrics_registry&) = delete;
  metrics_registry& operator=(const metrics_registry&) = delete;

  /// Registers a route template (e.g. "/problems/{code}") and returns its index; a template
  /// registered before keeps its index (and its counts), so a restarted server reuses it.
  /// Call while no server observes requests: observers index the table without a lock.
  std::size_t add_route(std::string route_template);

  /// Counts one finished request. `method_index` indexes `methods`; `status` is 100–599.
  void observe_request(std::size_t route_index, std::size_t method_index, int status,
                       std::chrono::nanoseconds duration);

  /// Adds `delta` to the `troupe_actors{kind}` gauge.
  void count_actor(std::string_view kind, int delta);

  /// Adds `n` to `troupe_audit_entries_total` (entries committed by this node).
  void count_audit_entries(std::uint64_t n) {
    audit_entries_.fetch_add(n, std::memory_order_relaxed);
  }

  /// Adds one to `troupe_rate_limited_total{bucket}` (principal, tenant or anonymous).
  void count_rate_limited(std::string_view bucket);

  /// Adds one to `troupe_webhook_deliveries_total{outcome}`: an attempt that `succeeded`, or
  /// one that `failed` and will be `retried` or has `failed` for good.
  void count_webhook_attempt(std::string_view outcome);
  /// Adds one to `troupe_jobs_total{state}`: a job attempt that ended `succeeded`, `retrying`,
  /// `discarded` or `cancelled`.
  void count_job(std::string_view state);

  /// The Prometheus text exposition (format 0.0.4) of every series.
  std::string render() const;

  /// The index of `method` in `methods` ("OTHER" for unknown ones).
  static std::size_t method_index(std::string_view method);

private:
  struct status_counters; // 500 counters, allocated on first use of a (route, method)
  struct route_series {
    std::string route;
    std::array<std::atomic<status_counters*>, methods.size()> by_method{};
    std::array<std::atomic<std::uint64_t>, buckets.size() + 1> bucket_counts{};
    std::atomic<std::uint64_t> count{0};
    std::atomic<std::uint64_t> sum_ns{0};
  };

  mutable std::mutex routes_mutex_; // guards growth of routes_ against render()
  std::vector<std::unique_ptr<route_series>> routes_;
  mutable std::mutex actors_mutex_; // guards actor_counts_: changes are rare
  std::vector<std::pair<std::string, std::int64_t>> actor_counts_;
  std::atomic<std::uint64_t> audit_entries_{0};
  std::array<std::atomic<std::uint64_t>, 4>
    rate_limited_{}; // principal, tenant, anonymous, inbound
  std::array<std::atomic<std::uint64_t>, 3> webhook_attempts_{}; // succeeded, retried, failed
  std::array<std::atomic<std::uint64_t>, 4> jobs_{}; // succeeded, retrying, discarded, cancelled
};

} // namespace troupe::actors
