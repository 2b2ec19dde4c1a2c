#pragma once

// Custom roles (migrations/0004_rbac.sql, docs/rbac.md).

#include "protocol/principal.hpp"
#include "storage/db.hpp"

#include <caf/expected.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace troupe::storage {

struct role_row {
  std::string name;
  std::vector<std::string> permissions;
  std::vector<std::string> inherits;
  std::string created_at;
  std::string updated_at;
};

/// The custom roles of the transaction's tenant. Blocking: call only inside a `db_work` body.
class role_repository {
public:
  explicit role_repository(pg_transaction& tx) : tx_(tx) {}

  /// Every custom role, by name.
  [[nodiscard]] caf::expected<std::vector<role_row>> all();
  /// Every custom role as the catalogue effective permissions are computed with.
  [[nodiscard]] caf::expected<protocol::role_catalog> catalog();
  [[nodiscard]] caf::expected<std::optional<role_row>> find(const std::string& name);
  /// A taken name is `conflict`.
  [[nodiscard]] caf::expected<role_row> insert(const std::string& name,
                                               const std::vector<std::string>& permissions,
                                               const std::vector<std::string>& inherits);
  [[nodiscard]] caf::expected<std::optional<role_row>>
  update(const std::string& name, const std::vector<std::string>& permissions,
         const std::vector<std::string>& inherits);
  [[nodiscard]] caf::expected<bool> remove(const std::string& name);
  /// Users holding `name` and roles inheriting it.
  [[nodiscard]] caf::expected<std::pair<std::vector<std::string>, std::vector<std::string>>>
  uses(const std::string& name);
  /// Removes `name` from every user's roles and every role's parents.
  [[nodiscard]] caf::error remove_everywhere(const std::string& name);

private:
  pg_transaction& tx_;
};

} // namespace troupe::storage
