#include "storage/roles.hpp"

#include "storage/arrays.hpp"

namespace troupe::storage {

namespace {

#define TROUPE_ROLE_COLUMNS                                                                        \
  "name, array_to_json(permissions)::text, array_to_json(inherits)::text, "                        \
  "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "                  \
  "to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

constexpr pg_statement all_sql{"role_all",
                               "SELECT " TROUPE_ROLE_COLUMNS " FROM roles ORDER BY name"};
constexpr pg_statement find_sql{"role_find",
                                "SELECT " TROUPE_ROLE_COLUMNS " FROM roles WHERE name = $1"};
constexpr pg_statement insert_sql{
  "role_insert",
  "INSERT INTO roles (tenant_id, name, permissions, inherits) "
  "VALUES (troupe_current_tenant(), $1, $2::text[], $3::text[]) RETURNING " TROUPE_ROLE_COLUMNS};
constexpr pg_statement update_sql{
  "role_update",
  "UPDATE roles SET permissions = $2::text[], inherits = $3::text[], updated_at = now() "
  "WHERE name = $1 RETURNING " TROUPE_ROLE_COLUMNS};
constexpr pg_statement remove_sql{"role_remove",
                                  "DELETE FROM roles WHERE name = $1 RETURNING name"};
constexpr pg_statement users_with_sql{
  "role_users_with", "SELECT id::text FROM users WHERE roles @> ARRAY[$1]::text[] ORDER BY id"};
constexpr pg_statement inheritors_sql{
  "role_inheritors", "SELECT name FROM roles WHERE inherits @> ARRAY[$1]::text[] ORDER BY name"};
constexpr pg_statement unassign_sql{
  "role_unassign", "UPDATE users SET roles = array_remove(roles, $1), updated_at = now() "
                   "WHERE roles @> ARRAY[$1]::text[]"};
constexpr pg_statement uninherit_sql{
  "role_uninherit", "UPDATE roles SET inherits = array_remove(inherits, $1), updated_at = now() "
                    "WHERE inherits @> ARRAY[$1]::text[]"};

#undef TROUPE_ROLE_COLUMNS

role_row to_role(const pg_rows& rows, int r) {
  return {std::string{rows.get(r, 0)}, text_array(rows.get(r, 1)), text_array(rows.get(r, 2)),
          std::string{rows.get(r, 3)}, std::string{rows.get(r, 4)}};
}

std::vector<std::string> first_column(const pg_rows& rows) {
  std::vector<std::string> out;
  for (int r = 0; r < rows.size(); ++r) {
    out.emplace_back(rows.get(r, 0));
  }
  return out;
}

} // namespace

caf::expected<std::vector<role_row>> role_repository::all() {
  auto rows = tx_.execute(all_sql);
  if (!rows) {
    return std::move(rows.error());
  }
  std::vector<role_row> out;
  for (int r = 0; r < rows->size(); ++r) {
    out.push_back(to_role(*rows, r));
  }
  return out;
}

caf::expected<protocol::role_catalog> role_repository::catalog() {
  auto rows = all();
  if (!rows) {
    return std::move(rows.error());
  }
  protocol::role_catalog out;
  for (auto& r : *rows) {
    out[r.name] = {std::move(r.permissions), std::move(r.inherits)};
  }
  return out;
}

caf::expected<std::optional<role_row>> role_repository::find(const std::string& name) {
  auto rows = tx_.execute(find_sql, {name});
  if (!rows) {
    return std::move(rows.error());
  }
  if (rows->size() == 0) {
    return std::optional<role_row>{};
  }
  return std::optional<role_row>{to_role(*rows, 0)};
}

caf::expected<role_row> role_repository::insert(const std::string& name,
                                                const std::vector<std::string>& permissions,
                                                const std::vector<std::string>& inherits) {
  auto rows = tx_.execute(insert_sql, {name, array_literal(permissions), array_literal(inherits)});
  if (!rows) {
    return std::move(rows.error());
  }
  return to_role(*rows, 0);
}

caf::expected<std::optional<role_row>>
role_repository::update(const std::string& name, const std::vector<std::string>& permissions,
                        const std::vector<std::string>& inherits) {
  auto rows = tx_.execute(update_sql, {name, array_literal(permissions), array_literal(inherits)});
  if (!rows) {
    return std::move(rows.error());
  }
  if (rows->size() == 0) {
    return std::optional<role_row>{};
  }
  return std::optional<role_row>{to_role(*rows, 0)};
}

caf::expected<bool> role_repository::remove(const std::string& name) {
  auto rows = tx_.execute(remove_sql, {name});
  if (!rows) {
    return std::move(rows.error());
  }
  return rows->size() == 1;
}

caf::expected<std::pair<std::vector<std::string>, std::vector<std::string>>>
role_repository::uses(const std::string& name) {
  auto users = tx_.execute(users_with_sql, {name});
  if (!users) {
    return std::move(users.error());
  }
  auto roles = tx_.execute(inheritors_sql, {name});
  if (!roles) {
    return std::move(roles.error());
  }
  return std::make_pair(first_column(*users), first_column(*roles));
}

caf::error role_repository::remove_everywhere(const std::string& name) {
  if (auto users = tx_.execute(unassign_sql, {name}); !users) {
    return users.error();
  }
  auto roles = tx_.execute(uninherit_sql, {name});
  return roles ? caf::error{} : roles.error();
}

} // namespace troupe::storage
