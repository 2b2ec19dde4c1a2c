#include "storage/usage.hpp"

namespace troupe::storage {

namespace {

constexpr pg_statement add_sql{
  "usage_add",
  "INSERT INTO usage_counters (tenant_id, period, requests) "
  "VALUES (troupe_current_tenant(), $1, $2::bigint) ON CONFLICT (tenant_id, period) "
  "DO UPDATE SET requests = usage_counters.requests + EXCLUDED.requests RETURNING requests"};

// Row-level security limits every table to the tenant.
constexpr pg_statement storage_sql{
  "usage_storage", "SELECT (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM users t)"
                   " + (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM sessions t)"
                   " + (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM refresh_tokens t)"
                   " + (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM mfa_challenges t)"
                   " + (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM recovery_codes t)"
                   " + (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM api_keys t)"
                   " + (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM roles t)"
                   " + (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM audit_log t)"
                   " + (SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM audit_data_keys t)"};

} // namespace

caf::expected<std::uint64_t> usage_repository::add(const std::string& period, std::uint64_t delta) {
  auto rows = tx_.execute(add_sql, {period, std::to_string(delta)});
  if (!rows) {
    return std::move(rows.error());
  }
  return std::stoull(std::string{rows->get(0, 0)});
}

caf::expected<std::uint64_t> usage_repository::storage_bytes() {
  auto rows = tx_.execute(storage_sql);
  if (!rows) {
    return std::move(rows.error());
  }
  return std::stoull(std::string{rows->get(0, 0)});
}

} // namespace troupe::storage
