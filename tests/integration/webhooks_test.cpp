#define CAF_SUITE storage.webhooks

#include "storage/webhooks.hpp"

#include "protocol/request_id.hpp"

#include "tests/support/tenancy_fixture.hpp"

#include <caf/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <set>
#include <thread>

using namespace troupe;

namespace {

using tests::alpha_id;
using tests::beta_id;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

struct fixture : tests::tenancy_fixture {
  template <class T>
  caf::expected<T> hooks(std::optional<std::string> tenant,
                         std::function<caf::expected<T>(storage::webhook_repository&)> body) {
    return on_pool<T>(std::move(tenant), [body](storage::pg_transaction& tx) {
      storage::webhook_repository repo{tx};
      return body(repo);
    });
  }

  std::string endpoint(const std::string& tenant, std::optional<std::vector<std::string>> events,
                       bool ordered = false) {
    const auto id = protocol::new_uuid_v7();
    storage::endpoint_fields f;
    f.url = "https://example.com/hook";
    f.events = std::move(events);
    f.ordered = ordered;
    auto row = hooks<storage::endpoint_row>(tenant, [&](storage::webhook_repository& repo) {
      return repo.insert_endpoint(id, f, "sealed-secret");
    });
    CAF_REQUIRE(row);
    return id;
  }

  storage::event_row publish(const std::string& tenant, const std::string& type) {
    auto event = hooks<storage::event_row>(
      tenant, [&](storage::webhook_repository& repo) { return repo.publish(type, R"({"n":1})"); });
    CAF_REQUIRE(event);
    return *event;
  }

  std::vector<storage::claimed_delivery> claim(const std::string& tenant,
                                               const std::string& instance,
                                               std::int64_t lease_s = 60,
                                               std::uint32_t limit = 100) {
    auto claimed
      = hooks<std::vector<storage::claimed_delivery>>(tenant, [&](storage::webhook_repository& r) {
          return r.claim(limit, lease_s, instance, true);
        });
    CAF_REQUIRE(claimed);
    return *claimed;
  }

  void alive(const std::string& instance) {
    auto seen
      = on_pool<bool>(std::nullopt, [instance](storage::pg_transaction& tx) -> caf::expected<bool> {
          if (auto err = storage::dispatcher_alive(tx, instance)) {
            return err;
          }
          return true;
        });
    CAF_REQUIRE(seen);
  }

  std::vector<std::string> due() {
    auto queued = on_pool<std::vector<std::string>>(std::nullopt, [](storage::pg_transaction& tx) {
      return storage::due_tenants(tx, 10, false);
    });
    CAF_REQUIRE(queued);
    return *queued;
  }

  storage::attempt_result result(const storage::claimed_delivery& d, std::string status,
                                 std::optional<std::int32_t> code) {
    storage::attempt_result r;
    r.delivery_id = d.id;
    r.endpoint_id = d.endpoint_id;
    r.n = d.attempt_count + 1;
    r.at_ms = now_ms();
    r.status_code = code;
    r.duration_ms = 3;
    r.status = std::move(status);
    r.next_attempt_ms = now_ms() + 60000;
    return r;
  }

