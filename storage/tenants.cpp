#include "storage/tenants.hpp"

#include "protocol/error.hpp"
#include "protocol/request_id.hpp"

namespace troupe::storage {

namespace {

#define TROUPE_TENANT_COLUMNS                                                                      \
  "id::text, slug, name, plan, status, limits::text, settings::text, "                             \
  "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

constexpr pg_statement insert_tenant_sql{
  "tenant_insert",
  "INSERT INTO tenants (id, slug, name, plan) VALUES ($1::uuid, $2, $3, $4) "
  "RETURNING " TROUPE_TENANT_COLUMNS,
};

constexpr pg_statement insert_owner_sql{
  "tenant_insert_owner",
  "INSERT INTO users (tenant_id, id, email, password_hash, roles) "
  "VALUES ($1::uuid, $2::uuid, $3, $4, ARRAY['owner'])",
};

constexpr pg_statement find_by_id_sql{
  "tenant_find_by_id",
  "SELECT " TROUPE_TENANT_COLUMNS " FROM tenants WHERE id = $1::uuid",
};

constexpr pg_statement find_by_slug_sql{
  "tenant_find_by_slug",
  "SELECT " TROUPE_TENANT_COLUMNS " FROM tenants WHERE slug = $1",
};

constexpr pg_statement list_sql{
  "tenant_list",
  "SELECT " TROUPE_TENANT_COLUMNS " FROM tenants "
  "WHERE $1::uuid IS NULL OR id > $1::uuid ORDER BY id LIMIT $2::int",
};

constexpr pg_statement update_sql{
  "tenant_update",
  "UPDATE tenants SET name = coalesce($2, name), plan = coalesce($3, plan), "
  "status = coalesce($4, status), limits = limits || coalesce($5::jsonb, '{}'), "
  "settings = settings || coalesce($6::jsonb, '{}'), updated_at = now() "
  "WHERE id = $1::uuid RETURNING " TROUPE_TENANT_COLUMNS,
};

constexpr pg_statement delete_sql{
  "tenant_delete",
  "DELETE FROM tenants WHERE id = $1::uuid RETURNING " TROUPE_TENANT_COLUMNS,
};

#undef TROUPE_TENANT_COLUMNS

protocol::tenant_record to_record(const pg_rows& rows, int row) {
  protocol::tenant_record t;
  t.id = std::string{rows.get(row, 0)};
  t.slug = std::string{rows.get(row, 1)};
  t.name = std::string{rows.get(row, 2)};
  t.plan = std::string{rows.get(row, 3)};
  t.status = std::string{rows.get(row, 4)};
  t.limits = std::string{rows.get(row, 5)};
  t.settings = std::string{rows.get(row, 6)};
  t.created_at = std::string{rows.get(row, 7)};
  return t;
}

std::optional<std::string> nonempty(const std::string& s) {
  return s.empty() ? std::nullopt : std::optional<std::string>{s};
}

} // namespace

caf::expected<protocol::tenant_record>
tenant_repository::create(const protocol::tenant_record& tenant, const std::string& owner_id,
                          const std::string& owner_email, const std::string& password_hash) {
  auto rows = tx_.execute(insert_tenant_sql, {tenant.id, tenant.slug, tenant.name, tenant.plan});
  if (!rows) {
    return std::move(rows.error());
  }
  auto owner = tx_.execute(insert_owner_sql, {tenant.id, owner_id, owner_email, password_hash});
  if (!owner) {
    return std::move(owner.error());
  }
  auto record = to_record(*rows, 0);
  record.owner_id = owner_id;
  record.owner_email = owner_email;
  return record;
}

caf::expected<protocol::tenant_record> tenant_repository::find(const std::string& key) {
  auto rows = protocol::is_uuid(key) ? tx_.execute(find_by_id_sql, {key})
                                     : tx_.execute(find_by_slug_sql, {key});
  if (!rows) {
    return std::move(rows.error());
  }
  if (rows->size() == 0) {
    return caf::make_error(protocol::errc::not_found);
  }
  return to_record(*rows, 0);
}

caf::expected<protocol::tenant_page> tenant_repository::list(const protocol::tenant_query& q) {
  // One row more than asked tells whether another page follows.
  auto rows = tx_.execute(list_sql, {nonempty(q.after), std::to_string(q.limit + 1)});
  if (!rows) {
    return std::move(rows.error());
  }
  protocol::tenant_page page;
  const int n = std::min(rows->size(), static_cast<int>(q.limit));
  for (int i = 0; i < n; ++i) {
    page.data.push_back(to_record(*rows, i));
  }
  if (rows->size() > static_cast<int>(q.limit) && !page.data.empty()) {
    page.next_cursor = page.data.back().id;
  }
  return page;
}

caf::expected<protocol::tenant_record> tenant_repository::update(const std::string& key,
                                                                 const protocol::tenant_update& u,
                                                                 protocol::tenant_record* before) {
  auto current = find(key);
  if (!current) {
    return current;
  }
  if (before != nullptr) {
    *before = *current;
  }
  auto rows
    = tx_.execute(update_sql, {current->id, nonempty(u.name), nonempty(u.plan), nonempty(u.status),
                               nonempty(u.limits), nonempty(u.settings)});
  if (!rows) {
    return std::move(rows.error());
  }
  return to_record(*rows, 0);
}

caf::expected<protocol::tenant_record> tenant_repository::remove(const std::string& key) {
  auto current = find(key);
  if (!current) {
    return current;
  }
  auto rows = tx_.execute(delete_sql, {current->id});
  if (!rows) {
    return std::move(rows.error());
  }
  if (rows->size() == 0) {
    return caf::make_error(protocol::errc::not_found);
  }
  return to_record(*rows, 0);
}

} // namespace troupe::storage
