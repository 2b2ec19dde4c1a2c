#include "storage/migrations.hpp"

#include "protocol/error.hpp"

#include <algorithm>

namespace troupe::storage {

namespace {

// Any fixed 64-bit key; every Troupe node uses the same one ("troupe" in ASCII).
constexpr const char* lock_key = "111546451011189";

constexpr pg_statement applied_sql{
  "troupe_migrations_applied",
  "SELECT version FROM schema_migrations ORDER BY version",
};

constexpr pg_statement record_sql{
  "troupe_migrations_record",
  "INSERT INTO schema_migrations (version, name) VALUES ($1::int, $2)",
};

} // namespace

caf::expected<std::vector<int>> migrate(pg_connection& conn) {
  if (auto locked = conn.exec(std::string{"SELECT pg_advisory_lock("} + lock_key + ")"); !locked) {
    return std::move(locked.error());
  }
  auto unlock = [&conn] {
    (void)conn.exec(std::string{"SELECT pg_advisory_unlock("} + lock_key + ")");
  };
  auto created = conn.exec("CREATE TABLE IF NOT EXISTS schema_migrations ("
                           " version int PRIMARY KEY,"
                           " name text NOT NULL,"
                           " applied_at timestamptz NOT NULL DEFAULT now())");
  if (!created) {
    unlock();
    return std::move(created.error());
  }
  auto applied_rows = conn.execute(applied_sql);
  if (!applied_rows) {
    unlock();
    return std::move(applied_rows.error());
  }
  std::vector<int> applied;
  applied.reserve(static_cast<std::size_t>(applied_rows->size()));
  for (int i = 0; i < applied_rows->size(); ++i) {
    applied.push_back(std::stoi(std::string{applied_rows->get(i, 0)}));
  }
  std::vector<int> now;
  for (const auto& m : migrations()) {
    if (std::find(applied.begin(), applied.end(), m.version) != applied.end()) {
      continue;
    }
    auto step = [&]() -> caf::error {
      if (auto r = conn.exec("BEGIN"); !r) {
        return std::move(r.error());
      }
      if (auto r = conn.exec(m.sql); !r) {
        return caf::make_error(protocol::errc::internal, "migration " + m.name + " failed",
                               caf::to_string(r.error().context()));
      }
      if (auto r = conn.execute(record_sql, {std::to_string(m.version), m.name}); !r) {
        return std::move(r.error());
      }
      if (auto r = conn.exec("COMMIT"); !r) {
        return std::move(r.error());
      }
      return caf::none;
    };
    if (auto err = step()) {
      (void)conn.exec("ROLLBACK");
      unlock();
      return err;
    }
    now.push_back(m.version);
  }
  unlock();
  return now;
}

caf::expected<int> current_version(pg_connection& conn) {
  auto exists = conn.exec("SELECT to_regclass('schema_migrations') IS NOT NULL");
  if (!exists) {
    return std::move(exists.error());
  }
  if (exists->get(0, 0) != "t") {
    return 0; // never migrated
  }
  auto rows = conn.exec("SELECT coalesce(max(version), 0) FROM schema_migrations");
  if (!rows) {
    return std::move(rows.error());
  }
  return std::stoi(std::string{rows->get(0, 0)});
}

} // namespace troupe::storage
