#define CAF_SUITE storage.pg

#include "storage/pg.hpp"

#include "protocol/error.hpp"

#include "tests/support/pg_fixture.hpp"

#include <caf/test/unit_test.hpp>

#include <memory>
#include <string>

using namespace troupe;
using tests::errc_of;
using tests::query;
using tests::sqlstate_of;

namespace {

struct fixture {
  tests::fresh_database db;
  std::unique_ptr<storage::pg_connection> conn = tests::connect(db.owner_conninfo());
};

constexpr storage::pg_statement add_sql{
  "test_add",
  "SELECT $1::int + $2::int, $3::text IS NULL, $3::text",
};

constexpr storage::pg_statement insert_sql{
  "test_insert",
  "INSERT INTO items (id, label) VALUES ($1::int, $2), ($3::int, $4)",
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(pg_tests, fixture)

CAF_TEST(connecting to a server that is not there gives an error string) {
  std::string error;
  auto gone = storage::pg_connection::connect(
    "host=/nonexistent/troupe-socket-dir port=5999 user=postgres dbname=postgres", error);

  CAF_CHECK(gone == nullptr);
  CAF_CHECK(error.find("/nonexistent/troupe-socket-dir/.s.PGSQL.5999") != std::string::npos);
  CAF_CHECK(error.back() != '\n');

  std::string missing_db_error;
  auto missing_db = storage::pg_connection::connect(
    tests::with_dbname(db.owner_conninfo(), "no_such_db_here"), missing_db_error);
  CAF_CHECK(missing_db == nullptr);
  CAF_CHECK(missing_db_error.find("database \"no_such_db_here\" does not exist")
            != std::string::npos);
}

CAF_TEST(execute passes parameters and NULLs and reports affected rows) {
  auto rows = conn->execute(add_sql, {std::string{"2"}, std::string{"40"}, std::nullopt});
  CAF_REQUIRE(rows);
  CAF_REQUIRE_EQUAL(rows->size(), 1);
  CAF_REQUIRE_EQUAL(rows->columns(), 3);
  CAF_CHECK_EQUAL(rows->get(0, 0), "42");
  CAF_CHECK_EQUAL(rows->get(0, 1), "t");
  CAF_CHECK(!rows->is_null(0, 0));
  CAF_CHECK(rows->is_null(0, 2));
  CAF_CHECK(rows->optional(0, 2) == std::nullopt);
  CAF_CHECK(rows->optional(0, 0) == std::optional<std::string>{"42"});

  tests::run(*conn, "CREATE TABLE items (id int PRIMARY KEY, label text)");
  auto inserted = conn->execute(
    insert_sql, {std::string{"1"}, std::string{"it's \"quoted\""}, std::string{"2"}, std::nullopt});
  CAF_REQUIRE(inserted);
  CAF_CHECK_EQUAL(inserted->affected(), 2u);
  CAF_CHECK_EQUAL(inserted->size(), 0);
  CAF_CHECK_EQUAL(query(*conn, "SELECT label FROM items WHERE id = 1"), "it's \"quoted\"");
  CAF_CHECK_EQUAL(query(*conn, "SELECT label IS NULL FROM items WHERE id = 2"), "t");
}

CAF_TEST(a named statement is prepared once and reused) {
  auto first = conn->execute(add_sql, {std::string{"1"}, std::string{"1"}, std::string{"x"}});
  auto second = conn->execute(add_sql, {std::string{"5"}, std::string{"6"}, std::nullopt});

  CAF_REQUIRE(first);
  CAF_REQUIRE(second);
  CAF_CHECK_EQUAL(first->get(0, 0), "2");
  CAF_CHECK_EQUAL(first->get(0, 1), "f");
  CAF_CHECK_EQUAL(first->get(0, 2), "x");
  CAF_CHECK_EQUAL(second->get(0, 0), "11");
  CAF_CHECK_EQUAL(second->get(0, 1), "t");
  CAF_CHECK_EQUAL(query(*conn, "SELECT count(*) FROM pg_prepared_statements"), "1");
  CAF_CHECK_EQUAL(query(*conn, "SELECT name FROM pg_prepared_statements"), "test_add");
}

CAF_TEST(a unique or foreign key violation is a conflict) {
  tests::run(*conn, "CREATE TABLE parents (id int PRIMARY KEY);"
                    "CREATE TABLE children (parent int REFERENCES parents (id));"
                    "INSERT INTO parents VALUES (1)");

  auto duplicate = conn->exec("INSERT INTO parents VALUES (1)");
  CAF_REQUIRE(!duplicate);
  CAF_CHECK(errc_of(duplicate.error()) == protocol::errc::conflict);
  CAF_CHECK_EQUAL(sqlstate_of(duplicate.error()), "23505");

  constexpr storage::pg_statement orphan_sql{"test_orphan", "INSERT INTO children VALUES ($1)"};
  auto orphan = conn->execute(orphan_sql, {std::string{"7"}});
  CAF_REQUIRE(!orphan);
  CAF_CHECK(errc_of(orphan.error()) == protocol::errc::conflict);
  CAF_CHECK_EQUAL(sqlstate_of(orphan.error()), "23503");

  // The connection stays usable.
  CAF_CHECK(conn->healthy());
  CAF_CHECK_EQUAL(query(*conn, "SELECT count(*) FROM parents"), "1");
}

CAF_TEST(a syntax error is internal) {
  auto simple = conn->exec("SELEKT 1");
  CAF_REQUIRE(!simple);
  CAF_CHECK(errc_of(simple.error()) == protocol::errc::internal);
  CAF_CHECK_EQUAL(sqlstate_of(simple.error()), "42601");

  constexpr storage::pg_statement bad_sql{"test_bad", "SELECT FROM WHERE"};
  auto prepared = conn->execute(bad_sql);
  CAF_REQUIRE(!prepared);
  CAF_CHECK(errc_of(prepared.error()) == protocol::errc::internal);
  CAF_CHECK_EQUAL(sqlstate_of(prepared.error()), "42601");
  CAF_CHECK(conn->healthy());
  CAF_CHECK_EQUAL(query(*conn, "SELECT count(*) FROM pg_prepared_statements"), "0");
}

CAF_TEST(a killed backend fails the next statement as unavailable and reset recovers) {
  auto killer = tests::connect(db.owner_conninfo());
  auto before = conn->execute(add_sql, {std::string{"1"}, std::string{"2"}, std::nullopt});
  CAF_REQUIRE(before);
  const int victim = conn->backend_pid();
  CAF_REQUIRE_GREATER(victim, 0);

  CAF_REQUIRE_EQUAL(query(*killer, "SELECT pg_terminate_backend(" + std::to_string(victim) + ")"),
                    "t");

  auto failed = conn->execute(add_sql, {std::string{"1"}, std::string{"2"}, std::nullopt});
  CAF_REQUIRE(!failed);
  CAF_CHECK(errc_of(failed.error()) == protocol::errc::service_unavailable);
  CAF_CHECK(!conn->healthy());

  CAF_CHECK(conn->reset());
  CAF_CHECK(conn->healthy());
  CAF_CHECK_NOT_EQUAL(conn->backend_pid(), victim);
  // The new session has no prepared statements; execute prepares again.
  auto after = conn->execute(add_sql, {std::string{"3"}, std::string{"4"}, std::nullopt});
  CAF_REQUIRE(after);
  CAF_CHECK_EQUAL(after->get(0, 0), "7");
}

CAF_TEST(with_login produces a usable conninfo) {
  std::string error;
  auto login = storage::with_login(db.owner_conninfo(), "postgres", "s3cr'et\\pw", error);
  CAF_REQUIRE(login);
  CAF_CHECK_EQUAL(tests::conninfo_value(*login, "user"), "postgres");
  CAF_CHECK_EQUAL(tests::conninfo_value(*login, "password"), "s3cr'et\\pw");
  CAF_CHECK_EQUAL(tests::conninfo_value(*login, "dbname"), db.name());
  CAF_CHECK_EQUAL(tests::conninfo_value(*login, "host"),
                  tests::conninfo_value(db.owner_conninfo(), "host"));
  auto as_postgres = tests::connect(*login); // trust auth: the password is not checked
  CAF_CHECK_EQUAL(query(*as_postgres, "SELECT current_user || '@' || current_database()"),
                  "postgres@" + db.name());

  // The user really is replaced: a role that does not exist is refused by the server.
  auto nobody = storage::with_login(db.owner_conninfo(), "no_such_role", "", error);
  CAF_REQUIRE(nobody);
  CAF_CHECK_EQUAL(tests::conninfo_value(*nobody, "password"), "");
  std::string connect_error;
  CAF_CHECK(storage::pg_connection::connect(*nobody, connect_error) == nullptr);
  CAF_CHECK(connect_error.find("role \"no_such_role\" does not exist") != std::string::npos);

  // URLs are accepted too and come back as key=value.
  auto from_url = storage::with_login("postgresql://someone:pw@/troupe?host=/run/pg&port=6543",
                                      "troupe_app", "", error);
  CAF_REQUIRE(from_url);
  CAF_CHECK_EQUAL(tests::conninfo_value(*from_url, "user"), "troupe_app");
  CAF_CHECK_EQUAL(tests::conninfo_value(*from_url, "password"), "");
  CAF_CHECK_EQUAL(tests::conninfo_value(*from_url, "host"), "/run/pg");
  CAF_CHECK_EQUAL(tests::conninfo_value(*from_url, "port"), "6543");
  CAF_CHECK_EQUAL(tests::conninfo_value(*from_url, "dbname"), "troupe");
}

CAF_TEST(with_login rejects garbage) {
  std::string error;
  CAF_CHECK(!storage::with_login("dbname='unterminated", "u", "", error));
  CAF_CHECK(error.find("unterminated quoted string") != std::string::npos);

  error.clear();
  CAF_CHECK(!storage::with_login("no_equals_sign", "u", "", error));
  CAF_CHECK(error.find("missing \"=\" after \"no_equals_sign\"") != std::string::npos);

  error.clear();
  CAF_CHECK(!storage::with_login("bogus_option=1", "u", "", error));
  CAF_CHECK(error.find("invalid connection option \"bogus_option\"") != std::string::npos);
}

CAF_TEST_FIXTURE_SCOPE_END()
