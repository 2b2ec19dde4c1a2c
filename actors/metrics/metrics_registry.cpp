#include "actors/metrics/metrics_registry.hpp"

#include <algorithm>
#include <cstdio>

namespace troupe::actors {

namespace {
constexpr std::array<std::string_view, 4> rate_buckets{"principal", "tenant", "anonymous",
                                                       "inbound"};
constexpr std::array<std::string_view, 3> webhook_outcomes{"succeeded", "retried", "failed"};
constexpr std::array<std::string_view, 4> job_states{"succeeded", "retrying", "discarded",
                                                     "cancelled"};
} // namespace

struct metrics_registry::status_counters {
  std::array<std::atomic<std::uint64_t>, 500> by_status{}; // index = status - 100
};

metrics_registry::metrics_registry() = default;

metrics_registry::~metrics_registry() {
  for (auto& series : routes_) {
    for (auto& slot : series->by_method) {
      delete slot.load();
    }
  }
}

std::size_t metrics_registry::add_route(std::string route_template) {
  std::lock_guard<std::mutex> guard{routes_mutex_};
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    if (routes_[i]->route == route_template) {
      return i;
    }
  }
  auto series = std::make_unique<route_series>();
  series->route = std::move(route_template);
  routes_.push_back(std::move(series));
  return routes_.size() - 1;
}

std::size_t metrics_registry::method_index(std::string_view method) {
  for (std::size_t i = 0; i + 1 < methods.size(); ++i) {
    if (methods[i] == method) {
      return i;
    }
  }
  return methods.size() - 1;
}

void metrics_registry::observe_request(std::size_t route_index, std::size_t method_index,
                                       int status, std::chrono::nanoseconds duration) {
  auto& series = *routes_.at(route_index);
  auto& slot = series.by_method.at(method_index);
  auto* counters = slot.load(std::memory_order_acquire);
  if (counters == nullptr) {
    auto fresh = std::make_unique<status_counters>();
    status_counters* expected = nullptr;
    if (slot.compare_exchange_strong(expected, fresh.get(), std::memory_order_acq_rel)) {
      counters = fresh.release();
    } else {
      counters = expected; // another thread won the race
    }
  }
  const auto index = static_cast<std::size_t>(std::clamp(status, 100, 599) - 100);
  counters->by_status[index].fetch_add(1, std::memory_order_relaxed);

  const double seconds = std::chrono::duration<double>(duration).count();
  const auto bucket = static_cast<std::size_t>(
    std::lower_bound(buckets.begin(), buckets.end(), seconds) - buckets.begin());
  series.bucket_counts[bucket].fetch_add(1, std::memory_order_relaxed);
  series.count.fetch_add(1, std::memory_order_relaxed);
  series.sum_ns.fetch_add(static_cast<std::uint64_t>(duration.count()), std::memory_order_relaxed);
}

void metrics_registry::count_job(std::string_view state) {
  for (std::size_t i = 0; i < job_states.size(); ++i) {
    if (job_states[i] == state) {
      jobs_[i].fetch_add(1, std::memory_order_relaxed);
    }
  }
}

void metrics_registry::count_webhook_attempt(std::string_view outcome) {
  for (std::size_t i = 0; i < webhook_outcomes.size(); ++i) {
    if (webhook_outcomes[i] == outcome) {
      webhook_attempts_[i].fetch_add(1, std::memory_order_relaxed);
    }
  }
}

void metrics_registry::count_rate_limited(std::string_view bucket) {
  for (std::size_t i = 0; i < rate_buckets.size(); ++i) {
    if (rate_buckets[i] == bucket) {
      rate_limited_[i].fetch_add(1, std::memory_order_relaxed);
    }
  }
}

void metrics_registry::count_actor(std::string_view kind, int delta) {
  std::lock_guard<std::mutex> guard{actors_mutex_};
  auto i = std::find_if(actor_counts_.begin(), actor_counts_.end(),
                        [&](const auto& entry) { return entry.first == kind; });
  if (i == actor_counts_.end()) {
    actor_counts_.emplace_back(std::string{kind}, delta);
  } else {
    i->second += delta;
  }
}

namespace {

// Prometheus label values escape backslash, double quote and newline.
std::string label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string format_double(double value) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", value);
  return buf;
}

} // namespace

