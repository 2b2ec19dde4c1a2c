#define CAF_SUITE storage.db_pool

#include "protocol/error.hpp"
#include "storage/db.hpp"
#include "storage/embedded_postgres.hpp"
#include "storage/migrations.hpp"
#include "storage/pg.hpp"

#include "tests/support/pg_fixture.hpp"

#include <caf/test/unit_test.hpp>

#include <any>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <vector>

using namespace troupe;
using namespace std::chrono_literals;
using tests::errc_of;
using tests::query;
using tests::select_work;
using tests::values_of;
namespace fs = std::filesystem;

namespace {

using clock_type = std::chrono::steady_clock;

long long millis_since(clock_type::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start).count();
}

// Inserts `label` into items, then ends as `outcome` says: "ok", "error" or "throw".
storage::db_work insert_work(std::string label, std::string outcome) {
  return storage::db_work{
    std::nullopt, [label, outcome](storage::pg_transaction& tx) -> caf::expected<std::any> {
      static constexpr storage::pg_statement insert{"test_items_insert",
                                                    "INSERT INTO items (label) VALUES ($1)"};
      auto rows = tx.execute(insert, {label});
      if (!rows) {
        return std::move(rows.error());
      }
      if (outcome == "error") {
        return caf::make_error(protocol::errc::precondition_failed, "the work says no");
      }
      if (outcome == "throw") {
        throw std::runtime_error("the work threw");
      }
      return std::any{"inserted " + label};
    }};
}

struct fixture {
  tests::fresh_database db;
  std::unique_ptr<storage::pg_connection> owner = tests::connect(db.owner_conninfo());
  tests::pool_system actors;

  storage::db_pool_options options(std::string conninfo, std::size_t size = 1,
                                   std::size_t queue_limit = 16) {
    return {std::move(conninfo), size, queue_limit, std::chrono::milliseconds{10000}};
  }

  std::vector<std::string> labels() {
    return tests::column(*owner, "SELECT label FROM items ORDER BY label");
  }
};

// A private PostgreSQL that a test can stop and start again on the same data.
struct embedded_fixture {
  fs::path tmp;
  storage::embedded_options options;

  embedded_fixture() {
    char name[] = "/tmp/troupe-pool-XXXXXX";
    if (::mkdtemp(name) == nullptr) {
      CAF_FAIL("mkdtemp failed: " << std::strerror(errno));
    }
    tmp = name;
    ::chmod(name, 0755); // the postgres user must traverse it when we run as root
    options.dir = (tmp / "pg").string();
  }

  embedded_fixture(const embedded_fixture&) = delete;
  embedded_fixture& operator=(const embedded_fixture&) = delete;

  ~embedded_fixture() {
    std::error_code ec;
    fs::remove_all(tmp, ec);
  }

  std::unique_ptr<storage::embedded_postgres> start() {
    std::string error;
    auto pg = storage::embedded_postgres::start(options, error);
    if (pg == nullptr) {
      CAF_FAIL("embedded PostgreSQL did not start: " << error);
    }
    return pg;
  }

  // Starts the server and migrates it as its owner.
  std::unique_ptr<storage::embedded_postgres> start_migrated() {
    auto pg = start();
    auto conn = tests::connect(pg->conninfo("postgres"));
    auto applied = storage::migrate(*conn);
    if (!applied) {
      CAF_FAIL("migrate failed: " << caf::to_string(applied.error().context()));
    }
    return pg;
  }
};

const std::string one_sql = "SELECT 'one'";

} // namespace

CAF_TEST_FIXTURE_SCOPE(db_pool_tests, fixture)

