#include "storage/idempotency.hpp"

#include "protocol/crypto.hpp"

namespace troupe::storage {

namespace {

constexpr pg_statement find_sql{
  "idem_find", "SELECT encode(fingerprint, 'hex'), state, lease_until > now(), expires_at > now(), "
               "coalesce(status, 0), coalesce(response::text, '') FROM idempotency_keys "
               "WHERE principal = $1 AND key = $2 FOR UPDATE"};
constexpr pg_statement insert_sql{
  "idem_insert",
  "INSERT INTO idempotency_keys (tenant_id, principal, key, fingerprint, state, lease_until, "
  "expires_at) VALUES (troupe_current_tenant(), $1, $2, $3::bytea, 'in_flight', "
  "now() + make_interval(secs => $4::int), now() + make_interval(secs => $5::int)) "
  "ON CONFLICT (tenant_id, principal, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, "
  "state = 'in_flight', lease_until = EXCLUDED.lease_until, status = NULL, response = NULL, "
  "expires_at = EXCLUDED.expires_at, created_at = now()"};
constexpr pg_statement complete_sql{
  "idem_complete",
  "UPDATE idempotency_keys SET state = 'done', status = $3::int, response = $4::jsonb, "
  "expires_at = now() + make_interval(secs => $5::int) WHERE principal = $1 AND key = $2"};
constexpr pg_statement release_sql{
  "idem_release", "DELETE FROM idempotency_keys WHERE principal = $1 AND key = $2"};
constexpr pg_statement purge_sql{"idem_purge",
                                 "DELETE FROM idempotency_keys WHERE expires_at <= now()"};

} // namespace

caf::expected<idempotency_claim> idempotency_repository::claim(const std::string& principal,
                                                               const std::string& key,
                                                               const std::string& fingerprint,
                                                               std::uint32_t lease_s,
                                                               std::uint32_t ttl_s) {
  auto rows = tx_.execute(find_sql, {principal, key});
  if (!rows) {
    return std::move(rows.error());
  }
  idempotency_claim out;
  if (rows->size() == 1) {
    const bool same = protocol::crypto::constant_time_equal(
      protocol::crypto::unhex(rows->get(0, 0)).value_or(""), fingerprint);
    const bool done = rows->get(0, 1) == "done";
    const bool leased = rows->get(0, 2) == "t";
    const bool alive = rows->get(0, 3) == "t";
    if (alive && (done || leased)) {
      if (!same) {
        out.result = idempotency_claim::outcome::mismatch;
      } else if (done) {
        out.result = idempotency_claim::outcome::replay;
        out.status = std::stoi(std::string{rows->get(0, 4)});
        out.response = std::string{rows->get(0, 5)};
      } else {
        out.result = idempotency_claim::outcome::in_flight;
      }
      return out;
    }
  }
  // New, expired, or in flight under a lease that ran out (its holder crashed): ours now.
  auto claimed
    = tx_.execute(insert_sql, {principal, key, "\\x" + protocol::crypto::hex(fingerprint),
                               std::to_string(lease_s), std::to_string(lease_s + ttl_s)});
  if (!claimed) {
    return std::move(claimed.error());
  }
  return out;
}

caf::error idempotency_repository::complete(const std::string& principal, const std::string& key,
                                            int status, const std::string& response,
                                            std::uint32_t ttl_s) {
  auto rows = tx_.execute(
    complete_sql, {principal, key, std::to_string(status), response, std::to_string(ttl_s)});
  return rows ? caf::error{} : rows.error();
}

caf::error idempotency_repository::release(const std::string& principal, const std::string& key) {
  auto rows = tx_.execute(release_sql, {principal, key});
  return rows ? caf::error{} : rows.error();
}

caf::expected<std::uint64_t> idempotency_repository::purge() {
  auto rows = tx_.execute(purge_sql);
  if (!rows) {
    return std::move(rows.error());
  }
  return rows->affected();
}

} // namespace troupe::storage