std::string metrics_registry::render() const {
  std::lock_guard<std::mutex> routes_guard{routes_mutex_};
  std::string out;
  out += "# HELP troupe_http_requests_total HTTP requests answered, by method, route template "
         "and status.\n# TYPE troupe_http_requests_total counter\n";
  for (const auto& series : routes_) {
    const auto route = label_value(series->route);
    for (std::size_t m = 0; m < methods.size(); ++m) {
      const auto* counters = series->by_method[m].load(std::memory_order_acquire);
      if (counters == nullptr) {
        continue;
      }
      for (std::size_t s = 0; s < counters->by_status.size(); ++s) {
        const auto n = counters->by_status[s].load(std::memory_order_relaxed);
        if (n == 0) {
          continue;
        }
        out += "troupe_http_requests_total{method=\"";
        out += methods[m];
        out += "\",route=\"" + route + "\",status=\"" + std::to_string(s + 100) + "\"} ";
        out += std::to_string(n) + "\n";
      }
    }
  }
  out += "# HELP troupe_http_request_duration_seconds Time from a complete request to its "
         "response being handed to the socket, by route template.\n"
         "# TYPE troupe_http_request_duration_seconds histogram\n";
  for (const auto& series : routes_) {
    const auto count = series->count.load(std::memory_order_relaxed);
    if (count == 0) {
      continue;
    }
    const auto route = label_value(series->route);
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b <= buckets.size(); ++b) {
      cumulative += series->bucket_counts[b].load(std::memory_order_relaxed);
      const auto le = b < buckets.size() ? format_double(buckets[b]) : std::string{"+Inf"};
      out += "troupe_http_request_duration_seconds_bucket{route=\"";
      out += route;
      out += "\",le=\"";
      out += le;
      out += "\"} ";
      out += std::to_string(cumulative);
      out += '\n';
    }
    const double sum = static_cast<double>(series->sum_ns.load(std::memory_order_relaxed)) / 1e9;
    out += "troupe_http_request_duration_seconds_sum{route=\"" + route + "\"} " + format_double(sum)
           + "\n";
    // Count from the buckets, so that _count equals the +Inf bucket even mid-update.
    out += "troupe_http_request_duration_seconds_count{route=\"" + route + "\"} "
           + std::to_string(cumulative) + "\n";
  }
  out += "# HELP troupe_actors Live actors of this node, by kind.\n# TYPE troupe_actors gauge\n";
  std::lock_guard<std::mutex> guard{actors_mutex_};
  for (const auto& [kind, n] : actor_counts_) {
    out += "troupe_actors{kind=\"" + label_value(kind) + "\"} " + std::to_string(n) + "\n";
  }
  out += "# HELP troupe_audit_entries_total Audit entries committed by this node.\n"
         "# TYPE troupe_audit_entries_total counter\n"
         "troupe_audit_entries_total "
         + std::to_string(audit_entries_.load(std::memory_order_relaxed)) + "\n";
  out += "# HELP troupe_rate_limited_total Requests refused by a rate limit, by bucket.\n"
         "# TYPE troupe_rate_limited_total counter\n";
  for (std::size_t i = 0; i < rate_buckets.size(); ++i) {
    out += "troupe_rate_limited_total{bucket=\"" + std::string{rate_buckets[i]} + "\"} "
           + std::to_string(rate_limited_[i].load(std::memory_order_relaxed)) + "\n";
  }
  out += "# HELP troupe_jobs_total Job attempts by the state they ended in.\n"
         "# TYPE troupe_jobs_total counter\n";
  for (std::size_t i = 0; i < job_states.size(); ++i) {
    out += "troupe_jobs_total{state=\"" + std::string{job_states[i]} + "\"} "
           + std::to_string(jobs_[i].load(std::memory_order_relaxed)) + "\n";
  }
  out += "# HELP troupe_webhook_deliveries_total Webhook delivery attempts by outcome.\n"
         "# TYPE troupe_webhook_deliveries_total counter\n";
  for (std::size_t i = 0; i < webhook_outcomes.size(); ++i) {
    out += "troupe_webhook_deliveries_total{outcome=\"" + std::string{webhook_outcomes[i]} + "\"} "
           + std::to_string(webhook_attempts_[i].load(std::memory_order_relaxed)) + "\n";
  }
  return out;
}

} // namespace troupe::actors
