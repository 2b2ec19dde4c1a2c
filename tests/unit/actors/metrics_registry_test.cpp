#define CAF_SUITE actors.metrics_registry

#include "actors/metrics/metrics_registry.hpp"

#include <caf/test/unit_test.hpp>

#include <thread>
#include <vector>

using namespace troupe::actors;
using namespace std::chrono_literals;

namespace {

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

} // namespace

CAF_TEST(requests are counted by method route and status) {
  metrics_registry m;
  auto health = m.add_route("/healthz");
  auto get = metrics_registry::method_index("GET");
  m.observe_request(health, get, 200, 50us);
  m.observe_request(health, get, 200, 50us);
  m.observe_request(health, metrics_registry::method_index("POST"), 405, 10us);
  auto text = m.render();
  CAF_CHECK(contains(text, "troupe_http_requests_total{method=\"GET\",route=\"/healthz\","
                           "status=\"200\"} 2\n"));
  CAF_CHECK(contains(text, "troupe_http_requests_total{method=\"POST\",route=\"/healthz\","
                           "status=\"405\"} 1\n"));
  CAF_CHECK(contains(text, "# TYPE troupe_http_requests_total counter"));
}

CAF_TEST(the histogram is cumulative and its count matches the inf bucket) {
  metrics_registry m;
  auto r = m.add_route("/x");
  m.observe_request(r, 0, 200, 50us); // ≤ 0.0001
  m.observe_request(r, 0, 200, 2ms);  // ≤ 0.0025
  m.observe_request(r, 0, 200, 3s);   // only +Inf
  auto text = m.render();
  CAF_CHECK(contains(text, "_bucket{route=\"/x\",le=\"0.0001\"} 1\n"));
  CAF_CHECK(contains(text, "_bucket{route=\"/x\",le=\"0.001\"} 1\n"));
  CAF_CHECK(contains(text, "_bucket{route=\"/x\",le=\"0.0025\"} 2\n"));
  CAF_CHECK(contains(text, "_bucket{route=\"/x\",le=\"2.5\"} 2\n"));
  CAF_CHECK(contains(text, "_bucket{route=\"/x\",le=\"+Inf\"} 3\n"));
  CAF_CHECK(contains(text, "troupe_http_request_duration_seconds_count{route=\"/x\"} 3\n"));
  CAF_CHECK(contains(text, "troupe_http_request_duration_seconds_sum{route=\"/x\"} 3.00205\n"));
}

CAF_TEST(registering a template twice keeps its series) {
  metrics_registry m;
  auto a = m.add_route("/a");
  auto b = m.add_route("/b");
  CAF_CHECK_NOT_EQUAL(a, b);
  CAF_CHECK_EQUAL(m.add_route("/a"), a);
}

CAF_TEST(unknown methods and out of range statuses are clamped into known series) {
  metrics_registry m;
  auto r = m.add_route("/x");
  m.observe_request(r, metrics_registry::method_index("BREW"), 999, 1us);
  auto text = m.render();
  CAF_CHECK(contains(text, "method=\"OTHER\",route=\"/x\",status=\"599\"} 1"));
}

CAF_TEST(label values are escaped) {
  metrics_registry m;
  m.count_actor("a\"b\\c\nd", 1);
  CAF_CHECK(contains(m.render(), "troupe_actors{kind=\"a\\\"b\\\\c\\nd\"} 1"));
}

CAF_TEST(concurrent observers lose no counts) {
  metrics_registry m;
  auto r = m.add_route("/x");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        m.observe_request(r, 0, 200, 1us);
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  CAF_CHECK(contains(m.render(), "status=\"200\"} 40000\n"));
}
