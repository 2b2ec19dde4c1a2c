#define CAF_SUITE storage.rls

#include "protocol/error.hpp"
#include "storage/db.hpp"
#include "storage/pg.hpp"

#include "tests/support/pg_fixture.hpp"

#include <caf/test/unit_test.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace troupe;
using tests::column;
using tests::errc_of;
using tests::query;
using tests::run;
using tests::sqlstate_of;

namespace {

const std::string tenant_a = "aaaaaaaa-0000-4000-8000-00000000000a";
const std::string tenant_b = "bbbbbbbb-0000-4000-8000-00000000000b";
const std::string user_a1 = "a1a1a1a1-0000-4000-8000-000000000001";
const std::string user_a2 = "a2a2a2a2-0000-4000-8000-000000000002";
const std::string user_b1 = "b1b1b1b1-0000-4000-8000-000000000001";
const std::string user_new = "c0c0c0c0-0000-4000-8000-000000000003";

std::string insert_user(const std::string& tenant, const std::string& id, const std::string& name) {
  return "INSERT INTO users (tenant_id, id, email, display_name) VALUES ('" + tenant + "', '" + id
         + "', '" + id + "@example.com', '" + name + "')";
}

std::string set_tenant(const std::string& tenant) {
  return "SELECT set_config('troupe.tenant_id', '" + tenant + "', true)";
}

// Migrated as the owner; the test works as the server's role, troupe_app. Tenants A and B
// exist (tenants is platform-level), A has two users and B one, all inserted as troupe_app.
struct fixture {
  tests::fresh_database db;
  std::unique_ptr<storage::pg_connection> owner;
  std::unique_ptr<storage::pg_connection> app;

  fixture() {
    db.migrate();
    owner = tests::connect(db.owner_conninfo());
    app = tests::connect(db.app_conninfo());
    CAF_REQUIRE_EQUAL(query(*app, "SELECT current_user"), "troupe_app");
    run(*app, "INSERT INTO tenants (id, slug, name) VALUES ('" + tenant_a + "', 'tenant-a', 'A'),"
                + " ('" + tenant_b + "', 'tenant-b', 'B')");
    run(*app, "BEGIN");
    run(*app, set_tenant(tenant_a));
    run(*app, insert_user(tenant_a, user_a1, "A one"));
    run(*app, insert_user(tenant_a, user_a2, "A two"));
    run(*app, "COMMIT");
    run(*app, "BEGIN");
    run(*app, set_tenant(tenant_b));
    run(*app, insert_user(tenant_b, user_b1, "B one"));
    run(*app, "COMMIT");
    // The owner is a superuser and sees everything.
    CAF_REQUIRE_EQUAL(query(*owner, "SELECT count(*) FROM users"), "3");
  }

  std::vector<std::string> user_ids(storage::pg_connection& conn) {
    return column(conn, "SELECT id FROM users ORDER BY id");
  }