CAF_TEST(a unit of work commits on success and rolls back on error) {
  tests::run(*owner, "CREATE TABLE items (label text PRIMARY KEY)");
  auto pool = actors.spawn_pool(options(db.owner_conninfo()));

  auto kept = actors.run(pool, insert_work("kept", "ok"));
  CAF_REQUIRE(kept);
  const auto* value = std::any_cast<std::string>(&kept->value);
  CAF_REQUIRE(value != nullptr);
  CAF_CHECK_EQUAL(*value, "inserted kept");
  CAF_CHECK_EQUAL(labels(), std::vector<std::string>{"kept"});

  auto refused = actors.run(pool, insert_work("refused", "error"));
  CAF_REQUIRE(!refused);
  CAF_CHECK(errc_of(refused.error()) == protocol::errc::precondition_failed);
  CAF_CHECK_EQUAL(labels(), std::vector<std::string>{"kept"});

  auto thrown = actors.run(pool, insert_work("thrown", "throw"));
  CAF_REQUIRE(!thrown);
  CAF_CHECK(errc_of(thrown.error()) == protocol::errc::internal);
  CAF_CHECK_EQUAL(labels(), std::vector<std::string>{"kept"});

  // A failed statement aborts the transaction; it is rolled back and the connection goes on.
  auto duplicate = actors.run(pool, insert_work("kept", "ok"));
  CAF_REQUIRE(!duplicate);
  CAF_CHECK(errc_of(duplicate.error()) == protocol::errc::conflict);

  auto after = actors.run(pool, insert_work("after", "ok"));
  CAF_CHECK(after);
  CAF_CHECK_EQUAL(labels(), (std::vector<std::string>{"after", "kept"}));
  CAF_CHECK_EQUAL(query(*owner, "SELECT count(*) FROM pg_stat_activity WHERE datname = '"
                                  + db.name() + "' AND state LIKE 'idle in transaction%'"),
                  "0");
}

CAF_TEST(a saturated pool refuses more work at once) {
  auto pool = actors.spawn_pool(options(db.owner_conninfo(), 1, 2));
  CAF_REQUIRE(actors.ready(pool).ready); // connected before the clock starts
  auto& self = actors.self();
  const auto start = clock_type::now();

  auto busy = self->request(pool, 10s, protocol::run_atom_v,
                            select_work(std::nullopt, "SELECT 'slept' FROM pg_sleep(1)"));
  auto queued1 = self->request(pool, 10s, protocol::run_atom_v,
                               select_work(std::nullopt, "SELECT 'queued 1'"));
  auto queued2 = self->request(pool, 10s, protocol::run_atom_v,
                               select_work(std::nullopt, "SELECT 'queued 2'"));
  std::vector<decltype(busy)> extras;
  for (int i = 0; i < 3; ++i) {
    extras.push_back(
      self->request(pool, 10s, protocol::run_atom_v, select_work(std::nullopt, "SELECT 'extra'")));
  }

  for (auto& extra : extras) {
    caf::expected<storage::db_reply> reply{caf::error{}};
    extra.receive([&](storage::db_reply& r) { reply = std::move(r); },
                  [&](caf::error& err) { reply = std::move(err); });
    CAF_REQUIRE(!reply);
    CAF_CHECK(errc_of(reply.error()) == protocol::errc::service_unavailable);
  }
  const auto refused_after = millis_since(start);
  CAF_MESSAGE("the extras were refused after " << refused_after << " ms");
  CAF_CHECK_LESS(refused_after, 500);

  auto receive = [](auto& handle) {
    caf::expected<storage::db_reply> reply{caf::error{}};
    handle.receive([&](storage::db_reply& r) { reply = std::move(r); },
                   [&](caf::error& err) { reply = std::move(err); });
    return values_of(reply);
  };
  CAF_CHECK_EQUAL(receive(busy), std::vector<std::string>{"slept"});
  CAF_CHECK_GREATER_OR_EQUAL(millis_since(start), 1000);
  CAF_CHECK_EQUAL(receive(queued1), std::vector<std::string>{"queued 1"});
  CAF_CHECK_EQUAL(receive(queued2), std::vector<std::string>{"queued 2"});
  // Drained: new work runs again.
  CAF_CHECK_EQUAL(values_of(actors.run(pool, select_work(std::nullopt, one_sql))),
                  std::vector<std::string>{"one"});
}

CAF_TEST(ready answers with the database check) {
  auto pool = actors.spawn_pool(options(db.owner_conninfo()));

  const auto ready = actors.ready(pool);

  CAF_CHECK(ready.ready);
  CAF_CHECK_EQUAL(ready.checks, (std::map<std::string, std::string>{{"database", "ok"}}));
}

