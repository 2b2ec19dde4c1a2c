#pragma once

// Helpers for the integration tests that need a real PostgreSQL: the cluster scripts/test
// starts (TROUPE_TEST_PG), a fresh database per test, and a real actor system for the pool.
// Include after defining CAF_SUITE.

#include "protocol/error.hpp"
#include "protocol/type_ids.hpp"
#include "storage/db.hpp"
#include "storage/migrations.hpp"
#include "storage/pg.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/test/unit_test.hpp>
#include <libpq-fe.h>

#include <any>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace troupe::tests {

/// TROUPE_TEST_PG: the libpq conninfo of the throw-away cluster (superuser `postgres`).
/// Integration tests fail, never skip, without it.
inline std::string test_conninfo() {
  const char* conninfo = std::getenv("TROUPE_TEST_PG");
  if (conninfo == nullptr || *conninfo == '\0') {
    CAF_FAIL("TROUPE_TEST_PG is not set: run scripts/test, or `source scripts/lib/common.sh &&"
             " start_test_postgres` first");
  }
  return conninfo;
}

/// `conninfo` with its dbname replaced, as a key=value string (like storage::with_login).
inline std::string with_dbname(const std::string& conninfo, const std::string& dbname) {
  std::string error;
  auto result = storage::with_parameters(conninfo, {{"dbname", dbname}}, error);
  if (!result) {
    CAF_FAIL("cannot parse conninfo " << conninfo << ": " << error);
  }
  return *result;
}

/// One value of a parsed conninfo ("" when absent).
inline std::string conninfo_value(const std::string& conninfo, const std::string& keyword) {
  char* parse_error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &parse_error);
  if (options == nullptr) {
    PQfreemem(parse_error);
    return "<unparsable>";
  }
  std::string value;
  for (auto* o = options; o->keyword != nullptr; ++o) {
    if (o->val != nullptr && keyword == o->keyword) {
      value = o->val;
    }
  }
  PQconninfoFree(options);
  return value;
}

/// Connects or fails the test.
inline std::unique_ptr<storage::pg_connection> connect(const std::string& conninfo) {
  std::string error;
  auto conn = storage::pg_connection::connect(conninfo, error);
  if (conn == nullptr) {
    CAF_FAIL("cannot connect with " << conninfo << ": " << error);
  }
  return conn;
}

/// The first cell of the first row of `sql` ("NULL" for SQL NULL, "" without rows), or
/// "error: <troupe code>" when the statement fails.
inline std::string query(storage::pg_connection& conn, const std::string& sql) {
  auto rows = conn.exec(sql);
  if (!rows) {
    return "error: " + protocol::describe(rows.error());
  }
  if (rows->size() == 0 || rows->columns() == 0) {
    return "";
  }
  return rows->is_null(0, 0) ? "NULL" : std::string{rows->get(0, 0)};
}

/// Every row of the first column of `sql`, or fails the test.
inline std::vector<std::string> column(storage::pg_connection& conn, const std::string& sql) {
  auto rows = conn.exec(sql);
  if (!rows) {
    CAF_FAIL(sql << " failed: " << protocol::describe(rows.error()));
  }
  std::vector<std::string> out;
  for (int i = 0; i < rows->size(); ++i) {
    out.emplace_back(rows->is_null(i, 0) ? "NULL" : std::string{rows->get(i, 0)});
  }
  return out;
}

/// Runs `sql` or fails the test.
inline void run(storage::pg_connection& conn, const std::string& sql) {
  auto rows = conn.exec(sql);
  if (!rows) {
    CAF_FAIL(sql << " failed: " << protocol::describe(rows.error()) << " "
                 << caf::to_string(rows.error().context()));
  }
}

/// Our code of `err`, nullopt for anything that is not a troupe error.
inline std::optional<protocol::errc> errc_of(const caf::error& err) {
  if (err.category() != caf::atom("troupe")) {
    return std::nullopt;
  }
  return static_cast<protocol::errc>(err.code());
}

/// The SQLSTATE in the context of a pg_connection error ("" if none).
inline std::string sqlstate_of(const caf::error& err) {
  const auto& ctx = err.context();
  if (ctx.match_elements<std::string, std::string, std::string>()) {
    return ctx.get_as<std::string>(1);
  }
  return "";
}

inline std::string random_suffix() {
  std::random_device rd;
  std::mt19937_64 gen{(static_cast<std::uint64_t>(rd()) << 32) ^ rd()};
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  auto n = gen();
  for (int i = 0; i < 16; ++i, n >>= 4) {
    out.push_back(hex[n & 0xf]);
  }
  return out;
}

/// A database of its own for one test on the TROUPE_TEST_PG cluster, dropped (with every
/// connection to it) at the end.
class fresh_database {
public:
  fresh_database() : admin_conninfo_(test_conninfo()), name_("t_" + random_suffix()) {
    auto admin = connect(admin_conninfo_);
    run(*admin, "CREATE DATABASE " + name_);
    owner_conninfo_ = with_dbname(admin_conninfo_, name_);
    std::string error;
    auto app = storage::with_login(owner_conninfo_, "troupe_app", "", error);
    if (!app) {
      CAF_FAIL("with_login failed: " << error);
    }
    app_conninfo_ = *app;
  }

