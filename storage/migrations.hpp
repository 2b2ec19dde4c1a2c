#pragma once

#include "storage/pg.hpp"

#include <caf/expected.hpp>

#include <string>
#include <vector>

namespace troupe::storage {

/// One numbered SQL file of storage/migrations/, embedded at build time.
struct migration {
  int version = 0;
  std::string name; ///< the file name, e.g. "0001_platform.sql"
  std::string sql;
};

/// Every migration, in version order.
const std::vector<migration>& migrations();

/// Applies the migrations `conn` has not seen yet, each in its own transaction, recording
/// them in `schema_migrations`. A session-level advisory lock serialises concurrent callers
/// (several nodes starting at once): the second waits, then finds nothing left to do.
/// Blocking; `conn` must belong to the owner role. Returns the versions applied now.
[[nodiscard]] caf::expected<std::vector<int>> migrate(pg_connection& conn);

/// The version of the newest migration applied, 0 if none.
[[nodiscard]] caf::expected<int> current_version(pg_connection& conn);

} // namespace troupe::storage
