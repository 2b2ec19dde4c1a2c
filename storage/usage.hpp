#pragma once

// Monthly request counts (migrations/0005_usage.sql) and what a tenant stores.

#include "storage/db.hpp"

#include <caf/expected.hpp>

#include <cstdint>
#include <string>

namespace troupe::storage {

/// The transaction's tenant's usage. Blocking: call only inside a `db_work` body.
class usage_repository {
public:
  explicit usage_repository(pg_transaction& tx) : tx_(tx) {}

  /// Adds `delta` requests to `period` ("YYYY-MM") and answers the period's new total (every
  /// node's counts included).
  [[nodiscard]] caf::expected<std::uint64_t> add(const std::string& period, std::uint64_t delta);

  /// The bytes of the tenant's rows (users, sessions, tokens, keys, roles, audit log...), as
  /// PostgreSQL stores them (pg_column_size of each row; indexes not counted).
  [[nodiscard]] caf::expected<std::uint64_t> storage_bytes();

private:
  pg_transaction& tx_;
};

} // namespace troupe::storage