  std::size_t affected(const std::string& sql) {
    auto rows = app->exec(sql);
    if (!rows) {
      CAF_FAIL(sql << " failed: " << caf::to_string(rows.error().context()));
    }
    return rows->affected();
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(rls_tests, fixture)

CAF_TEST(without a tenant no user is visible and none can be inserted) {
  CAF_CHECK_EQUAL(query(*app, "SELECT count(*) FROM users"), "0");

  run(*app, "BEGIN");
  CAF_CHECK_EQUAL(query(*app, "SELECT count(*) FROM users"), "0");
  CAF_CHECK_EQUAL(query(*app, "SELECT troupe_current_tenant()"), "NULL");
  auto inserted = app->exec(insert_user(tenant_a, user_new, "sneaky"));
  CAF_REQUIRE(!inserted);
  CAF_CHECK(errc_of(inserted.error()) == protocol::errc::internal);
  CAF_CHECK_EQUAL(sqlstate_of(inserted.error()), "42501"); // violates row-level security
  run(*app, "ROLLBACK");

  CAF_CHECK_EQUAL(affected("UPDATE users SET display_name = 'x'"), 0u);
  CAF_CHECK_EQUAL(affected("DELETE FROM users"), 0u);
  CAF_CHECK_EQUAL(query(*owner, "SELECT count(*) FROM users"), "3");
  CAF_CHECK_EQUAL(query(*owner, "SELECT count(*) FROM users WHERE display_name = 'x'"), "0");
}

CAF_TEST(with tenant A only A 's users are visible and B' s cannot be touched) {
  run(*app, "BEGIN");
  run(*app, set_tenant(tenant_a));
  CAF_CHECK_EQUAL(user_ids(*app), (std::vector<std::string>{user_a1, user_a2}));
  CAF_CHECK_EQUAL(query(*app, "SELECT count(*) FROM users WHERE tenant_id = '" + tenant_b + "'"),
                  "0");
  CAF_CHECK_EQUAL(
    affected("UPDATE users SET display_name = 'hacked' WHERE tenant_id = '" + tenant_b + "'"), 0u);
  CAF_CHECK_EQUAL(affected("UPDATE users SET display_name = 'hacked' WHERE id = '" + user_b1 + "'"),
                  0u);
  CAF_CHECK_EQUAL(affected("DELETE FROM users WHERE tenant_id = '" + tenant_b + "'"), 0u);
  CAF_CHECK_EQUAL(affected("UPDATE users SET display_name = 'A one!' WHERE id = '" + user_a1 + "'"),
                  1u);
  run(*app, "COMMIT");

  run(*app, "BEGIN");
  run(*app, set_tenant(tenant_a));
  auto foreign = app->exec(insert_user(tenant_b, user_new, "planted"));
  CAF_REQUIRE(!foreign);
  CAF_CHECK(errc_of(foreign.error()) == protocol::errc::internal);
  CAF_CHECK_EQUAL(sqlstate_of(foreign.error()), "42501");
  run(*app, "ROLLBACK");

  run(*app, "BEGIN");
  run(*app, set_tenant(tenant_a));
  auto moved
    = app->exec("UPDATE users SET tenant_id = '" + tenant_b + "' WHERE id = '" + user_a2 + "'");
  CAF_REQUIRE(!moved);
  CAF_CHECK_EQUAL(sqlstate_of(moved.error()), "42501");
  run(*app, "ROLLBACK");

  run(*app, "BEGIN");
  run(*app, set_tenant(tenant_a));
  run(*app, insert_user(tenant_a, user_new, "A three"));
  run(*app, "COMMIT");

  CAF_CHECK_EQUAL(column(*owner, "SELECT id || ' ' || tenant_id || ' ' || display_name FROM users"
                                 " ORDER BY id"),
                  (std::vector<std::string>{
                    user_a1 + " " + tenant_a + " A one!", user_a2 + " " + tenant_a + " A two",
                    user_b1 + " " + tenant_b + " B one", user_new + " " + tenant_a + " A three"}));
}

CAF_TEST(the tenant setting does not outlive its transaction) {
  run(*app, "BEGIN");
  run(*app, set_tenant(tenant_a));
  CAF_CHECK_EQUAL(query(*app, "SELECT count(*) FROM users"), "2");
  run(*app, "COMMIT");

  run(*app, "BEGIN");
  CAF_CHECK_EQUAL(query(*app, "SELECT count(*) FROM users"), "0");
  CAF_CHECK_EQUAL(query(*app, "SELECT troupe_current_tenant()"), "NULL");
  CAF_CHECK_EQUAL(query(*app, "SELECT current_setting('troupe.tenant_id', true)"), "");
  run(*app, "COMMIT");

  run(*app, "BEGIN");
  run(*app, set_tenant(tenant_b));
  CAF_CHECK_EQUAL(user_ids(*app), std::vector<std::string>{user_b1});
  run(*app, "ROLLBACK");
  CAF_CHECK_EQUAL(query(*app, "SELECT count(*) FROM users"), "0");
}

CAF_TEST(troupe_current_tenant gives no tenant when unset or reset to empty) {
  auto fresh = tests::connect(db.app_conninfo());
  CAF_CHECK_EQUAL(query(*fresh, "SELECT troupe_current_tenant()"), "NULL");

  // Session-level settings are not what the product uses; they show the function's rules.
  run(*fresh, "SELECT set_config('troupe.tenant_id', '" + tenant_a + "', false)");
  CAF_CHECK_EQUAL(query(*fresh, "SELECT troupe_current_tenant()"), tenant_a);
  CAF_CHECK_EQUAL(query(*fresh, "SELECT count(*) FROM users"), "2");

  run(*fresh, "SELECT set_config('troupe.tenant_id', '', false)");
  CAF_CHECK_EQUAL(query(*fresh, "SELECT troupe_current_tenant() IS NULL"), "t");
  CAF_CHECK_EQUAL(query(*fresh, "SELECT count(*) FROM users"), "0");

  // Anything but a UUID fails closed.
  run(*fresh, "SELECT set_config('troupe.tenant_id', 'not-a-uuid', false)");
  auto garbage = fresh->exec("SELECT count(*) FROM users");
  CAF_REQUIRE(!garbage);
  CAF_CHECK(errc_of(garbage.error()) == protocol::errc::internal);
  CAF_CHECK_EQUAL(sqlstate_of(garbage.error()), "22P02");
}

CAF_TEST(the pool runs tenant work under row level security) {
  tests::pool_system actors;
  // One connection: every unit of work below runs on the same PostgreSQL session.
  auto pool = actors.spawn_pool({db.app_conninfo(), 1, 16, std::chrono::milliseconds{5000}});
  const std::string select_ids = "SELECT id FROM users ORDER BY id";

  CAF_CHECK_EQUAL(
    tests::values_of(actors.run(pool, tests::select_work(std::nullopt, "SELECT current_user"))),
    std::vector<std::string>{"troupe_app"});
  CAF_CHECK_EQUAL(tests::values_of(actors.run(pool, tests::select_work(tenant_a, select_ids))),
                  (std::vector<std::string>{user_a1, user_a2}));
  CAF_CHECK_EQUAL(tests::values_of(actors.run(pool, tests::select_work(std::nullopt, select_ids))),
                  std::vector<std::string>{});
  CAF_CHECK_EQUAL(tests::values_of(actors.run(pool, tests::select_work(tenant_b, select_ids))),
                  std::vector<std::string>{user_b1});
  CAF_CHECK_EQUAL(
    tests::values_of(actors.run(
      pool, tests::select_work(std::nullopt, "SELECT coalesce(troupe_current_tenant()::text,"
                                             " 'none')"))),
    std::vector<std::string>{"none"});

  // Writing another tenant's row through the pool fails and leaves nothing behind.
  auto planted
    = actors.run(pool, tests::select_work(tenant_a, insert_user(tenant_b, user_new, "planted")));
  CAF_REQUIRE(!planted);
  CAF_CHECK(errc_of(planted.error()) == protocol::errc::internal);
  CAF_CHECK_EQUAL(sqlstate_of(planted.error()), "42501");
  CAF_CHECK_EQUAL(query(*owner, "SELECT count(*) FROM users"), "3");
  CAF_CHECK_EQUAL(tests::values_of(actors.run(pool, tests::select_work(tenant_b, select_ids))),
                  std::vector<std::string>{user_b1});
}

CAF_TEST_FIXTURE_SCOPE_END()
