#include "storage/auth.hpp"

#include "protocol/crypto.hpp"
#include "protocol/error.hpp"
#include "storage/arrays.hpp"

#include <nlohmann/json.hpp>

namespace troupe::storage {

namespace {

#define TROUPE_TIME(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

#define TROUPE_USER_COLUMNS                                                                        \
  "id::text, email, display_name, array_to_json(roles)::text, mfa_enabled, " TROUPE_TIME(          \
    "created_at") ", coalesce(password_hash, ''), coalesce(encode(totp_secret, 'hex'), ''), "      \
                  "coalesce(encode(totp_pending, 'hex'), ''), totp_last_step"

#define TROUPE_SESSION_COLUMNS                                                                     \
  "s.id::text, s.user_id::text, s.revoked_at IS NOT NULL, s.expires_at <= now(), " TROUPE_TIME(    \
    "s.created_at") ", " TROUPE_TIME("s.last_used_at") ", coalesce(s.ip, ''), "                    \
                                                       "coalesce(s.user_agent, '')"

#define TROUPE_KEY_COLUMNS                                                                         \
  "id::text, name, prefix, array_to_json(permissions)::text, coalesce(created_by::text, ''), "     \
  "" TROUPE_TIME("created_at") ", " TROUPE_TIME(                                                   \
    "expires_at") ", "                                                                             \
                  "expires_at IS NOT NULL AND expires_at <= now(), revoked_at IS NOT NULL, "       \
                  "coalesce(extract(epoch FROM expires_at)::bigint, 0)"

constexpr pg_statement user_by_email_sql{"auth_user_by_email", "SELECT " TROUPE_USER_COLUMNS
                                                               " FROM users WHERE email = $1"};
constexpr pg_statement user_by_id_sql{"auth_user_by_id", "SELECT " TROUPE_USER_COLUMNS
                                                         " FROM users WHERE id = $1::uuid"};
constexpr pg_statement insert_user_sql{
  "auth_user_insert",
  "INSERT INTO users (tenant_id, id, email, password_hash, display_name, roles) "
  "VALUES (troupe_current_tenant(), $1::uuid, $2, $3, $4, $5::text[]) "
  "RETURNING " TROUPE_USER_COLUMNS};
constexpr pg_statement users_sql{"auth_users",
                                 "SELECT " TROUPE_USER_COLUMNS
                                 " FROM users WHERE ($1::uuid IS NULL OR id > $1::uuid) "
                                 "ORDER BY id LIMIT $2::int"};
constexpr pg_statement set_display_name_sql{
  "auth_user_display_name",
  "UPDATE users SET display_name = $2, updated_at = now() WHERE id = $1::uuid "
  "RETURNING " TROUPE_USER_COLUMNS};
constexpr pg_statement set_roles_sql{
  "auth_user_roles", "UPDATE users SET roles = $2::text[], updated_at = now() WHERE id = $1::uuid "
                     "RETURNING " TROUPE_USER_COLUMNS};
constexpr pg_statement delete_user_sql{"auth_user_delete",
                                       "DELETE FROM users WHERE id = $1::uuid RETURNING id"};
constexpr pg_statement revoke_keys_of_sql{
  "auth_keys_of_revoke",
  "UPDATE api_keys SET revoked_at = now() WHERE created_by = $1::uuid AND revoked_at IS NULL "
  "RETURNING id::text"};
constexpr pg_statement count_role_sql{"auth_count_role",
                                      "SELECT count(*) FROM users WHERE roles @> ARRAY[$1]::text[] "
                                      "AND ($2::uuid IS NULL OR id <> $2::uuid)"};
constexpr pg_statement set_password_sql{
  "auth_set_password",
  "UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1::uuid"};
constexpr pg_statement set_pending_sql{
  "auth_totp_pending",
  "UPDATE users SET totp_pending = $2::bytea, updated_at = now() WHERE id = $1::uuid"};
constexpr pg_statement activate_totp_sql{
  "auth_totp_activate",
  "UPDATE users SET totp_secret = totp_pending, totp_pending = NULL, mfa_enabled = true, "
  "totp_last_step = $2::bigint, updated_at = now() WHERE id = $1::uuid AND totp_pending IS NOT "
  "NULL"};
constexpr pg_statement disable_totp_sql{
  "auth_totp_disable",
  "UPDATE users SET totp_secret = NULL, totp_pending = NULL, mfa_enabled = false, "
  "updated_at = now() WHERE id = $1::uuid"};
constexpr pg_statement use_step_sql{"auth_totp_step",
                                    "UPDATE users SET totp_last_step = $2::bigint WHERE id = "
                                    "$1::uuid AND totp_last_step < $2::bigint"};
constexpr pg_statement clear_recovery_sql{"auth_recovery_clear",
                                          "DELETE FROM recovery_codes WHERE user_id = $1::uuid"};
constexpr pg_statement add_recovery_sql{
  "auth_recovery_add",
  "INSERT INTO recovery_codes (tenant_id, user_id, code_hash) "
  "SELECT troupe_current_tenant(), $1::uuid, decode(h, 'hex') FROM unnest($2::text[]) AS h"};
constexpr pg_statement use_recovery_sql{
  "auth_recovery_use", "UPDATE recovery_codes SET used_at = now() "
                       "WHERE user_id = $1::uuid AND code_hash = $2::bytea AND used_at IS NULL"};

constexpr pg_statement create_session_sql{
  "auth_session_create",
  "INSERT INTO sessions (tenant_id, id, user_id, expires_at, ip, user_agent) "
  "VALUES (troupe_current_tenant(), $1::uuid, $2::uuid, now() + make_interval(secs => $3::bigint), "
  "$4, $5)"};
constexpr pg_statement add_token_sql{
  "auth_refresh_add", "INSERT INTO refresh_tokens (tenant_id, token_hash, session_id) "
                      "VALUES (troupe_current_tenant(), $1::bytea, $2::uuid)"};
constexpr pg_statement session_sql{"auth_session", "SELECT " TROUPE_SESSION_COLUMNS
                                                   " FROM sessions s WHERE s.id = $1::uuid"};
constexpr pg_statement refresh_sql{
  "auth_refresh_find",
  "SELECT r.spent_at IS NOT NULL, " TROUPE_SESSION_COLUMNS
  " FROM refresh_tokens r JOIN sessions s ON s.tenant_id = r.tenant_id AND s.id = r.session_id "
  "WHERE r.token_hash = $1::bytea FOR UPDATE"};
constexpr pg_statement spend_sql{
  "auth_refresh_spend",
  "UPDATE refresh_tokens SET spent_at = now() WHERE token_hash = $1::bytea AND spent_at IS NULL"};
constexpr pg_statement touch_sql{
  "auth_session_touch",
  "UPDATE sessions SET last_used_at = now(), ip = $2, user_agent = $3 WHERE id = $1::uuid"};
constexpr pg_statement revoke_sql{
  "auth_session_revoke",
  "UPDATE sessions SET revoked_at = now(), revoked_reason = $3 "
  "WHERE id = $1::uuid AND ($2::uuid IS NULL OR user_id = $2::uuid) AND revoked_at IS NULL "
  "RETURNING id"};
constexpr pg_statement revoke_all_sql{
  "auth_session_revoke_all",
  "UPDATE sessions SET revoked_at = now(), revoked_reason = $3 "
  "WHERE user_id = $1::uuid AND ($2::uuid IS NULL OR id <> $2::uuid) AND revoked_at IS NULL "
  "RETURNING id::text"};
constexpr pg_statement sessions_of_sql{
  "auth_sessions_of",
  "SELECT " TROUPE_SESSION_COLUMNS " FROM sessions s WHERE s.user_id = $1::uuid "
  "AND s.revoked_at IS NULL AND s.expires_at > now() "
  "AND ($2::uuid IS NULL OR s.id < $2::uuid) ORDER BY s.id DESC LIMIT $3::int"};

constexpr pg_statement create_challenge_sql{
  "auth_challenge_create",
  "INSERT INTO mfa_challenges (tenant_id, id, user_id, secret_hash, expires_at) "
  "VALUES (troupe_current_tenant(), $1::uuid, $2::uuid, $3::bytea, "
  "now() + make_interval(secs => $4::bigint))"};
constexpr pg_statement challenge_sql{
  "auth_challenge",
  "SELECT id::text, user_id::text, encode(secret_hash, 'hex'), expires_at <= now(), "
  "used_at IS NOT NULL, failures FROM mfa_challenges WHERE id = $1::uuid FOR UPDATE"};
constexpr pg_statement challenge_failed_sql{
  "auth_challenge_failed", "UPDATE mfa_challenges SET failures = failures + 1 WHERE id = $1::uuid"};
constexpr pg_statement challenge_used_sql{
  "auth_challenge_used", "UPDATE mfa_challenges SET used_at = now() WHERE id = $1::uuid"};

constexpr pg_statement insert_key_sql{
  "auth_key_insert",
  "INSERT INTO api_keys (tenant_id, id, name, prefix, key_hash, permissions, created_by, "
  "expires_at) VALUES (troupe_current_tenant(), $1::uuid, $2, $3, $4::bytea, $5::text[], "
  "$6::uuid, $7::timestamptz) RETURNING " TROUPE_KEY_COLUMNS};
constexpr pg_statement index_key_sql{
  "auth_key_index",
  "INSERT INTO api_key_tenants (key_hash, tenant_id) VALUES ($1::bytea, $2::uuid)"};
constexpr pg_statement list_keys_sql{
  "auth_key_list", "SELECT " TROUPE_KEY_COLUMNS " FROM api_keys WHERE revoked_at IS NULL "
                   "AND ($1::uuid IS NULL OR id < $1::uuid) ORDER BY id DESC LIMIT $2::int"};
constexpr pg_statement key_by_hash_sql{
  "auth_key_by_hash", "SELECT " TROUPE_KEY_COLUMNS " FROM api_keys WHERE key_hash = $1::bytea"};
constexpr pg_statement revoke_key_sql{
  "auth_key_revoke",
  "UPDATE api_keys SET revoked_at = now() WHERE id = $1::uuid AND revoked_at IS NULL "
  "RETURNING " TROUPE_KEY_COLUMNS};
constexpr pg_statement key_tenant_sql{
  "auth_key_tenant", "SELECT tenant_id::text FROM api_key_tenants WHERE key_hash = $1::bytea"};

constexpr pg_statement signing_keys_sql{
  "auth_signing_keys",
  "SELECT kid, encode(public_key, 'hex'), encode(private_sealed, 'hex'), "
  "extract(epoch FROM created_at)::bigint, extract(epoch FROM retired_at)::bigint "
  "FROM signing_keys ORDER BY created_at"};
constexpr pg_statement lock_keys_sql{
  "auth_signing_lock", "SELECT pg_advisory_xact_lock(7345002)"}; // any constant of ours
constexpr pg_statement insert_signing_key_sql{
  "auth_signing_insert", "INSERT INTO signing_keys (kid, public_key, private_sealed, created_at) "
                         "VALUES ($1, $2::bytea, $3::bytea, to_timestamp($4::bigint))"};
constexpr pg_statement retire_keys_sql{
  "auth_signing_retire",
  "UPDATE signing_keys SET retired_at = now() WHERE kid <> $1 AND retired_at IS NULL"};

#undef TROUPE_KEY_COLUMNS
#undef TROUPE_SESSION_COLUMNS
#undef TROUPE_USER_COLUMNS
#undef TROUPE_TIME

std::string bytea(const std::string& bytes) {
  return "\\x" + protocol::crypto::hex(bytes);
}

std::string unhexed(std::string_view text) {
  return protocol::crypto::unhex(text).value_or("");
}

std::optional<std::string> nonempty(const std::string& s) {
  return s.empty() ? std::nullopt : std::optional<std::string>{s};
}

user_row to_user(const pg_rows& rows, int r) {
  user_row u;
  u.id = std::string{rows.get(r, 0)};
  u.email = std::string{rows.get(r, 1)};
  if (!rows.is_null(r, 2)) {
    u.display_name = std::string{rows.get(r, 2)};
  }
  u.roles = text_array(rows.get(r, 3));
  u.mfa_enabled = rows.get(r, 4) == "t";
  u.created_at = std::string{rows.get(r, 5)};
  u.password_hash = std::string{rows.get(r, 6)};
  u.totp_secret = unhexed(rows.get(r, 7));
  u.totp_pending = unhexed(rows.get(r, 8));
  u.totp_last_step = std::stoll(std::string{rows.get(r, 9)});
  return u;
}

session_row to_session(const pg_rows& rows, int r, int c = 0) {
  session_row s;
  s.id = std::string{rows.get(r, c)};
  s.user_id = std::string{rows.get(r, c + 1)};
  s.revoked = rows.get(r, c + 2) == "t";
  s.expired = rows.get(r, c + 3) == "t";
  s.created_at = std::string{rows.get(r, c + 4)};
  s.last_used_at = std::string{rows.get(r, c + 5)};
  s.ip = std::string{rows.get(r, c + 6)};
  s.user_agent = std::string{rows.get(r, c + 7)};
  return s;
}

api_key_row to_key(const pg_rows& rows, int r) {
  api_key_row k;
  k.id = std::string{rows.get(r, 0)};
  k.name = std::string{rows.get(r, 1)};
  k.prefix = std::string{rows.get(r, 2)};
  k.permissions = text_array(rows.get(r, 3));
  k.created_by = std::string{rows.get(r, 4)};
  k.created_at = std::string{rows.get(r, 5)};
  if (!rows.is_null(r, 6)) {
    k.expires_at = std::string{rows.get(r, 6)};
  }
  k.expired = rows.get(r, 7) == "t";
  k.revoked = rows.get(r, 8) == "t";
  k.expires_unix = std::stoll(std::string{rows.get(r, 9)});
  return k;
}

template <class T, class F>
caf::expected<std::optional<T>> first(caf::expected<pg_rows> rows, F convert) {
  if (!rows) {
    return std::move(rows.error());
  }
  if (rows->size() == 0) {
    return std::optional<T>{};
  }
  return std::optional<T>{convert(*rows, 0)};
}

caf::error status(const caf::expected<pg_rows>& rows) {
  return rows ? caf::error{} : rows.error();
}

} // namespace

caf::expected<std::optional<user_row>> auth_repository::user_by_email(const std::string& email) {
  return first<user_row>(tx_.execute(user_by_email_sql, {email}), to_user);
}

caf::expected<std::optional<user_row>> auth_repository::user_by_id(const std::string& id) {
  return first<user_row>(tx_.execute(user_by_id_sql, {id}), to_user);
}

caf::expected<user_row> auth_repository::insert_user(const std::string& id,
                                                     const std::string& email,
                                                     const std::string& password_hash,
                                                     const std::optional<std::string>& display_name,
                                                     const std::vector<std::string>& roles) {
  auto rows
    = tx_.execute(insert_user_sql, {id, email, password_hash, display_name, array_literal(roles)});
  if (!rows) {
    return std::move(rows.error());
  }
  return to_user(*rows, 0);
}

caf::expected<std::vector<user_row>> auth_repository::users(const std::string& after,
                                                            std::uint32_t limit) {
  auto rows = tx_.execute(users_sql, {nonempty(after), std::to_string(limit + 1)});
  if (!rows) {
    return std::move(rows.error());
  }
  std::vector<user_row> out;
  for (int r = 0; r < rows->size(); ++r) {
    out.push_back(to_user(*rows, r));
  }
  return out;
}

caf::expected<std::optional<user_row>>
auth_repository::set_display_name(const std::string& user_id,
                                  const std::optional<std::string>& name) {
  return first<user_row>(tx_.execute(set_display_name_sql, {user_id, name}), to_user);
}

caf::expected<std::optional<user_row>>
auth_repository::set_roles(const std::string& user_id, const std::vector<std::string>& roles) {
  return first<user_row>(tx_.execute(set_roles_sql, {user_id, array_literal(roles)}), to_user);
}

caf::expected<std::optional<std::vector<std::string>>>
auth_repository::delete_user(const std::string& user_id) {
  auto keys = tx_.execute(revoke_keys_of_sql, {user_id});
  if (!keys) {
    return std::move(keys.error());
  }
  auto deleted = tx_.execute(delete_user_sql, {user_id});
  if (!deleted) {
    return std::move(deleted.error());
  }
  if (deleted->size() == 0) {
    return std::optional<std::vector<std::string>>{};
  }
  std::vector<std::string> revoked;
  for (int r = 0; r < keys->size(); ++r) {
    revoked.emplace_back(keys->get(r, 0));
  }
  return std::optional<std::vector<std::string>>{std::move(revoked)};
}

caf::expected<std::int64_t> auth_repository::count_with_role(const std::string& role,
                                                             const std::string& except) {
  auto rows = tx_.execute(count_role_sql, {role, nonempty(except)});
  if (!rows) {
    return std::move(rows.error());
  }
  return std::stoll(std::string{rows->get(0, 0)});
}

caf::error auth_repository::set_password(const std::string& user_id, const std::string& hash) {
  return status(tx_.execute(set_password_sql, {user_id, hash}));
}

caf::error auth_repository::set_totp_pending(const std::string& user_id,
                                             const std::string& sealed) {
  return status(tx_.execute(set_pending_sql, {user_id, bytea(sealed)}));
}

caf::error auth_repository::activate_totp(const std::string& user_id, std::int64_t step) {
  return status(tx_.execute(activate_totp_sql, {user_id, std::to_string(step)}));
}

caf::error auth_repository::disable_totp(const std::string& user_id) {
  if (auto err = status(tx_.execute(disable_totp_sql, {user_id}))) {
    return err;
  }
  return status(tx_.execute(clear_recovery_sql, {user_id}));
}

caf::expected<bool> auth_repository::use_totp_step(const std::string& user_id, std::int64_t step) {
  auto rows = tx_.execute(use_step_sql, {user_id, std::to_string(step)});
  if (!rows) {
    return std::move(rows.error());
  }
  return rows->affected() == 1;
}

caf::error auth_repository::set_recovery_codes(const std::string& user_id,
                                               const std::vector<std::string>& hashes) {
  if (auto err = status(tx_.execute(clear_recovery_sql, {user_id}))) {
    return err;
  }
  std::vector<std::string> hex;
  hex.reserve(hashes.size());
  for (const auto& h : hashes) {
    hex.push_back(protocol::crypto::hex(h));
  }
  return status(tx_.execute(add_recovery_sql, {user_id, array_literal(hex)}));
}

caf::expected<bool> auth_repository::use_recovery_code(const std::string& user_id,
                                                       const std::string& hash) {
  auto rows = tx_.execute(use_recovery_sql, {user_id, bytea(hash)});
  if (!rows) {
    return std::move(rows.error());
  }
  return rows->affected() == 1;
}

caf::error auth_repository::create_session(const std::string& id, const std::string& user_id,
                                           std::uint64_t ttl_seconds, const std::string& ip,
                                           const std::string& user_agent,
                                           const std::string& token_hash) {
  if (auto err = status(tx_.execute(create_session_sql,
                                    {id, user_id, std::to_string(ttl_seconds), ip, user_agent}))) {
    return err;
  }
  return status(tx_.execute(add_token_sql, {bytea(token_hash), id}));
}

caf::expected<std::optional<session_row>> auth_repository::session(const std::string& id) {
  return first<session_row>(tx_.execute(session_sql, {id}),
                            [](const pg_rows& rows, int r) { return to_session(rows, r); });
}

caf::expected<std::optional<refresh_row>> auth_repository::refresh_token(const std::string& hash) {
  return first<refresh_row>(tx_.execute(refresh_sql, {bytea(hash)}),
                            [](const pg_rows& rows, int r) {
                              refresh_row row;
                              row.spent = rows.get(r, 0) == "t";
                              row.session = to_session(rows, r, 1);
                              row.session_id = row.session.id;
                              return row;
                            });
}

caf::error auth_repository::rotate(const std::string& session_id, const std::string& old_hash,
                                   const std::string& new_hash, const std::string& ip,
                                   const std::string& user_agent) {
  auto spent = tx_.execute(spend_sql, {bytea(old_hash)});
  if (!spent) {
    return spent.error();
  }
  if (spent->affected() != 1) {
    return caf::make_error(protocol::errc::conflict, "refresh token already spent");
  }
  if (auto err = status(tx_.execute(add_token_sql, {bytea(new_hash), session_id}))) {
    return err;
  }
  return status(tx_.execute(touch_sql, {session_id, ip, user_agent}));
}

caf::expected<bool> auth_repository::revoke_session(const std::string& id,
                                                    const std::string& user_id,
                                                    const std::string& reason) {
  auto rows = tx_.execute(revoke_sql, {id, nonempty(user_id), reason});
  if (!rows) {
    return std::move(rows.error());
  }
  return rows->size() == 1;
}

caf::expected<std::vector<std::string>>
auth_repository::revoke_sessions_of(const std::string& user_id, const std::string& keep,
                                    const std::string& reason) {
  auto rows = tx_.execute(revoke_all_sql, {user_id, nonempty(keep), reason});
  if (!rows) {
    return std::move(rows.error());
  }
  std::vector<std::string> ids;
  for (int r = 0; r < rows->size(); ++r) {
    ids.emplace_back(rows->get(r, 0));
  }
  return ids;
}

caf::expected<std::vector<session_row>> auth_repository::sessions_of(const std::string& user_id,
                                                                     const std::string& before,
                                                                     std::uint32_t limit) {
  auto rows = tx_.execute(sessions_of_sql, {user_id, nonempty(before), std::to_string(limit + 1)});
  if (!rows) {
    return std::move(rows.error());
  }
  std::vector<session_row> out;
  for (int r = 0; r < rows->size(); ++r) {
    out.push_back(to_session(*rows, r));
  }
  return out;
}

caf::error auth_repository::create_challenge(const std::string& id, const std::string& user_id,
                                             const std::string& secret_hash,
                                             std::uint64_t ttl_seconds) {
  return status(tx_.execute(create_challenge_sql,
                            {id, user_id, bytea(secret_hash), std::to_string(ttl_seconds)}));
}

caf::expected<std::optional<challenge_row>> auth_repository::challenge(const std::string& id) {
  return first<challenge_row>(tx_.execute(challenge_sql, {id}), [](const pg_rows& rows, int r) {
    challenge_row c;
    c.id = std::string{rows.get(r, 0)};
    c.user_id = std::string{rows.get(r, 1)};
    c.secret_hash = unhexed(rows.get(r, 2));
    c.expired = rows.get(r, 3) == "t";
    c.used = rows.get(r, 4) == "t";
    c.failures = std::stoi(std::string{rows.get(r, 5)});
    return c;
  });
}

caf::error auth_repository::challenge_failed(const std::string& id) {
  return status(tx_.execute(challenge_failed_sql, {id}));
}

caf::error auth_repository::challenge_used(const std::string& id) {
  return status(tx_.execute(challenge_used_sql, {id}));
}

caf::expected<api_key_row> auth_repository::insert_api_key(
  const std::string& tenant_id, const std::string& id, const std::string& name,
  const std::string& prefix, const std::string& key_hash,
  const std::vector<std::string>& permissions, const std::string& created_by,
  const std::optional<std::string>& expires_at) {
  auto rows
    = tx_.execute(insert_key_sql, {id, name, prefix, bytea(key_hash), array_literal(permissions),
                                   nonempty(created_by), expires_at});
  if (!rows) {
    return std::move(rows.error());
  }
  if (auto err = status(tx_.execute(index_key_sql, {bytea(key_hash), tenant_id}))) {
    return err;
  }
  return to_key(*rows, 0);
}

caf::expected<std::vector<api_key_row>> auth_repository::api_keys(const std::string& after,
                                                                  std::uint32_t limit) {
  auto rows = tx_.execute(list_keys_sql, {nonempty(after), std::to_string(limit + 1)});
  if (!rows) {
    return std::move(rows.error());
  }
  std::vector<api_key_row> out;
  for (int r = 0; r < rows->size(); ++r) {
    out.push_back(to_key(*rows, r));
  }
  return out;
}

caf::expected<std::optional<api_key_row>>
auth_repository::api_key_by_hash(const std::string& hash) {
  return first<api_key_row>(tx_.execute(key_by_hash_sql, {bytea(hash)}), to_key);
}

caf::expected<std::optional<api_key_row>> auth_repository::revoke_api_key(const std::string& id) {
  return first<api_key_row>(tx_.execute(revoke_key_sql, {id}), to_key);
}

caf::expected<std::optional<std::string>> auth_repository::api_key_tenant(const std::string& hash) {
  return first<std::string>(tx_.execute(key_tenant_sql, {bytea(hash)}),
                            [](const pg_rows& rows, int r) { return std::string{rows.get(r, 0)}; });
}

caf::expected<std::vector<signing_key_row>> auth_repository::signing_keys() {
  auto rows = tx_.execute(signing_keys_sql);
  if (!rows) {
    return std::move(rows.error());
  }
  std::vector<signing_key_row> out;
  for (int r = 0; r < rows->size(); ++r) {
    signing_key_row k;
    k.kid = std::string{rows->get(r, 0)};
    k.public_key = unhexed(rows->get(r, 1));
    k.private_sealed = unhexed(rows->get(r, 2));
    k.created_at = std::stoll(std::string{rows->get(r, 3)});
    if (!rows->is_null(r, 4)) {
      k.retired_at = std::stoll(std::string{rows->get(r, 4)});
    }
    out.push_back(std::move(k));
  }
  return out;
}

caf::error auth_repository::lock_signing_keys() {
  return status(tx_.execute(lock_keys_sql));
}

caf::error auth_repository::insert_signing_key(const signing_key_row& key) {
  return status(
    tx_.execute(insert_signing_key_sql, {key.kid, bytea(key.public_key), bytea(key.private_sealed),
                                         std::to_string(key.created_at)}));
}

caf::error auth_repository::retire_signing_keys_but(const std::string& kid) {
  return status(tx_.execute(retire_keys_sql, {kid}));
}

std::string user_json(const user_row& user) {
  nlohmann::json j{{"id", user.id},
                   {"email", user.email},
                   {"display_name", user.display_name ? nlohmann::json(*user.display_name)
                                                      : nlohmann::json(nullptr)},
                   {"roles", user.roles},
                   {"mfa_enabled", user.mfa_enabled},
                   {"created_at", user.created_at}};
  return j.dump();
}

} // namespace troupe::storage