CAF_TEST(a database that cannot be reached is not ready) {
  auto pool = actors.spawn_pool(
    options("host=/nonexistent/troupe-socket-dir port=5432 user=postgres dbname=postgres"));

  const auto ready = actors.ready(pool);

  CAF_CHECK(!ready.ready);
  CAF_CHECK_EQUAL(ready.checks,
                  (std::map<std::string, std::string>{{"database", "troupe:service-unavailable"}}));
  auto work = actors.run(pool, select_work(std::nullopt, one_sql));
  CAF_REQUIRE(!work);
  CAF_CHECK(errc_of(work.error()) == protocol::errc::service_unavailable);
}

CAF_TEST_FIXTURE_SCOPE_END()

CAF_TEST_FIXTURE_SCOPE(db_pool_restart_tests, embedded_fixture)

CAF_TEST(work in flight fails when PostgreSQL stops and later work reconnects) {
  auto pg = start_migrated();
  const auto app_conninfo = pg->conninfo("troupe_app");
  {
    tests::pool_system actors;
    auto pool = actors.spawn_pool({app_conninfo, 1, 16, std::chrono::milliseconds{10000}});
    CAF_REQUIRE_EQUAL(values_of(actors.run(pool, select_work(std::nullopt, "SELECT current_user"))),
                      std::vector<std::string>{"troupe_app"});

    auto& self = actors.self();
    auto slow = self->request(pool, 20s, protocol::run_atom_v,
                              select_work(std::nullopt, "SELECT 'woke' FROM pg_sleep(3)"));
    // Stop the server only once the statement runs.
    auto watcher = tests::connect(pg->conninfo("postgres"));
    std::string running;
    const auto deadline = clock_type::now() + 5s;
    while (running != "1" && clock_type::now() < deadline) {
      running = query(*watcher, "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                                " AND query LIKE '%pg_sleep(3)' AND usename = 'troupe_app'");
      std::this_thread::sleep_for(20ms);
    }
    CAF_REQUIRE_EQUAL(running, "1");
    watcher.reset();
    const auto stopping = clock_type::now();
    pg->stop();
    CAF_CHECK_EQUAL(pg->pid(), -1);

    caf::expected<storage::db_reply> in_flight{caf::error{}};
    slow.receive([&](storage::db_reply& r) { in_flight = std::move(r); },
                 [&](caf::error& err) { in_flight = std::move(err); });
    CAF_REQUIRE(!in_flight);
    CAF_CHECK(errc_of(in_flight.error()) == protocol::errc::service_unavailable);
    CAF_CHECK_LESS(millis_since(stopping), 2500); // failed, did not sleep on

    // While it is down, work fails as unavailable and the pool is not ready.
    auto down = actors.run(pool, select_work(std::nullopt, one_sql));
    CAF_REQUIRE(!down);
    CAF_CHECK(errc_of(down.error()) == protocol::errc::service_unavailable);
    CAF_CHECK(!actors.ready(pool).ready);

    pg = start(); // a new server on the same data
    CAF_CHECK(!pg->initialised_now());

    CAF_CHECK_EQUAL(values_of(actors.run(pool, select_work(std::nullopt, one_sql))),
                    std::vector<std::string>{"one"});
    CAF_CHECK(actors.ready(pool).ready);
  }
  pg->stop();
  CAF_CHECK_EQUAL(pg->pid(), -1);
}

CAF_TEST(an idle connection reconnects when PostgreSQL restarted in between) {
  // db.hpp: "a restarted PostgreSQL is picked up without restarting Troupe: work in flight when
  // it went away fails, later work succeeds". Here nothing is in flight during the restart.
  auto pg = start_migrated();
  const auto app_conninfo = pg->conninfo("troupe_app");
  {
    tests::pool_system actors;
    auto pool = actors.spawn_pool({app_conninfo, 1, 16, std::chrono::milliseconds{10000}});
    CAF_REQUIRE_EQUAL(values_of(actors.run(pool, select_work(std::nullopt, one_sql))),
                      std::vector<std::string>{"one"});

    pg->stop();
    pg = start();

    CAF_CHECK_EQUAL(values_of(actors.run(pool, select_work(std::nullopt, one_sql))),
                    std::vector<std::string>{"one"});
    CAF_CHECK_EQUAL(values_of(actors.run(pool, select_work(std::nullopt, one_sql))),
                    std::vector<std::string>{"one"});
  }
  pg->stop();
  CAF_CHECK_EQUAL(pg->pid(), -1);
}

CAF_TEST_FIXTURE_SCOPE_END()