  std::vector<storage::endpoint_to_disable>
  record(const std::string& tenant, const std::vector<storage::attempt_result>& results,
         const std::string& instance, std::uint32_t disable_after = 10) {
    auto out = hooks<std::vector<storage::endpoint_to_disable>>(
      tenant, [&](storage::webhook_repository& repo) {
        return repo.record(results, instance, disable_after);
      });
    CAF_REQUIRE(out);
    return *out;
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(webhooks_tests, fixture)

CAF_TEST(publishing writes one delivery per subscribed enabled endpoint) {
  const auto all = endpoint(alpha_id, std::nullopt);
  const auto orders = endpoint(alpha_id, std::vector<std::string>{"order.*"});
  endpoint(alpha_id, std::vector<std::string>{"user.created"});
  const auto other = endpoint(beta_id, std::nullopt);
  auto event = publish(alpha_id, "order.item.added");
  CAF_CHECK_EQUAL(event.deliveries, 2u);
  auto claimed = claim(alpha_id, "node-1/a");
  std::set<std::string> endpoints;
  for (const auto& d : claimed) {
    endpoints.insert(d.endpoint_id);
    CAF_CHECK_EQUAL(d.event_id, event.id);
    CAF_CHECK_EQUAL(d.tenant_id, alpha_id);
    auto body = nlohmann::json::parse(d.body);
    CAF_CHECK_EQUAL(body["id"], event.id);
    CAF_CHECK_EQUAL(body["type"], "order.item.added");
    CAF_CHECK_EQUAL(body["tenant_id"], alpha_id);
    CAF_CHECK_EQUAL(body["payload"]["n"], 1);
  }
  CAF_CHECK_EQUAL(endpoints, (std::set<std::string>{all, orders}));
  // Beta's endpoint got nothing, and beta sees none of alpha's rows.
  CAF_CHECK(claim(beta_id, "node-1/a").empty());
  auto seen = hooks<std::optional<storage::delivery_row>>(
    beta_id, [&](storage::webhook_repository& repo) { return repo.delivery(claimed[0].id); });
  CAF_REQUIRE(seen);
  CAF_CHECK(!*seen);
  (void)other;
}

CAF_TEST(a claimed delivery is leased and claimed again only when the lease ran out) {
  alive("node-1/a");
  alive("node-2/b");
  endpoint(alpha_id, std::nullopt);
  publish(alpha_id, "order.created");
  CAF_CHECK_EQUAL(due(), std::vector<std::string>{alpha_id});
  auto first = claim(alpha_id, "node-1/a", 1);
  CAF_REQUIRE_EQUAL(first.size(), 1u);
  // Leased: another node finds nothing, and the tenant is not due until the lease ends.
  CAF_CHECK(claim(alpha_id, "node-2/b").empty());
  CAF_CHECK(due().empty());
  std::this_thread::sleep_for(std::chrono::milliseconds{1100});
  auto again = claim(alpha_id, "node-2/b");
  CAF_REQUIRE_EQUAL(again.size(), 1u);
  CAF_CHECK_EQUAL(again[0].id, first[0].id);
  // The first holder's late result is not recorded: the delivery is no longer its own.
  record(alpha_id, {result(first[0], "succeeded", 200)}, "node-1/a");
  auto d = hooks<std::optional<storage::delivery_row>>(
    alpha_id, [&](storage::webhook_repository& repo) { return repo.delivery(first[0].id); });
  CAF_REQUIRE(d && *d);
  CAF_CHECK_EQUAL((*d)->status, "pending");
  CAF_CHECK_EQUAL((*d)->attempt_count, 0);
}

CAF_TEST(what a gone dispatcher held is taken back at once and a live one keeps its own) {
  alive("node-1/old");
  alive("node-1/new");
  endpoint(alpha_id, std::nullopt);
  publish(alpha_id, "order.created");
  auto held = claim(alpha_id, "node-1/old", 3600);
  CAF_REQUIRE_EQUAL(held.size(), 1u);
  // Its holder is alive, even with the same node id: nobody takes it.
  CAF_CHECK(claim(alpha_id, "node-1/new").empty());
  // The holder stops refreshing its row (its process died): it is taken back at once.
  auto stale = on_pool<bool>(std::nullopt, [](storage::pg_transaction& tx) -> caf::expected<bool> {
    constexpr storage::pg_statement age{
      "test_age_dispatcher", "UPDATE webhook_dispatchers SET seen_at = now() - interval '1 minute' "
                             "WHERE instance = 'node-1/old'"};
    auto rows = tx.execute(age);
    if (!rows) {
      return std::move(rows.error());
    }
    return rows->affected() == 1;
  });
  CAF_REQUIRE(stale && *stale);
  auto back = claim(alpha_id, "node-1/new");
  CAF_REQUIRE_EQUAL(back.size(), 1u);
  CAF_CHECK_EQUAL(back[0].id, held[0].id);
  // A dispatcher that never had a row is gone too.
  publish(alpha_id, "order.created");
  auto other = claim(alpha_id, "node-3/never", 3600);
  CAF_REQUIRE_EQUAL(other.size(), 1u);
  auto taken = claim(alpha_id, "node-1/new");
  CAF_REQUIRE_EQUAL(taken.size(), 1u);
  CAF_CHECK_EQUAL(taken[0].id, other[0].id);
}

CAF_TEST(results are recorded with their attempts and retries become due) {
  endpoint(alpha_id, std::nullopt);
  publish(alpha_id, "order.created");
  auto claimed = claim(alpha_id, "node-1/a");
  CAF_REQUIRE_EQUAL(claimed.size(), 1u);
  auto r = result(claimed[0], "pending", 503);
  r.response_body = "busy";
  r.next_attempt_ms = now_ms() - 1; // due at once
  record(alpha_id, {r}, "node-1/a");
  auto retried = claim(alpha_id, "node-1/a");
  CAF_REQUIRE_EQUAL(retried.size(), 1u);
  CAF_CHECK_EQUAL(retried[0].attempt_count, 1);
  record(alpha_id, {result(retried[0], "succeeded", 204)}, "node-1/a");
  auto attempts = hooks<std::vector<storage::attempt_row>>(
    alpha_id, [&](storage::webhook_repository& repo) { return repo.attempts(claimed[0].id); });
  CAF_REQUIRE(attempts);
  CAF_REQUIRE_EQUAL(attempts->size(), 2u);
  CAF_CHECK_EQUAL((*attempts)[0].status_code, 503);
  CAF_CHECK_EQUAL((*attempts)[0].response_body, std::string{"busy"});
  CAF_CHECK_EQUAL((*attempts)[1].n, 2);
  auto d = hooks<std::optional<storage::delivery_row>>(
    alpha_id, [&](storage::webhook_repository& repo) { return repo.delivery(claimed[0].id); });
  CAF_REQUIRE(d && *d);
  CAF_CHECK_EQUAL((*d)->status, "succeeded");
  CAF_CHECK_EQUAL((*d)->attempt_count, 2);
  CAF_CHECK(!(*d)->next_attempt_at);
}

CAF_TEST(an ordered endpoint gives one delivery at a time in event order) {
  endpoint(alpha_id, std::nullopt, true);
  const auto e1 = publish(alpha_id, "a.one");
  const auto e2 = publish(alpha_id, "a.two");
  auto first = claim(alpha_id, "node-1/a");
  CAF_REQUIRE_EQUAL(first.size(), 1u);
  CAF_CHECK_EQUAL(first[0].event_id, e1.id);
  CAF_CHECK(claim(alpha_id, "node-1/a").empty());
  // A retry keeps the line blocked; its end opens it.
  auto r = result(first[0], "pending", 500);
  r.next_attempt_ms = now_ms() + 60000;
  record(alpha_id, {r}, "node-1/a");
  CAF_CHECK(claim(alpha_id, "node-1/a").empty());
  auto retry = hooks<std::optional<storage::delivery_row>>(
    alpha_id, [&](storage::webhook_repository& repo) { return repo.retry(first[0].id); });
  CAF_REQUIRE(retry && *retry);
  auto again = claim(alpha_id, "node-1/a");
  CAF_REQUIRE_EQUAL(again.size(), 1u);
  CAF_CHECK_EQUAL(again[0].event_id, e1.id);
  record(alpha_id, {result(again[0], "failed", 500)}, "node-1/a");
  auto second = claim(alpha_id, "node-1/a");
  CAF_REQUIRE_EQUAL(second.size(), 1u);
  CAF_CHECK_EQUAL(second[0].event_id, e2.id);
}

CAF_TEST(consecutive failed deliveries name the endpoint to disable and a success resets) {
  const auto id = endpoint(alpha_id, std::nullopt);
  for (int i = 0; i < 3; ++i) {
    publish(alpha_id, "order.created");
  }
  auto claimed = claim(alpha_id, "node-1/a");
  CAF_REQUIRE_EQUAL(claimed.size(), 3u);
  auto none = record(alpha_id, {result(claimed[0], "failed", 500)}, "node-1/a", 2);
  CAF_CHECK(none.empty());
  record(alpha_id, {result(claimed[1], "succeeded", 200)}, "node-1/a", 2);
  CAF_CHECK(record(alpha_id, {result(claimed[2], "failed", 500)}, "node-1/a", 2).empty());
  for (int i = 0; i < 1; ++i) {
    publish(alpha_id, "order.created");
  }
  auto more = claim(alpha_id, "node-1/a");
  CAF_REQUIRE_EQUAL(more.size(), 1u);
  auto disable = record(alpha_id, {result(more[0], "failed", 500)}, "node-1/a", 2);
  CAF_REQUIRE_EQUAL(disable.size(), 1u);
  CAF_CHECK_EQUAL(disable[0].endpoint_id, id);
  CAF_CHECK_EQUAL(disable[0].reason, "failures");
  auto disabled = hooks<bool>(alpha_id, [&](storage::webhook_repository& repo) {
    return repo.disable_endpoint(id, "failures");
  });
  CAF_REQUIRE(disabled);
  CAF_CHECK(*disabled);
  // A disabled endpoint gets no new deliveries.
  CAF_CHECK_EQUAL(publish(alpha_id, "order.created").deliveries, 0u);
}

CAF_TEST(inbound events are stored once per provider event id and per tenant) {
  const auto body = R"({"id":"evt_1"})";
  auto first = hooks<std::pair<storage::inbound_event_row, bool>>(
    alpha_id, [&](storage::webhook_repository& repo) {
      return repo.insert_inbound(protocol::new_uuid_v7(), "stripe", "evt_1",
                                 protocol::new_uuid_v7(), body);
    });
  CAF_REQUIRE(first);
  CAF_CHECK(first->second);
  auto again = hooks<std::pair<storage::inbound_event_row, bool>>(
    alpha_id, [&](storage::webhook_repository& repo) {
      return repo.insert_inbound(protocol::new_uuid_v7(), "stripe", "evt_1",
                                 protocol::new_uuid_v7(), body);
    });
  CAF_REQUIRE(again);
  CAF_CHECK(!again->second);
  CAF_CHECK_EQUAL(again->first.id, first->first.id);
  auto other = hooks<std::pair<storage::inbound_event_row, bool>>(
    beta_id, [&](storage::webhook_repository& repo) {
      return repo.insert_inbound(protocol::new_uuid_v7(), "stripe", "evt_1",
                                 protocol::new_uuid_v7(), body);
    });
  CAF_REQUIRE(other);
  CAF_CHECK(other->second);
}

CAF_TEST_FIXTURE_SCOPE_END()
