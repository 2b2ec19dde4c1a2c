#pragma once

#include "protocol/tenants.hpp"
#include "storage/db.hpp"

#include <caf/expected.hpp>

#include <string>

namespace troupe::storage {

/// The platform tables `tenants` (no tenant_id: platform-owned) and the owner row in `users`.
/// Blocking: call only inside a unit of work (`db_work::body`). `key` is an id or a slug.
class tenant_repository {
public:
  explicit tenant_repository(pg_transaction& tx) : tx_(tx) {}

  /// Inserts the tenant and its owner user (`roles = {owner}`). The transaction must carry
  /// the new tenant's id (users has forced row-level security). A taken slug is `conflict`.
  [[nodiscard]] caf::expected<protocol::tenant_record> create(const protocol::tenant_record& tenant,
                                                              const std::string& owner_id,
                                                              const std::string& owner_email,
                                                              const std::string& password_hash);

  [[nodiscard]] caf::expected<protocol::tenant_record> find(const std::string& key);
  [[nodiscard]] caf::expected<protocol::tenant_page> list(const protocol::tenant_query& query);
  /// Applies `u`; `before`, if given, receives the tenant as it was.
  [[nodiscard]] caf::expected<protocol::tenant_record>
  update(const std::string& key, const protocol::tenant_update& u,
         protocol::tenant_record* before = nullptr);
  /// Deletes the tenant; its tenant-owned rows go with it (ON DELETE CASCADE).
  [[nodiscard]] caf::expected<protocol::tenant_record> remove(const std::string& key);

private:
  pg_transaction& tx_;
};

} // namespace troupe::storage