  fresh_database(const fresh_database&) = delete;
  fresh_database& operator=(const fresh_database&) = delete;

  ~fresh_database() {
    std::string error;
    auto admin = storage::pg_connection::connect(admin_conninfo_, error);
    CAF_CHECK(admin != nullptr);
    if (admin != nullptr) {
      CAF_CHECK_EQUAL(query(*admin, "DROP DATABASE " + name_ + " WITH (FORCE)"), "");
    }
  }

  const std::string& name() const {
    return name_;
  }

  /// The cluster's own database (for work outside the fresh one).
  const std::string& admin_conninfo() const {
    return admin_conninfo_;
  }

  /// The fresh database as `postgres`, the role that migrates and owns the tables.
  const std::string& owner_conninfo() const {
    return owner_conninfo_;
  }

  /// The fresh database as `troupe_app`, the server's role (exists once migrated).
  const std::string& app_conninfo() const {
    return app_conninfo_;
  }

  /// Applies every migration as the owner or fails the test.
  void migrate() const {
    auto owner = connect(owner_conninfo_);
    auto applied = storage::migrate(*owner);
    if (!applied) {
      CAF_FAIL("migrate failed: " << protocol::describe(applied.error()) << " "
                                  << caf::to_string(applied.error().context()));
    }
  }

private:
  std::string admin_conninfo_;
  std::string name_;
  std::string owner_conninfo_;
  std::string app_conninfo_;
};

struct pool_config : caf::actor_system_config {
  pool_config() {
    add_message_types<caf::id_block::troupe>();
    set("scheduler.max-threads", std::size_t{2});
  }
};

/// A real actor system (real threads, not the test coordinator) for the database pool, with a
/// blocking requester. Pools spawned through it are stopped before the system shuts down.
class pool_system {
public:
  pool_system() : sys_(cfg_), self_(sys_) {}

  pool_system(const pool_system&) = delete;
  pool_system& operator=(const pool_system&) = delete;

  ~pool_system() {
    for (auto& pool : pools_) {
      self_->send_exit(pool, caf::exit_reason::user_shutdown);
    }
  }

  storage::db_pool_actor spawn_pool(storage::db_pool_options options) {
    auto pool = storage::spawn_db_pool(sys_, std::move(options));
    pools_.push_back(pool);
    return pool;
  }

  caf::scoped_actor& self() {
    return self_;
  }

  /// Runs one unit of work through `pool` and waits for its outcome.
  caf::expected<storage::db_reply> run(const storage::db_pool_actor& pool, storage::db_work work,
                                       std::chrono::seconds timeout = std::chrono::seconds{10}) {
    caf::expected<storage::db_reply> result{caf::error{}};
    self_->request(pool, timeout, protocol::run_atom_v, std::move(work))
      .receive([&](storage::db_reply& reply) { result = std::move(reply); },
               [&](caf::error& err) { result = std::move(err); });
    return result;
  }

  protocol::readiness ready(const storage::db_pool_actor& pool) {
    protocol::readiness result;
    result.checks.emplace("test", "no answer");
    self_->request(pool, std::chrono::seconds{10}, protocol::ready_atom_v)
      .receive([&](protocol::readiness& r) { result = std::move(r); },
               [&](caf::error& err) { result.checks["test"] = protocol::describe(err); });
    return result;
  }

private:
  pool_config cfg_;
  caf::actor_system sys_;
  caf::scoped_actor self_;
  std::vector<storage::db_pool_actor> pools_;
};

/// A unit of work that runs `sql` (no parameters) and yields the first column of every row.
inline storage::db_work select_work(std::optional<std::string> tenant, std::string sql) {
  return storage::db_work{
    std::move(tenant),
    [sql = std::move(sql)](storage::pg_transaction& tx) -> caf::expected<std::any> {
      // Statement names are per connection; the SQL text keeps them distinct per query.
      const std::string name = "test_" + std::to_string(std::hash<std::string>{}(sql));
      auto rows = tx.execute(storage::pg_statement{name.c_str(), sql.c_str()});
      if (!rows) {
        return std::move(rows.error());
      }
      std::vector<std::string> values;
      for (int i = 0; i < rows->size(); ++i) {
        values.emplace_back(rows->is_null(i, 0) ? "NULL" : std::string{rows->get(i, 0)});
      }
      return std::any{std::move(values)};
    }};
}

/// The rows select_work produced, or {"error: <code>"}.
inline std::vector<std::string> values_of(const caf::expected<storage::db_reply>& reply) {
  if (!reply) {
    return {"error: " + protocol::describe(reply.error())};
  }
  const auto* values = std::any_cast<std::vector<std::string>>(&reply->value);
  if (values == nullptr) {
    return {"error: no std::vector<std::string> in the reply"};
  }
  return *values;
}

} // namespace troupe::tests
